//! x86_64: the exit's one-instruction clear, and the thread pointer.

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
/// x86_64: `cmpxchg` without `lock`: if the byte is 1 it becomes 0, and
/// `al` keeps 1; otherwise nothing is stored and `al` gets the byte.
///
/// # Safety
/// `p` must be valid for reads and writes of one byte.
#[inline(always)]
pub(crate) unsafe fn take_request(p: *mut u8) -> u8 {
    let old: u8;
    // SAFETY: the caller guarantees `p`; the asm touches only that byte and
    // flags, and acts as a compiler barrier (no `nomem`).
    unsafe {
        core::arch::asm!(
            "cmpxchg byte ptr [{p}], {zero}",
            p = in(reg) p,
            zero = in(reg_byte) 0u8,
            inout("al") 1u8 => old,
            options(nostack),
        );
    }
    old
}

/// The calling thread's thread pointer, the base of glibc's `__rseq_offset`.
pub(crate) fn thread_pointer() -> *mut u8 {
    let tp: *mut u8;
    // SAFETY: on x86_64 the TCB's first word is its own address (the TLS ABI).
    unsafe {
        core::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, preserves_flags, readonly));
    }
    tp
}
