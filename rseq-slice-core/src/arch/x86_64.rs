//! x86_64: the exit's one-instruction clear, the thread pointer, and the
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

/// `rseq_slice_yield()` (syscall 471) as a raw `syscall` instruction: the
/// kernel's return value (1 yielded, 0 no grant, `-errno`), and `errno`
/// untouched, so a guard that drops in a signal handler leaves the
/// interrupted code's `errno` as it was.
#[inline]
pub(crate) fn rseq_slice_yield() -> isize {
    let ret: isize;
    // SAFETY: syscall 471 takes no arguments and writes no memory of ours but
    // the `granted` byte (hence no `nomem`: the asm is a compiler barrier);
    // `syscall` clobbers only rcx and r11 besides rax.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") crate::abi::SYS_RSEQ_SLICE_YIELD as isize => ret,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}
