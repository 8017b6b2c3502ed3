//! What every runtime adapter needs, written once: a per-thread metrics
//! registry ([`SliceMetrics`], bounded: see [`RETAINED_STOPPED`]) that a
//! service author reads like tokio-metrics' monitors (one
//! [`RuntimeMetrics`] from [`cumulative`](SliceMetrics::cumulative) and from
//! each of [`intervals`](SliceMetrics::intervals), and a [`ThreadMetrics`]
//! per thread from [`threads`](SliceMetrics::threads)), and a handle per runtime
//! thread ([`RuntimeThread`]) that holds the thread's entry in the registry
//! and its *open section*: a guard that spans two scheduler hooks (opened in
//! one, closed in the next) and reports its grant as a `tracing` event.
//!
//! An adapter calls [`RuntimeThread::start`] on each of its runtime
//! threads and keeps the handle until the thread stops: it calls
//! [`open_section`](RuntimeThread::open_section) /
//! [`close_section`](RuntimeThread::close_section) from its hooks and
//! [`idle`](RuntimeThread::idle) at natural pauses (before parking: it also
//! checks for guards left open). Dropping the handle closes the section,
//! publishes the final counters and marks the thread stopped.
//!
//! ```
//! use rseq_slice_core::runtime::{RuntimeThread, SliceMetrics};
//! let metrics = SliceMetrics::default();
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         let thread = RuntimeThread::start(&metrics); // thread.state() is Err(reason) on an old kernel: fine
//!         thread.open_section("scheduler");
//!         thread.close_section();
//!     }); // the handle drops here: published, stopped
//! });
//! let t = &metrics.threads()[0];
//! // One section, counted where the extension is on (guards are inert where it is off).
//! let on = u64::from(t.state.is_ok());
//! assert_eq!((t.index, t.alive, t.stats.requested), (0, false, on));
//! ```
//!
//! With the `tracing` feature (target `rseq_slice`; nothing is enabled
//! unless a subscriber wants that target and level), every section that got
//! a grant emits a `DEBUG` event with fields `thread`, `kind`, `granted`,
//! `yielded` and `revoked`, on whatever span is current at the hook; the
//! grants of every guard on the thread are reported as `TRACE` events
//! ([`crate::diagnostics::report_grants`]) at each section close, at
//! [`idle`](RuntimeThread::idle) and when the handle drops, never from
//! inside a guard. No span of the library stays entered across user code.
//! A thread where the extension is off logs its reason at `DEBUG`, and the
//! first thread of the process with each distinct reason at `WARN`; a thread
//! found idle with a guard open logs a `WARN` once.

mod config;
mod intervals;
mod metrics;
#[cfg(feature = "tracing")]
mod off_reasons;
mod role;
mod thread;

#[doc(inline)]
pub use crate::__slice_config_methods as slice_config_methods;
pub use crate::stats::SharedStats;
pub use config::{Hook, ThreadConfig};
pub use intervals::{Intervals, RuntimeMetrics};
pub use metrics::{RETAINED_STOPPED, Retired, SliceMetrics, ThreadMetrics};
pub use role::ThreadRole;
pub use thread::RuntimeThread;
