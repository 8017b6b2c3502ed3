//! What the kernel, libc and this thread say, and the knobs below the
//! defaults, for probes, tests and tooling: whether the kernel has the
//! feature ([`kernel_support`]), [`init_with`] another [`EnableVia`], the
//! thread's registration ([`ThreadReport`]), its `slice_ctrl` bytes
//! ([`slice_ctrl`]), the grant events ([`report_grants`]), the kernel's own
//! counters ([`KernelStats`]) and its layout ([`abi`]).

pub use crate::kernel_stats::{KERNEL_STATS_PATH, KernelStats};
pub use crate::reason::Errno;
pub use crate::registration::{AreaFlags, EnableVia, ThreadReport, init_with, kernel_support};
pub use crate::sys::LibcRseq;

/// The kernel's rseq ABI: `struct rseq`'s layout, flags and system call
/// numbers (`include/uapi/linux/rseq.h`), checked at compile time.
pub mod abi {
    pub use crate::abi::*;
}

/// Emit the `tracing` event for the grants this thread's guards got since
/// the last report (one `TRACE` event, target `rseq_slice`, fields
/// `granted`, `yielded` and `revoked`, on the span current here); nothing
/// without the `tracing` feature, without new grants, or without a
/// subscriber that wants that target and level.
///
/// Guards never emit events themselves: a guard may drop inside a signal
/// handler, where `tracing` must not run. Each [`slice_critical`](crate::slice_critical)
/// poll calls this after its guard; the runtime adapters at every section
/// close, before parking and at thread stop. On threads of your own, call it
/// where it suits you, outside signal handlers.
pub fn report_grants() {
    crate::local::LOCAL.with(crate::grant_events::report);
}

/// `rseq_slice_yield()`: give the CPU back inside a grant; true when the
/// thread yielded within its extension. Guards call it for you.
pub fn slice_yield() -> bool {
    crate::sys::slice_yield()
}

/// The address of this thread's `slice_ctrl.request` byte (`granted` is the
/// next byte) while the extension is on; `None` while guards are inert.
///
/// For tests and tooling. Writing `request` while `granted` is set, or
/// writing `granted` at all, gets the thread killed with SIGSEGV.
pub fn request_ptr() -> Option<core::ptr::NonNull<u8>> {
    crate::local::LOCAL.with(|l| l.live_ctrl())
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
/// if let Some((request, _granted)) = rseq_slice_core::diagnostics::slice_ctrl() {
///     assert_eq!(request, 0); // no section open
///     rseq_slice_core::critical(|| assert!(rseq_slice_core::diagnostics::slice_ctrl().is_some()));
/// }
/// ```
pub fn slice_ctrl() -> Option<(u8, u8)> {
    crate::local::LOCAL.with(|l| l.ctrl_bytes())
}
