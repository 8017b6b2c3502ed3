//! The tail-latency study's shared pieces: the service's state (and its hot
//! lock, three kinds), the lock's wait statistics, the service's own
//! latency, the load report format, the flags' value parsers, and the
//! sections at tokio's own lock holds (a patched tokio's hooks).

pub mod cli;
pub mod lockstats;
pub mod perthread;
pub mod report;
pub mod served;
pub mod spin_park;
pub mod state;
pub mod tokio_locks;
