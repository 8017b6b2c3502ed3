//! aarch64: the exit's one-instruction clear, the thread pointer, and the
//! raw `rseq_slice_yield()`.

/// Clear the `request` byte at `p` and return its old value, in one
/// instruction that no interrupt can split.
///
/// The kernel writes `slice_ctrl` only from this thread's own interrupt and
/// exit-to-user paths, so "atomic with respect to this CPU's interrupts" is
/// all the exit needs, and no `lock` prefix is paid for. With a separate load
/// and store, a grant made and revoked between them (the grant's interrupt
/// returns into the middle of the pair; under emulation retranslating the
/// code there can take longer than the grant) would be seen by neither: its
/// armed syscall work then survives into the next section.
///
/// aarch64: an exclusive load/store pair (or `swpb`), which an exception
/// return between the two makes retry.
///
/// # Safety
/// `p` must be valid for reads and writes of one byte, and accessed only by
/// this thread and the kernel on its behalf.
#[inline(always)]
pub(crate) unsafe fn take_request(p: *mut u8) -> u8 {
    // SAFETY: the caller guarantees `p`; only this thread touches it
    // (besides the kernel from its own exception paths).
    let old = unsafe { core::sync::atomic::AtomicU8::from_ptr(p) }
        .swap(0, core::sync::atomic::Ordering::Relaxed);
    // The caller reads `granted` next with a volatile load, which the
    // compiler could otherwise move above this Relaxed swap (x86_64's asm is
    // a compiler barrier by itself).
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    old
}

/// The calling thread's thread pointer, the base of glibc's `__rseq_offset`.
pub(crate) fn thread_pointer() -> *mut u8 {
    let tp: *mut u8;
    // SAFETY: reading TPIDR_EL0 has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, tpidr_el0", out(reg) tp, options(nostack, preserves_flags, nomem));
    }
    tp
}

/// `rseq_slice_yield()` (syscall 471) as a raw `svc`: the kernel's return
/// value (1 yielded, 0 no grant, `-errno`), and `errno` untouched, so a
/// guard that drops in a signal handler leaves the interrupted code's
/// `errno` as it was.
#[inline]
pub(crate) fn rseq_slice_yield() -> isize {
    let ret: isize;
    // SAFETY: syscall 471 takes no arguments and writes no memory of ours but
    // the `granted` byte (hence no `nomem`: the asm is a compiler barrier);
    // the kernel preserves every register but x0.
    unsafe {
        core::arch::asm!(
            "svc #0",
            in("x8") crate::abi::SYS_RSEQ_SLICE_YIELD as usize,
            lateout("x0") ret,
            options(nostack),
        );
    }
    ret
}
