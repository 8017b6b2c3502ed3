//! What the kernel, libc and this thread say, for probes, tests and
//! tooling: the thread's registration ([`ThreadReport`]), its `slice_ctrl`
//! bytes ([`slice_ctrl`]) and the kernel's own counters ([`KernelStats`]).

pub use crate::kernel_stats::{KERNEL_STATS_PATH, KernelStats};
pub use crate::registration::{AreaFlags, ThreadReport};
pub use crate::sys::LibcRseq;

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
