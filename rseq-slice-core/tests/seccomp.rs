//! Seccomp profiles that deny `rseq` or `rseq_slice_yield`: each gives its
//! own reason, never a wrong one, and a failing yield leaves `errno` alone.
//!
//! Each case runs on a fresh thread that installs a filter of its own (a
//! filter binds the thread that installs it and the threads it creates).

use rseq_slice_core::Unavailable;
use rseq_slice_core::diagnostics::Errno;
use rseq_slice_testkit::{kernel_mode, on_thread};

const RSEQ: u32 = libc::SYS_rseq as u32;
const SLICE_YIELD: u32 = 471;

/// Deny system call `nr` on the calling thread with `errno`.
fn deny(nr: u32, errno: i32) {
    deny_with(
        nr,
        libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA),
    );
}

/// Answer system call `nr` on the calling thread with the filter action
/// `action` (an errno, or a kill).
fn deny_with(nr: u32, action: u32) {
    let insn = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    // seccomp_data.nr is at offset 0. (A test filter: it does not check
    // the architecture, as a real profile must.)
    let mut prog = [
        insn(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        insn(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, nr),
        insn(libc::BPF_RET | libc::BPF_K, 0, 0, action),
        insn(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: plain prctls; `fprog` points at `prog`, alive for the call
    // (the kernel copies the program).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog
            ),
            0,
            "installing the filter: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn errno() -> i32 {
    // SAFETY: the calling thread's errno, a thread-local int.
    unsafe { *libc::__errno_location() }
}

fn set_errno(v: i32) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = v }
}

#[test]
fn each_denied_system_call_gives_its_own_reason() {
    let Some(_) = kernel_mode("each_denied_system_call_gives_its_own_reason") else {
        return;
    };
    let cases = [
        (
            RSEQ,
            libc::EPERM,
            Unavailable::RseqUnavailable(Errno::from_raw(libc::EPERM)),
        ),
        (
            RSEQ,
            libc::ENOSYS,
            Unavailable::RseqUnavailable(Errno::from_raw(libc::ENOSYS)),
        ),
        (
            SLICE_YIELD,
            libc::EPERM,
            Unavailable::YieldBlocked(Errno::from_raw(libc::EPERM)),
        ),
        (
            SLICE_YIELD,
            libc::ENOSYS,
            Unavailable::YieldBlocked(Errno::from_raw(libc::ENOSYS)),
        ),
    ];
    for (nr, e, expected) in cases {
        let got = on_thread(move || {
            deny(nr, e);
            rseq_slice_core::init()
        });
        assert_eq!(got, Err(expected), "system call {nr} denied with errno {e}");
        println!("denied {nr} with {e}: {expected}");
    }
}

/// A yield that fails (here: denied, or unknown to an old kernel) must not
/// touch `errno`: a guard can drop in a signal handler, whose interrupted
/// code may be about to read it.
#[test]
fn a_failing_yield_leaves_errno_alone() {
    on_thread(|| {
        deny(SLICE_YIELD, libc::EACCES);
        set_errno(4242);
        assert!(!rseq_slice_core::diagnostics::slice_yield());
        assert_eq!(errno(), 4242, "rseq_slice_yield() changed errno");
    });
}

/// A sandbox that kills the process on `socket` (as strict profiles do for
/// a program that needs no network) lets `init` run: it makes no system
/// call but `rseq`, the prctl and `rseq_slice_yield`.
#[test]
fn init_survives_a_filter_that_kills_on_socket() {
    let Some(_) = kernel_mode("init_survives_a_filter_that_kills_on_socket") else {
        return;
    };
    let status = on_thread(|| {
        // SAFETY: the child installs a filter, initialises a fresh thread
        // and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let code = std::panic::catch_unwind(|| {
                for nr in [libc::SYS_socket, libc::SYS_bind, libc::SYS_socketpair] {
                    deny_with(nr as u32, libc::SECCOMP_RET_KILL_PROCESS);
                }
                on_thread(|| {
                    let _ = rseq_slice_core::init();
                });
                0
            })
            .unwrap_or(2);
            // SAFETY: ends the child without the parent's atexit work.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        status
    });
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "init under a filter that kills on socket: wait status {status:#x} (signal {})",
        if libc::WIFSIGNALED(status) {
            libc::WTERMSIG(status)
        } else {
            0
        }
    );
}
