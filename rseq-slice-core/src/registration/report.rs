//! Reading the thread's area back: what the kernel and libc say.

use super::area::area_of;
use super::state;
use crate::abi::{self, Rseq};
use crate::local::Registrar;
use crate::reason::Unavailable;
use crate::sys::{self, LibcRseq};

/// The feature bits of `struct rseq::flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaFlags(pub u32);

impl AreaFlags {
    /// `RSEQ_CS_FLAG_SLICE_EXT_AVAILABLE`.
    pub fn available(self) -> bool {
        self.0 & abi::FLAG_SLICE_EXT_AVAILABLE != 0
    }
    /// `RSEQ_CS_FLAG_SLICE_EXT_ENABLED`.
    pub fn enabled(self) -> bool {
        self.0 & abi::FLAG_SLICE_EXT_ENABLED != 0
    }
}

/// The flags of `area`, the calling thread's registered area (libc's or the
/// crate's: the callers hold one just checked or registered).
pub(super) fn flags_of(area: *mut Rseq) -> AreaFlags {
    // SAFETY: per the callers, `area` is registered for this thread, so
    // mapped, and the kernel writes `flags` only on this thread's behalf.
    AreaFlags(unsafe { sys::read_u32(&raw const (*area).flags) })
}

/// What the kernel and libc say about this thread, read afresh: the
/// probe example prints it, tests assert on it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThreadReport {
    /// `getauxval(AT_RSEQ_FEATURE_SIZE)`.
    pub feature_size: u32,
    /// `getauxval(AT_RSEQ_ALIGN)`.
    pub align: u32,
    /// libc's `__rseq_*` symbols, where it exports them.
    pub libc: Option<LibcRseq>,
    /// Whether the thread has an rseq registration (anyone's).
    pub registered: Result<bool, crate::Errno>,
    /// The flags of the area guards use, when the extension is on.
    pub flags: Option<AreaFlags>,
    /// `prctl(PR_RSEQ_SLICE_EXTENSION, GET)`.
    pub prctl_enabled: Result<bool, crate::Errno>,
    /// [`state`]: who registered, or why the extension is off.
    pub state: Result<Registrar, Unavailable>,
}

impl ThreadReport {
    /// Read it all for the calling thread.
    pub fn read() -> ThreadReport {
        let (feature_size, align) = sys::auxv_feature_size_align();
        let state = state();
        ThreadReport {
            feature_size,
            align,
            libc: LibcRseq::get(),
            registered: sys::rseq_is_registered(),
            // While the state is On the area is registered (the crate's
            // drops it only after switching the state to ThreadExiting).
            flags: state
                .ok()
                .map(area_of)
                .filter(|a| !a.is_null())
                .map(flags_of),
            prctl_enabled: sys::slice_ext_get(),
            state,
        }
    }
}
