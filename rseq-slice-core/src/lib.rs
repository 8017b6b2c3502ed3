//! Linux's rseq *time slice extension* for one thread at a time.
//!
//! Since Linux 7.0 a thread can ask the scheduler to defer a preemption for a
//! few microseconds while it holds a lock: it sets `request` in its rseq area,
//! and if the kernel would have preempted it meanwhile, the kernel grants an
//! extension instead and the thread gives the CPU back with
//! `rseq_slice_yield()` when the section ends. This crate registers the area,
//! turns the feature on, and wraps the protocol in a guard:
//!
//! ```
//! // Once per thread (runtime adapters do it from their thread-start hooks).
//! if let Err(why) = rseq_slice_core::init() {
//!     eprintln!("running without the slice extension: {why}");
//! }
//! let value = rseq_slice_core::critical(|| {
//!     // a short critical section: a few microseconds, no system calls
//!     42
//! });
//! assert_eq!(value, 42);
//! ```
//!
//! Where the feature is missing, guards still work and cost about nothing:
//! they are inert: one thread-local load and a branch. [`Unavailable`] says why.
//!
//! # What is here
//!
//! - **The thread:** [`init`] once per thread; [`state`], [`disable`],
//!   [`enable`]; why not: [`Unavailable`], [`Error`]; who registered:
//!   [`Registrar`].
//! - **Sections:** [`critical`], [`SliceGuard`], [`slice_critical`] for a
//!   future's polls. `slice_critical` and the locks initialise a thread at
//!   its first section; `SliceGuard` and `critical` never do (they stay
//!   async-signal-safe).
//! - **Counters:** [`stats`], [`SliceStats`].
//! - **Locks** (feature `lock_api`), read like parking_lot: the `lock`
//!   module's `Mutex<parking_lot::RawMutex, T>`, `RwLock`, `WithSlice` over
//!   any lock_api 0.5 raw lock, `v0_4` for 0.4, `StdMutexExt` for
//!   `std::sync::Mutex`, `SpinMutex` (the clear-and-recheck spinlock),
//!   `Policy`.
//! - **For runtime authors:** the [`runtime`] module (a per-thread handle,
//!   the metrics registry and its intervals, `SharedStats`).
//! - **Diagnostics:** the [`diagnostics`] module: `kernel_support`,
//!   `init_with` an `EnableVia`, `Errno`, the thread report, `slice_ctrl`,
//!   `slice_yield`, `report_grants`, the kernel's counters and its layout
//!   (`abi`).
//!
//! Inside, one concept a module: `abi`, `sys` (system calls), `arch` (the
//! only assembly),
//! `registration` (kernel support, the area, the report), `local` and
//! `guard` (the protocol), `future`, `stats`, `grant_events` (the `tracing`
//! events, outside the guards), `reason`, `kernel_stats`, `runtime`, `lock`.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
compile_error!("rseq-slice-core supports Linux on x86_64 and aarch64");

mod abi;
mod arch;
pub mod diagnostics;
mod future;
mod grant_events;
mod guard;
mod kernel_stats;
mod local;
#[cfg(feature = "lock_api")]
#[cfg_attr(docsrs, doc(cfg(feature = "lock_api")))]
pub mod lock;
mod reason;
mod registration;
pub mod runtime;
mod stats;
mod sys;

// The thread.
pub use local::Registrar;
pub use reason::{Error, Unavailable};
pub use registration::{disable, enable, init, state};

// Sections.
pub use future::{SliceCritical, slice_critical};
pub use guard::{SliceGuard, critical};

// Counters.
pub use stats::SliceStats;

// For the crate's own paths; public in `diagnostics`.
use reason::Errno;

/// The calling thread's counters since it started.
pub fn stats() -> SliceStats {
    local::LOCAL.with(|l| l.stats())
}
