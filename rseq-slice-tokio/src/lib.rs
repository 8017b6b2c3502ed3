//! tokio runtimes whose workers use Linux's rseq time slice extension.
//!
//! One builder call registers and enables every runtime thread (from
//! `on_thread_start`), publishes per-thread metrics, and lets tasks mark their
//! short critical sections with [`slice_critical`]. The thread that calls
//! `block_on`, which tokio runs no hook on first, is initialised by its
//! first `slice_critical` poll (or lock section). With `--cfg
//! tokio_unstable`, [`SliceConfig`] can also guard the scheduler's own work
//! between task polls, or whole task polls: both off by default, because
//! measured on one, two and four vCPUs they helped no tail and cost p50
//! (whole polls made p99.9 worse at four; the workspace's `docs/study.md`).
//!
//! ```
//! use rseq_slice_tokio::BuilderExt;
//! let rt = tokio::runtime::Builder::new_multi_thread()
//!     .enable_all()
//!     .with_slice_extension()
//!     .build()
//!     .unwrap();
//! rt.block_on(async {
//!     // Per task: each poll of the inner future is one critical section.
//!     rseq_slice_tokio::slice_critical(async { /* short, lock-holding work */ }).await;
//! });
//! ```
//!
//! Where the kernel lacks the feature, the process logs the reason once (a
//! `tracing` warn, with the `tracing` feature, on by default; each thread's
//! at debug) and the runtime runs on with guards that cost about nothing. Either way,
//! [`SliceConfig::metrics`] shows each thread's state and counters, as
//! [cumulative](SliceMetrics::cumulative) and per
//! [interval](SliceMetrics::intervals), as tokio-metrics does.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod builder;
mod config;
mod hooks;

pub use builder::BuilderExt;
pub use config::SliceConfig;
pub use hooks::current_section;
pub use rseq_slice_core::diagnostics::EnableVia;
pub use rseq_slice_core::runtime::{
    Intervals, RuntimeMetrics, SliceMetrics, ThreadMetrics, ThreadRole,
};
pub use rseq_slice_core::{SliceCritical, SliceStats, Unavailable, critical, slice_critical};

/// The slice-aware locks (feature `locks`): rseq-slice-core's `lock` module.
#[cfg(feature = "locks")]
#[cfg_attr(docsrs, doc(cfg(feature = "locks")))]
pub use rseq_slice_core::lock;
