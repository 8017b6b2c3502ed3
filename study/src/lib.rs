//! The tail-latency study's shared pieces: the service's state (and its hot
//! lock, three kinds), the lock's wait statistics, the service's own
//! latency, the load report format, and the flags' value parsers.

pub mod cli;
pub mod lockstats;
pub mod perthread;
pub mod report;
pub mod served;
pub mod spin_park;
pub mod state;
