//! Guard, state and statistics behaviour that holds on any kernel: on one
//! without the feature these exercise the fallback, in the guest the real area.

use rseq_slice_testkit as common;

use common::{on_thread, sections};

use std::sync::atomic::{AtomicU64, Ordering};

use rseq_slice_core::diagnostics::kernel_support;
use rseq_slice_core::diagnostics::{request_ptr, slice_ctrl};
use rseq_slice_core::runtime::SharedStats;
use rseq_slice_core::{Error, SliceGuard, SliceStats, Unavailable, critical, init, state, stats};

#[test]
fn a_new_thread_is_not_initialised_and_its_guards_still_work() {
    on_thread(|| {
        assert_eq!(state(), Err(Unavailable::NotInitialized));
        assert!(request_ptr().is_none());
        let before = stats();
        assert_eq!(critical(|| 7), 7);
        let d = stats() - before;
        assert_eq!(d, SliceStats::default(), "a guard is inert until init");
    });
}

#[test]
fn init_agrees_with_the_kernel_verdict() {
    on_thread(|| {
        let outcome = init();
        match kernel_support() {
            // The kernel lacks it: every thread reports the same reason.
            Err(why) => assert_eq!(outcome, Err(why)),
            // The kernel has it: on, or off for a thread-level reason.
            Ok(()) => assert!(
                matches!(outcome, Ok(_) | Err(Unavailable::LibcLegacy { .. })),
                "unexpected {outcome:?}"
            ),
        }
        // Idempotent.
        assert_eq!(init(), outcome);
        assert_eq!(state(), outcome);
        assert_eq!(request_ptr().is_some(), outcome.is_ok());
    });
}

#[test]
fn only_the_outermost_guard_counts() {
    on_thread(|| {
        let _ = init();
        let before = stats();
        {
            let _a = SliceGuard::new();
            let _b = SliceGuard::new();
            critical(|| critical(|| ()));
        }
        critical(|| ());
        assert_eq!((stats() - before).requested, sections(2));
    });
}

#[test]
fn a_panic_inside_a_section_ends_it() {
    on_thread(|| {
        let _ = init();
        let before = stats();
        let r = std::panic::catch_unwind(|| critical(|| panic!("inside")));
        assert!(r.is_err());
        // The guard was dropped during unwinding: a new section is outermost.
        critical(|| ());
        assert_eq!((stats() - before).requested, sections(2));
        if let Some((request, _)) = slice_ctrl() {
            assert_eq!(request, 0, "request left set");
        }
    });
}

#[test]
fn switching_inside_a_section_is_refused() {
    on_thread(|| {
        let on = init().is_ok();
        let _g = SliceGuard::new();
        let r = rseq_slice_core::disable();
        if on {
            assert_eq!(r, Err(Error::InCriticalSection));
        } else {
            assert!(matches!(r, Err(Error::Unavailable(_))), "{r:?}");
        }
    });
}

static HANDLER_SECTIONS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    // A guard in a signal handler on a thread that may be inside one.
    let before = stats().requested;
    critical(|| ());
    HANDLER_SECTIONS.fetch_add(stats().requested - before, Ordering::Relaxed);
}

#[test]
fn a_signal_handler_may_use_guards() {
    on_thread(|| {
        let _ = init();
        // SAFETY: installing a handler that only touches thread-locals and an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as *const () as usize;
            assert_eq!(libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()), 0);
        }
        let raise = || {
            // SAFETY: raise delivers SIGUSR2 to this thread before returning.
            assert_eq!(unsafe { libc::raise(libc::SIGUSR2) }, 0);
        };
        let before = stats();
        raise(); // outside a section: the handler's guard is outermost
        critical(raise); // inside: the handler's guard nests
        assert_eq!(HANDLER_SECTIONS.load(Ordering::Relaxed), sections(1));
        assert_eq!((stats() - before).requested, sections(2));
        if let Some((request, _)) = slice_ctrl() {
            assert_eq!(request, 0);
        }
    });
}

#[test]
fn a_forked_child_keeps_working() {
    on_thread(|| {
        let outcome = init();
        // SAFETY: the child only touches this thread's state and exits with
        // _exit, running no destructors.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let before = stats();
            critical(|| ());
            // The registration and the enable bit survive fork (no CLONE_VM).
            let enabled = rseq_slice_core::diagnostics::ThreadReport::read().prctl_enabled;
            let ok = (stats() - before).requested == sections(1)
                && state() == outcome
                && (outcome.is_err() || enabled == Ok(true));
            // SAFETY: leaving the child without running the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "the child's guard or state was wrong"
        );
    });
}

#[test]
fn stats_add_subtract_and_publish() {
    on_thread(|| {
        let _ = init();
        let shared = SharedStats::new();
        let before = stats();
        critical(|| ());
        critical(|| ());
        shared.publish();
        let total: SliceStats = [shared.load(), shared.load()].into_iter().sum();
        assert_eq!(total.requested, 2 * shared.load().requested);
        assert_eq!((shared.load() - before).requested, sections(2));
    });
}

#[test]
fn every_reason_reads_as_advice() {
    use rseq_slice_core::diagnostics::Errno;
    let all = [
        Unavailable::NotInitialized,
        Unavailable::KernelTooOld { feature_size: 28 },
        Unavailable::NotBuiltIn,
        Unavailable::DisabledAtBoot,
        Unavailable::LibcLegacy { size: 32 },
        Unavailable::ForeignRegistration,
        Unavailable::RseqUnavailable(Errno::from_raw(libc::ENOSYS)),
        Unavailable::RegistrationFailed(Errno::from_raw(libc::EINVAL)),
        Unavailable::LegacyOnly,
        Unavailable::EnableFailed(Errno::from_raw(libc::ENXIO)),
        Unavailable::Disabled,
        Unavailable::ThreadExiting,
    ];
    for u in all {
        let s = u.to_string();
        assert!(s.len() > 40 && !s.ends_with('.'), "{u:?}: {s}");
    }
    assert!(
        Unavailable::LibcLegacy { size: 32 }
            .to_string()
            .contains("GLIBC_TUNABLES=glibc.pthread.rseq=0")
    );
    assert!(
        Unavailable::DisabledAtBoot
            .to_string()
            .contains("rseq_slice_ext=off")
    );
}
