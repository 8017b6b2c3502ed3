//! A shared library with a copy of rseq-slice-core of its own, as a Python
//! extension module would have: `rseq-slice-core/tests/copies.rs` loads it
//! twice (under two file names) beside the test binary's own copy.

/// `init()` on the calling thread: 0 on, 1 [`ForeignRegistration`] (another
/// copy registered the thread's area), 2 any other reason.
///
/// [`ForeignRegistration`]: rseq_slice_core::Unavailable::ForeignRegistration
#[unsafe(no_mangle)]
pub extern "C" fn copy_init() -> i32 {
    match rseq_slice_core::init() {
        Ok(_) => 0,
        Err(rseq_slice_core::Unavailable::ForeignRegistration) => 1,
        Err(_) => 2,
    }
}

/// Run `inner` inside a guard of this copy, and return the thread's
/// `request` byte after it (-1 where the extension is off in this copy).
#[unsafe(no_mangle)]
pub extern "C" fn copy_section(inner: extern "C" fn()) -> i32 {
    rseq_slice_core::critical(|| {
        inner();
        rseq_slice_core::diagnostics::slice_ctrl().map_or(-1, |(request, _)| i32::from(request))
    })
}

/// The sections this copy's guards entered on the calling thread.
#[unsafe(no_mangle)]
pub extern "C" fn copy_requested() -> u64 {
    rseq_slice_core::stats().requested
}

/// The sections of this copy that found another copy's section open on the
/// calling thread and stayed inert.
#[unsafe(no_mangle)]
pub extern "C" fn copy_foreign() -> u64 {
    rseq_slice_core::stats().foreign
}
