//! The tail-latency study's shared pieces: the service's state (and its one
//! lock-type switch), and the load report format.

pub mod report;
pub mod state;
