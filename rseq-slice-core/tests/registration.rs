//! Registration on the real kernel: the crate's own area (enabled by its
//! registration flag or by prctl), disable and enable, a boot with the
//! feature off, and thread churn that leaves nothing registered.
//!
//! On a kernel without the feature every test prints why it skips; `cargo
//! xtask test` runs them in a guest (`rseq_debug=1`) with
//! `RSEQ_SLICE_REQUIRE_KERNEL=1`: with the crate's own registration and glibc
//! 2.36's legacy one on the host's root, and glibc 2.41's own (adopted) in a
//! Debian root, and once more as a static glibc binary.

use rseq_slice_testkit as common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::{Mode, expect_init, kernel_mode, on_thread, say};
use rseq_slice_core::diagnostics::{EnableVia, init_with};
use rseq_slice_core::diagnostics::{ThreadReport, request_ptr};
use rseq_slice_core::{Registrar, Unavailable, critical, disable, enable, init, state, stats};

fn expect_legacy(outcome: Result<Registrar, Unavailable>) {
    expect_init(Mode::LibcLegacy, outcome);
}

#[test]
fn own_v2_registration_with_default_on() {
    let Some(mode) = kernel_mode("own_v2_registration_with_default_on") else {
        return;
    };
    on_thread(move || {
        let outcome = init_with(EnableVia::RegistrationFlag);
        let r = ThreadReport::read();
        assert_eq!(r.feature_size, 33);
        assert_eq!(r.align, 64);
        assert_eq!(r.registered, Ok(true));
        if mode == Mode::LibcLegacy {
            expect_legacy(outcome);
            assert_eq!(r.prctl_enabled, Ok(false));
            return;
        }
        expect_init(mode, outcome);
        let f = r.flags.expect("flags of the live area");
        assert!(f.available() && f.enabled(), "flags {:#x}", f.0);
        assert_eq!(
            r.prctl_enabled,
            Ok(true),
            "prctl GET must agree with the flags"
        );
    });
}

#[test]
fn own_registration_enabled_by_prctl() {
    let Some(mode) = kernel_mode("own_registration_enabled_by_prctl") else {
        return;
    };
    on_thread(move || {
        let outcome = init_with(EnableVia::Prctl);
        if mode == Mode::LibcLegacy {
            return expect_legacy(outcome);
        }
        expect_init(mode, outcome);
        let r = ThreadReport::read();
        let f = r.flags.unwrap();
        assert!(f.available() && f.enabled(), "flags {:#x}", f.0);
        assert_eq!(r.prctl_enabled, Ok(true));
    });
}

#[test]
fn disable_then_enable_round_trip() {
    let Some(mode) = kernel_mode("disable_then_enable_round_trip") else {
        return;
    };
    on_thread(move || {
        let outcome = init();
        if mode == Mode::LibcLegacy {
            expect_legacy(outcome);
            assert!(disable().is_err() && enable().is_err());
            return;
        }
        let area = request_ptr().expect("live area");
        disable().unwrap();
        assert_eq!(state(), Err(Unavailable::Disabled));
        assert!(request_ptr().is_none());
        let r = ThreadReport::read();
        assert_eq!(r.prctl_enabled, Ok(false));
        // The flags of the area itself: ENABLED cleared, AVAILABLE kept.
        // SAFETY: `area` is this thread's registered slice_ctrl; flags sit 12
        // bytes before it (offset 16 vs 28).
        let flags = unsafe { area.as_ptr().sub(12).cast::<u32>().read_volatile() };
        assert_eq!(flags & 0x30, 0x10, "flags {flags:#x}");
        critical(|| ());
        // SAFETY: as above.
        let request = unsafe { area.as_ptr().read_volatile() };
        assert_eq!(request, 0, "a disabled guard touched the area");
        enable().unwrap();
        assert_eq!(state(), outcome);
        assert_eq!(request_ptr(), Some(area));
        assert_eq!(ThreadReport::read().prctl_enabled, Ok(true));
        assert!(ThreadReport::read().flags.unwrap().enabled());
    });
}

static LEFT_REGISTERED: AtomicUsize = AtomicUsize::new(0);
static CHECKED_AT_EXIT: AtomicUsize = AtomicUsize::new(0);

/// Dropped after the crate's own thread-local (it was created first, and
/// thread-local destructors run in reverse order): sees the thread as the
/// kernel does once rseq-slice has let go.
struct AfterExit;

impl Drop for AfterExit {
    fn drop(&mut self) {
        if ThreadReport::read().registered != Ok(false) {
            LEFT_REGISTERED.fetch_add(1, Ordering::Relaxed);
        }
        // A guard after the area is gone is inert.
        critical(|| ());
        assert_eq!(state(), Err(Unavailable::ThreadExiting));
        CHECKED_AT_EXIT.fetch_add(1, Ordering::Relaxed);
    }
}

thread_local! {
    static AFTER_EXIT: AfterExit = const { AfterExit };
}

#[test]
fn thread_churn_leaves_nothing_registered() {
    let Some(mode) = kernel_mode("thread_churn_leaves_nothing_registered") else {
        return;
    };
    const THREADS: usize = 2000;
    let t = Instant::now();
    for _ in 0..THREADS / 8 {
        let batch: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(move || {
                    // The crate's own area goes before later thread-local
                    // destructors; libc's stays until the thread ends.
                    if mode == Mode::Crate {
                        AFTER_EXIT.with(|_| ());
                    }
                    let outcome = init();
                    for _ in 0..100 {
                        critical(|| std::hint::black_box(()));
                    }
                    expect_init(mode, outcome);
                    stats()
                })
            })
            .collect();
        for h in batch {
            let expected = if mode.on() { 100 } else { 0 };
            assert_eq!(h.join().expect("a churn thread failed").requested, expected);
        }
    }
    say(format_args!(
        "thread churn [{mode:?}]: {THREADS} threads in {:?}",
        t.elapsed()
    ));
    if mode == Mode::Crate {
        assert_eq!(CHECKED_AT_EXIT.load(Ordering::Relaxed), THREADS);
        assert_eq!(
            LEFT_REGISTERED.load(Ordering::Relaxed),
            0,
            "threads exited still registered"
        );
    }
}

#[test]
fn a_boot_without_the_feature_says_why() {
    let Ok(expected) = std::env::var("RSEQ_SLICE_EXPECT_REASON") else {
        say(format_args!(
            "SKIPPED a_boot_without_the_feature_says_why: only for the guest boot with \
             rseq_slice_ext=off (RSEQ_SLICE_EXPECT_REASON=disabled-at-boot)"
        ));
        return;
    };
    assert_eq!(expected, "disabled-at-boot");
    assert_eq!(
        rseq_slice_core::diagnostics::kernel_support(),
        Err(Unavailable::DisabledAtBoot)
    );
    on_thread(|| {
        assert_eq!(init(), Err(Unavailable::DisabledAtBoot));
        assert!(request_ptr().is_none());
        let before = stats();
        critical(|| ());
        assert_eq!(
            (stats() - before).requested,
            0,
            "inert guards count nothing"
        );
        // The crate registered nothing of its own for a feature that is off.
        let libc_registers =
            rseq_slice_core::diagnostics::LibcRseq::get().is_some_and(|l| l.size > 0);
        assert_eq!(ThreadReport::read().registered, Ok(libc_registers));
    });
}

/// The descriptors open in this process, as `/proc/self/fd` lists them
/// (the one `read_dir` itself opens is the same number in every listing).
fn open_fds() -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| {
            let e = e.ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some(format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            ))
        })
        .collect();
    fds.sort();
    fds
}

/// `init` opens no file descriptor and binds no name: nothing of the
/// process shows in `/proc/net/unix`, which every user of the network
/// namespace can read.
#[test]
fn init_opens_no_descriptor_and_names_nothing() {
    let Some(mode) = kernel_mode("init_opens_no_descriptor_and_names_nothing") else {
        return;
    };
    let before = open_fds();
    on_thread(move || expect_init(mode, init()));
    let after = open_fds();
    assert_eq!(before, after, "init left descriptors open");
    let unix = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    let named: Vec<&str> = unix.lines().filter(|l| l.contains("rseq")).collect();
    say(format_args!(
        "descriptors before and after init: {}; unix sockets named rseq: {}",
        after.len(),
        named.len()
    ));
    assert!(named.is_empty(), "{named:#?}");
}
