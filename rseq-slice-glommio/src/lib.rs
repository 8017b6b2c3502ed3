//! glommio executors whose threads use Linux's rseq time slice extension.
//!
//! One builder call registers and enables each executor thread before its
//! first future runs, publishes per-executor metrics, and lets tasks mark
//! their short critical sections with [`slice_critical`]:
//!
//! ```
//! use glommio::LocalExecutorBuilder;
//! use rseq_slice_glommio::BuilderExt;
//! let handle = LocalExecutorBuilder::default()
//!     .with_slice_extension()
//!     .spawn(|| async {
//!         // Each poll of the inner future is one critical section.
//!         rseq_slice_glommio::slice_critical(async { /* short, lock-holding work */ }).await
//!     })
//!     .expect("glommio could not start (see StartError)");
//! handle.join().unwrap();
//! ```
//!
//! [`LocalExecutorPoolBuilder`](glommio::LocalExecutorPoolBuilder) gets the
//! same call (`.with_slice_extension().on_all_shards(..)`), and
//! [`SliceExecutorBuilder::make`] registers the calling thread. Where the
//! kernel lacks the feature, each executor logs the reason once (a `tracing`
//! warn, with the `tracing` feature, on by default), its
//! [`ThreadMetrics::state`] says why, and it runs on with guards that cost
//! about nothing. [`SliceConfig::metrics`] shows every executor's counters,
//! [cumulative](SliceMetrics::cumulative) and per
//! [interval](SliceMetrics::intervals). Where glommio itself cannot start
//! (less than 512 KiB of `RLIMIT_MEMLOCK`, ...), the builder returns a
//! [`StartError`].
//!
//! # What is covered
//!
//! Your [`slice_critical`] and [`critical`] sections inside tasks. glommio
//! 0.9 has no thread-start, park or task-poll hooks, so the adapter
//! registers each executor thread in the future generator (your
//! [`SliceConfig::on_thread_start`] runs there), publishes the counters,
//! reports grants and checks for guards left open at the end of each poll
//! of the main future, and finishes at its drop
//! ([`SliceConfig::on_thread_stop`]). None of glommio's own short sections
//! (the reactor-state lock, foreign wakers, task-queue boundaries) can be
//! wrapped from outside it without wrapping unbounded user work too, so
//! there are no scheduler sections: the workspace's `docs/glommio.md` goes
//! through them one by one. With the `tracing` feature, the reason the
//! extension is off is logged once per process (and each thread's at
//! `DEBUG`), and grants are `TRACE` events, never spans
//! ([`rseq_slice_core::runtime`]).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod builder;
mod config;
mod error;

pub use builder::{BuilderExt, SliceExecutor, SliceExecutorBuilder, SlicePoolBuilder};
pub use config::SliceConfig;
pub use error::{MIN_MEMLOCK, StartError};
pub use rseq_slice_core::diagnostics::EnableVia;
pub use rseq_slice_core::runtime::{
    Intervals, RuntimeMetrics, SliceMetrics, ThreadMetrics, ThreadRole,
};
pub use rseq_slice_core::{SliceCritical, SliceStats, Unavailable, critical, slice_critical};

/// The slice-aware locks (feature `locks`): rseq-slice-core's `lock` module.
#[cfg(feature = "locks")]
#[cfg_attr(docsrs, doc(cfg(feature = "locks")))]
pub use rseq_slice_core::lock;
