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
//! Modules, one concept each: `abi` (the kernel's layout and constants),
//! `sys` (the system calls), `registration` (kernel support, the area, the thread report), `local` and `guard`
//! (the protocol), `future` (`slice_critical` for async code), `stats`
//! (counters), `reason` (why not), `kernel_stats` (the kernel's own counters), `runtime` (what runtime adapters share:
//! a per-thread handle, per-thread metrics and their intervals, sections
//! spanning two hooks), and with the `lock_api`
//! feature `lock` (lock wrappers and the adaptive policy) and `spin` (the
//! clear-and-recheck spinlock).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
compile_error!("rseq-slice-core supports Linux on x86_64 and aarch64");

pub mod abi;
mod future;
mod guard;
mod kernel_stats;
mod local;
#[cfg(feature = "lock_api")]
mod lock;
mod reason;
mod registration;
mod report;
pub mod runtime;
mod stats;
mod sys;

pub use future::{SliceCritical, slice_critical};
pub use guard::{SliceGuard, critical};
pub use kernel_stats::{KERNEL_STATS_PATH, KernelStats};
pub use local::Registrar;
#[cfg(feature = "lock_api")]
#[cfg_attr(docsrs, doc(cfg(feature = "lock_api")))]
pub use lock::api04 as lock_api_0_4;
#[cfg(feature = "lock_api")]
#[cfg_attr(docsrs, doc(cfg(feature = "lock_api")))]
pub use lock::{
    Policy, RawSpin, SliceHeld, SliceMutex, SliceMutexGuard, SliceRwLock, SpinMutex,
    SpinMutexGuard, StdMutexExt, StdSliceGuard, WithSlice,
};
pub use reason::{Errno, Error, Unavailable};
pub use registration::{
    AreaFlags, EnableVia, ThreadReport, disable, enable, init, init_with, kernel_support, state,
};
pub use stats::{SharedStats, SliceStats};
pub use sys::LibcRseq;

/// The calling thread's counters since it started.
pub fn stats() -> SliceStats {
    local::LOCAL.with(|l| l.stats())
}

/// Emit the `tracing` event for the grants this thread's guards got since
/// the last report (one `TRACE` event, target `rseq_slice`, fields `grants`
/// and `yielded`); nothing without the `tracing` feature or without new
/// grants.
///
/// Guards never emit events themselves: a guard may drop inside a signal
/// handler, where `tracing` must not run. The runtime adapters call this at
/// every section close, before parking and at thread stop. On threads of
/// your own, call it where it suits you, outside signal handlers.
pub fn report_grants() {
    local::LOCAL.with(report::report);
}

/// `rseq_slice_yield()`: give the CPU back inside a grant; true when the
/// thread yielded within its extension. Guards call it for you.
pub fn slice_yield() -> bool {
    sys::slice_yield()
}

/// The address of this thread's `slice_ctrl.request` byte (`granted` is the
/// next byte) while the extension is on; `None` while guards are inert.
///
/// For tests and tooling. Writing `request` while `granted` is set, or
/// writing `granted` at all, gets the thread killed with SIGSEGV.
pub fn request_ptr() -> Option<core::ptr::NonNull<u8>> {
    local::LOCAL.with(|l| l.live_ctrl())
}

/// This thread's `slice_ctrl` as `(request, granted)`, read afresh, while
/// the extension is on; `None` while guards are inert.
///
/// For tests and tooling: outside any guard both are 0; inside the
/// outermost one `request` is 1 until the kernel grants (then `granted` is
/// 1 and `request` 0) or clears it.
///
/// ```
/// let _ = rseq_slice_core::init();
/// if let Some((request, _granted)) = rseq_slice_core::slice_ctrl() {
///     assert_eq!(request, 0); // no section open
///     rseq_slice_core::critical(|| assert!(rseq_slice_core::slice_ctrl().is_some()));
/// }
/// ```
pub fn slice_ctrl() -> Option<(u8, u8)> {
    local::LOCAL.with(|l| l.ctrl_bytes())
}
