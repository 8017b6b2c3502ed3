//! Shared by the adapter's test binaries.
#![allow(dead_code, unreachable_pub)]

use rseq_slice_tokio::{BuilderExt, SliceConfig};
use tokio::runtime::{Builder, Runtime};

/// A two-worker multi-thread runtime with `cfg`.
pub fn two_workers(cfg: SliceConfig) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .with_slice_config(cfg)
        .build()
        .expect("building the runtime")
}
