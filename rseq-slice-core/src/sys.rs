//! Typed wrappers for the system calls and libc symbols the crate uses.
//!
//! The system calls and libc symbols go through libc here. The rest of the
//! crate's `unsafe` sits at the same edge, one concern a file: `arch/` (the
//! exit's one-instruction clear, the thread pointer, the raw
//! `rseq_slice_yield()`), `local.rs` (the guard's accesses to `slice_ctrl`),
//! `registration/` (the crate's own area: its allocation, and reads of a
//! registered area) and `lock/` (the raw locks' `unsafe` trait methods).

#[cfg(not(all(target_env = "gnu", target_feature = "crt-static")))]
use core::ffi::CStr;
use core::ptr;
use std::sync::OnceLock;

use crate::Errno;
use crate::abi::{self, Rseq};

fn result(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret < 0 {
        Err(Errno::from_raw(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ))
    } else {
        Ok(ret)
    }
}

/// `getauxval(AT_RSEQ_FEATURE_SIZE)` and `getauxval(AT_RSEQ_ALIGN)`; 0 when absent
/// (kernels before 6.3).
pub(crate) fn auxv_feature_size_align() -> (u32, u32) {
    // SAFETY: getauxval reads the process's auxiliary vector; any key is allowed.
    let (size, align) = unsafe {
        (
            libc::getauxval(abi::AT_RSEQ_FEATURE_SIZE),
            libc::getauxval(abi::AT_RSEQ_ALIGN),
        )
    };
    (size as u32, align as u32)
}

/// `rseq(area, len, flags, RSEQ_SIG)`: register `area` for the calling thread.
///
/// # Safety
/// `area` must point to `len` writable bytes, aligned as the kernel requires,
/// that stay valid until the thread unregisters them or exits.
pub(crate) unsafe fn rseq_register(area: *mut Rseq, len: u32, flags: i32) -> Result<(), Errno> {
    // SAFETY: the caller guarantees the area outlives the registration.
    result(unsafe { libc::syscall(libc::SYS_rseq, area, len, flags, abi::RSEQ_SIG) }).map(drop)
}

/// `rseq(area, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG)`.
///
/// # Safety
/// `area` and `len` must be those of the calling thread's own registration.
pub(crate) unsafe fn rseq_unregister(area: *mut Rseq, len: u32) -> Result<(), Errno> {
    // SAFETY: unregistering only makes the kernel stop writing to the area.
    result(unsafe {
        libc::syscall(
            libc::SYS_rseq,
            area,
            len,
            abi::RSEQ_FLAG_UNREGISTER,
            abi::RSEQ_SIG,
        )
    })
    .map(drop)
}

/// An address no user mapping can ever have: the last 64-byte-aligned
/// address of the canonical kernel half (x86_64 and aarch64 alike).
const NEVER_MAPPED: usize = 0xffff_ffff_ffff_ffc0;

/// Whether the calling thread has an rseq registration, whoever made it.
///
/// Asks the kernel to register an area at [`NEVER_MAPPED`]: a registered
/// thread gets EINVAL (the kernel compares the address with its
/// registration's before anything else), an unregistered one EFAULT, since
/// the address fails the kernel's `access_ok` before anything is written or
/// registered (every kernel with rseq: 6.18 and 7.2 seen). Since no
/// registration can be at that address, the kernel itself never answers
/// EPERM (another signature) or EBUSY (the same area) to it: those come from
/// a seccomp filter or an LSM, and are errors, like ENOSYS (no rseq in the
/// kernel, or a filter that says so).
pub(crate) fn rseq_is_registered() -> Result<bool, Errno> {
    // SAFETY: the area lies in the kernel half, which `access_ok` refuses:
    // the kernel writes nothing and registers nothing for it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rseq,
            NEVER_MAPPED as *mut Rseq,
            abi::ORIG_RSEQ_SIZE,
            0,
            0u32,
        )
    };
    match result(ret) {
        Err(Errno::FAULT) => Ok(false),
        Err(Errno::INVAL) => Ok(true),
        // A kernel that accepted the address would now hold a registration
        // (a useless one): the thread is registered either way.
        Ok(_) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Whether `area`/`len` is the calling thread's rseq registration: asking
/// the kernel to register it again fails with EBUSY exactly then (another
/// area or length gives EINVAL, another signature EPERM).
///
/// # Safety
/// The calling thread must have an rseq registration (anyone's): then the
/// kernel only compares and registers nothing. `area` must point to `len`
/// bytes that stay valid as long as the thread, in case it is the
/// registration.
pub(crate) unsafe fn rseq_is_current(area: *mut Rseq, len: u32) -> bool {
    // SAFETY: per the caller, the thread is registered, so this call cannot
    // register `area`; it returns an error either way.
    let ret = unsafe { libc::syscall(libc::SYS_rseq, area, len, 0, abi::RSEQ_SIG) };
    result(ret) == Err(Errno::BUSY)
}

/// `prctl(PR_RSEQ_SLICE_EXTENSION, PR_RSEQ_SLICE_EXTENSION_GET, 0, 0, 0)`.
pub(crate) fn slice_ext_get() -> Result<bool, Errno> {
    // SAFETY: a GET prctl only reads task state.
    let ret = unsafe {
        libc::prctl(
            abi::PR_RSEQ_SLICE_EXTENSION,
            abi::PR_RSEQ_SLICE_EXTENSION_GET,
            0u64,
            0u64,
            0u64,
        )
    };
    result(ret.into()).map(|v| v as u64 & abi::PR_RSEQ_SLICE_EXT_ENABLE != 0)
}

/// `prctl(PR_RSEQ_SLICE_EXTENSION, PR_RSEQ_SLICE_EXTENSION_SET, enable, 0, 0)`.
pub(crate) fn slice_ext_set(enable: bool) -> Result<(), Errno> {
    let arg = if enable {
        abi::PR_RSEQ_SLICE_EXT_ENABLE
    } else {
        0
    };
    // SAFETY: the kernel validates the registered area's flags itself.
    let ret = unsafe {
        libc::prctl(
            abi::PR_RSEQ_SLICE_EXTENSION,
            abi::PR_RSEQ_SLICE_EXTENSION_SET,
            arg,
            0u64,
            0u64,
        )
    };
    result(ret.into()).map(drop)
}

/// `rseq_slice_yield()`: true when the thread yielded inside its grant.
/// A raw system call: `errno` stays as it was, also in a signal handler.
#[inline]
pub(crate) fn slice_yield() -> bool {
    crate::arch::rseq_slice_yield() == 1
}

/// Whether `rseq_slice_yield()` may be called: outside a grant it returns 0
/// and does nothing else; a seccomp profile older than the system call
/// answers ENOSYS or EPERM instead.
pub(crate) fn slice_yield_allowed() -> Result<(), Errno> {
    match crate::arch::rseq_slice_yield() {
        r if r >= 0 => Ok(()),
        r => Err(Errno::from_raw(-r as i32)),
    }
}

/// What libc says about its own rseq registration (`__rseq_offset`,
/// `__rseq_size`, `__rseq_flags`). Looked up with `dlsym`, so the binary
/// loads on libcs without these symbols (glibc < 2.35, musl); a static glibc
/// binary (`-C target-feature=+crt-static`) has no dynamic symbols to look
/// up, so there they are linked directly, and its link needs glibc ≥ 2.35.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibcRseq {
    /// `__rseq_offset`: the area's offset from the thread pointer.
    pub offset: isize,
    /// `__rseq_size`: 0 when libc registered nothing, 20 or 32 for a legacy
    /// registration, the kernel's feature size (> 32) for an optimized one.
    pub size: u32,
    /// `__rseq_flags` (always 0 so far).
    pub flags: u32,
}

impl LibcRseq {
    /// The libc symbols, or `None` when this libc does not export them.
    pub fn get() -> Option<LibcRseq> {
        static LIBC: OnceLock<Option<LibcRseq>> = OnceLock::new();
        *LIBC.get_or_init(libc_symbols)
    }

    /// The calling thread's libc rseq area: the thread pointer plus
    /// `__rseq_offset`. Registered only when `size` is non-zero and libc's
    /// registration of this thread succeeded.
    pub fn area(&self) -> *mut Rseq {
        crate::arch::thread_pointer()
            .wrapping_offset(self.offset)
            .cast()
    }
}

#[cfg(not(all(target_env = "gnu", target_feature = "crt-static")))]
fn libc_symbols() -> Option<LibcRseq> {
    let offset = dlsym(c"__rseq_offset")?;
    let size = dlsym(c"__rseq_size")?;
    let flags = dlsym(c"__rseq_flags")?;
    // SAFETY: glibc defines these as `const ptrdiff_t` and `const unsigned
    // int`, set before any user code runs.
    unsafe {
        Some(LibcRseq {
            offset: ptr::read(offset.cast::<isize>()),
            size: ptr::read(size.cast::<u32>()),
            flags: ptr::read(flags.cast::<u32>()),
        })
    }
}

#[cfg(all(target_env = "gnu", target_feature = "crt-static"))]
fn libc_symbols() -> Option<LibcRseq> {
    unsafe extern "C" {
        static __rseq_offset: isize;
        static __rseq_size: u32;
        static __rseq_flags: u32;
    }
    // SAFETY: static glibc >= 2.35 defines them (an older one fails the
    // link), as constants set before any user code runs.
    unsafe {
        Some(LibcRseq {
            offset: ptr::read(&raw const __rseq_offset),
            size: ptr::read(&raw const __rseq_size),
            flags: ptr::read(&raw const __rseq_flags),
        })
    }
}

#[cfg(not(all(target_env = "gnu", target_feature = "crt-static")))]
fn dlsym(name: &CStr) -> Option<*const libc::c_void> {
    // SAFETY: `name` is NUL-terminated; RTLD_DEFAULT searches the global scope.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p.cast_const())
}

/// Read a kernel-written `u32` of an rseq area with single-copy atomicity.
///
/// # Safety
/// `p` must point into an rseq area of the calling thread (registered, or
/// libc's in the thread's control block): valid for reads.
#[inline]
pub(crate) unsafe fn read_u32(p: *const u32) -> u32 {
    // SAFETY: per the caller; volatile because the kernel writes it.
    unsafe { ptr::read_volatile(p) }
}
