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
//! # What is covered, and what is not
//!
//! glommio 0.9 has no thread-start, park or task-poll hooks. The adapter:
//! - uses the future generator (run on the executor thread, inside its first
//!   task poll) as the thread-start hook, and the drop of the executor's main
//!   future (or of a [`SliceExecutor`]) as the thread-stop hook (your
//!   [`SliceConfig::on_thread_start`] and [`SliceConfig::on_thread_stop`]
//!   run there);
//! - at the end of each poll of the main future (no other task runs then),
//!   publishes the counters, reports grants and checks for guards left open
//!   ([`RuntimeThread::idle`](rseq_slice_core::runtime::RuntimeThread::idle)),
//!   since there is no park hook; and publishes at the end.
//!
//! None of glommio's own short cross-thread sections can be wrapped from
//! outside it without also wrapping unbounded user work:
//! - task allocation read-locks the process-wide reactor-state `RwLock` (to
//!   find the executor's sleep notifier), but `spawn_local` then polls the
//!   new task right away, inside the same call: a guard around `spawn_local`
//!   would cover the task's whole first poll;
//! - foreign wakers (a crossbeam channel, then an `eventfd` write: a system
//!   call, which would end a grant anyway) and the `spawn_blocking` result
//!   mutex, both inside glommio, with no hook;
//! - the `shared_channel` SPSC ring: its push/pop are in `try_send` / `recv`,
//!   which you can wrap yourself: `slice_critical(async { tx.try_send(v) })`.
//!   A push that finds the peer asleep writes its eventfd (a system call: the
//!   grant, if any, ends there; allowed);
//! - the scheduler's own work between task-queue runs. The only per-run hook
//!   is `StallDetectionHandler::threshold`, called as a task-queue run
//!   *starts*; nothing is called when a run ends. A section opened there
//!   would span the whole run, every task poll in it, up to the preempt timer
//!   (100 ms by default), against a 5–50 µs grant; and installing the handler
//!   takes over `detect_stalls`, adds a timer thread per executor and a
//!   `SIGUSR1` handler for the process. So task-queue boundaries cannot carry
//!   the scheduler-section policy, and the adapter leaves stall detection to
//!   you.
//!
//! Tracing (the `tracing` feature) is the core's, shared with the tokio adapter
//! ([`rseq_slice_core::runtime`]): each executor thread enters a
//! `rseq_slice_thread` span (field `index`), a thread where the extension is
//! off logs why once (`WARN`), and so does one found with a guard left open;
//! grants are reported as `TRACE` events with target `rseq_slice` and fields
//! `grants` and `yielded` at each main-future poll and at the end (never from
//! inside a guard, which may run in a signal handler). There are no
//! scheduler sections, so no per-kind events.

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
pub use rseq_slice_core::runtime::{Intervals, RuntimeMetrics, SliceMetrics, ThreadMetrics};
pub use rseq_slice_core::{SliceCritical, SliceStats, Unavailable, critical, slice_critical};

/// The slice-aware locks (feature `locks`): rseq-slice-core's `lock` module.
#[cfg(feature = "locks")]
#[cfg_attr(docsrs, doc(cfg(feature = "locks")))]
pub use rseq_slice_core::lock;
