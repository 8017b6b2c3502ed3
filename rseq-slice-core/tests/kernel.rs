//! The real kernel: registration, enablement, grants, the kernel's own
//! counters, its protocol checks, and thread churn. On a kernel without the
//! feature every test prints why it skips; `cargo xtask test` runs them in a
//! guest (`rseq_debug=1`) with `RSEQ_SLICE_REQUIRE_KERNEL=1`: with the
//! crate's own registration and glibc 2.36's legacy one on the host's root,
//! and glibc 2.41's own (adopted) in a Debian root.

use rseq_slice_testkit as common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Mode, Noise, expect_init, kernel_mode, last_cpu, on_thread, pin, say, spin};
use rseq_slice_core::diagnostics::abi::{self, Rseq};
use rseq_slice_core::diagnostics::{EnableVia, init_with};
use rseq_slice_core::diagnostics::{KernelStats, LibcRseq, ThreadReport, request_ptr};
use rseq_slice_core::{
    Registrar, SliceGuard, Unavailable, critical, disable, enable, init, state, stats,
};

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

#[test]
fn grants_under_noise_agree_with_kernel_stats() {
    let Some(mode) = kernel_mode("grants_under_noise_agree_with_kernel_stats") else {
        return;
    };
    let Some(k0) = KernelStats::read().ok() else {
        panic!("needs debugfs rseq/stats (CONFIG_RSEQ_STATS, root): the guest has both");
    };
    let (ours, kernel, elapsed) = on_thread(move || {
        let cpu = last_cpu();
        pin(cpu);
        expect_init(mode, init());
        // As the kernel's slice_test (n2_2_50): a same-CPU noise thread that
        // wakes every 50 µs; 2 µs critical sections back to back.
        let noise = Noise::start(cpu, Duration::from_micros(2), Duration::from_micros(50));
        let k0 = KernelStats::read().unwrap();
        let s0 = stats();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            critical(|| spin(Duration::from_micros(2)));
        }
        let ours = stats() - s0;
        let kernel = KernelStats::read().unwrap().since(k0);
        drop(noise);
        (ours, kernel, t.elapsed())
    });
    say(format_args!(
        "grants_under_noise [{mode:?}] in {elapsed:?}: ours {ours:?}; kernel deltas {kernel:?}; \
         kernel totals before {k0:?}"
    ));
    if mode == Mode::LibcLegacy {
        assert_eq!(ours.requested, 0, "guards are inert on a legacy area");
        assert_eq!(ours.granted, 0, "a legacy area never gets grants");
        assert_eq!(kernel.granted, 0);
        return;
    }
    assert!(ours.requested > 1000, "{ours:?}");
    assert!(ours.granted > 0, "no grants under same-CPU noise: {ours:?}");
    assert!(ours.yielded > 0, "no yield returned 1: {ours:?}");
    assert_eq!(ours.granted, ours.yielded + ours.revoked);
    // Only this process requests extensions in the guest, so the kernel's
    // counters for the window are ours: every yield that returned 1 is an
    // `syield`; every grant we saw is an `sgrant`, and so may be some of the
    // sections whose request we found cleared (grants revoked before we looked).
    assert_eq!(
        kernel.yielded, ours.yielded,
        "kernel {kernel:?} vs ours {ours:?}"
    );
    // The guard clears `request` and reads its old value in one instruction,
    // so every kernel grant is seen: as `granted`, or (revoked before the
    // section ended) as `cleared`.
    assert!(
        kernel.granted >= ours.granted && kernel.granted <= ours.granted + ours.cleared,
        "kernel sgrant {} outside [{}, {}]",
        kernel.granted,
        ours.granted,
        ours.granted + ours.cleared
    );
}

/// The child role of `setting_request_while_granted_is_killed`.
fn violate() -> ! {
    let cpu = last_cpu();
    pin(cpu);
    if init().is_err() {
        std::process::exit(3);
    }
    // Rust's runtime handles SIGSEGV to report stack overflows, and returns
    // from a SIGSEGV the kernel forces without a fault: take the default.
    // SAFETY: restoring the default disposition in a child about to die.
    unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
    let _noise = Noise::start(cpu, Duration::from_micros(2), Duration::from_micros(50));
    let p = request_ptr().unwrap().as_ptr();
    // An interrupt may revoke the grant between our read of `granted` and the
    // system call; then `request = 1` is no violation and the thread rightly
    // lives on. So try again: checks that are live kill us within a few
    // attempts, dead ones let every attempt survive.
    let mut survived = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        let _g = SliceGuard::new();
        let s = Instant::now();
        while s.elapsed() < Duration::from_micros(20) {
            // SAFETY: reading this thread's own `granted` byte.
            if unsafe { p.add(1).read_volatile() } != 0 {
                // The violation: set `request` while `granted` is set, then
                // enter the kernel, which checks slice_ctrl under rseq_debug.
                // SAFETY: deliberately breaking the protocol in a child process.
                unsafe {
                    p.write_volatile(1);
                    libc::getppid();
                    p.write_volatile(0);
                }
                survived += 1;
                if survived == 20 {
                    std::process::exit(4); // the checks are not live
                }
                break;
            }
        }
    }
    std::process::exit(5) // never granted
}

#[test]
fn setting_request_while_granted_is_killed() {
    if std::env::var_os("RSEQ_SLICE_VIOLATE").is_some() {
        violate();
    }
    let Some(mode) = kernel_mode("setting_request_while_granted_is_killed") else {
        return;
    };
    if mode == Mode::LibcLegacy {
        say(format_args!(
            "SKIPPED setting_request_while_granted_is_killed: glibc's legacy area has no slice_ctrl"
        ));
        return;
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "setting_request_while_granted_is_killed",
            "--exact",
            "--nocapture",
        ])
        .env("RSEQ_SLICE_VIOLATE", "1")
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGSEGV),
        "the violating child must die of SIGSEGV (exit 3: no feature, 4: survived, 5: never granted); got {status:?}"
    );
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

/// glibc ≥ 2.41's own area: registered without the extension, adopted by
/// `init()` and switched on with prctl; guards then use that very area.
#[test]
fn libc_v2_area_is_adopted_and_enabled_by_prctl() {
    let Some(mode) = kernel_mode("libc_v2_area_is_adopted_and_enabled_by_prctl") else {
        return;
    };
    if mode != Mode::LibcV2 {
        say(format_args!(
            "SKIPPED libc_v2_area_is_adopted_and_enabled_by_prctl: libc registered no \
             optimized area here ({mode:?}; the Debian root's glibc 2.41 does)"
        ));
        return;
    }
    on_thread(|| {
        let libc = LibcRseq::get().expect("glibc 2.41 exports __rseq_*");
        assert!(libc.size >= 33, "{libc:?}");
        let area = libc.area();
        // SAFETY: glibc's area of this thread, in its thread control block.
        let flags_before = unsafe { (&raw const (*area).flags).read_volatile() };
        assert_eq!(
            flags_before & 0x30,
            0x10,
            "glibc registers with the extension AVAILABLE, not ENABLED: {flags_before:#x}"
        );
        assert_eq!(ThreadReport::read().prctl_enabled, Ok(false));
        assert_eq!(init(), Ok(Registrar::LibcV2));
        let ctrl = request_ptr().expect("an area in use");
        assert_eq!(
            ctrl.as_ptr(),
            area.cast::<u8>().wrapping_add(28),
            "guards must use glibc's slice_ctrl"
        );
        let r = ThreadReport::read();
        assert!(
            r.flags.is_some_and(|f| f.available() && f.enabled()),
            "{r:?}"
        );
        assert_eq!(r.prctl_enabled, Ok(true));
    });
}

/// `rseq(area, len, flags, RSEQ_SIG)` for the test below.
fn rseq(area: *mut Rseq, len: u32, flags: i32) -> Result<(), std::io::Error> {
    // SAFETY: the callers keep every area they register alive until they
    // unregister it, and unregister only areas of this thread.
    let ret = unsafe { libc::syscall(libc::SYS_rseq, area, len, flags, abi::RSEQ_SIG) };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `__rseq_size` says glibc registered, but on this thread another area is
/// the registration (another library unregistered glibc's and registered
/// its own; or glibc's registration failed, leaving
/// `RSEQ_CPU_ID_REGISTRATION_FAILED`): guards on glibc's area would never
/// be granted, so it must not be adopted.
#[test]
fn a_libc_area_that_is_not_the_registration_is_not_adopted() {
    let Some(mode) = kernel_mode("a_libc_area_that_is_not_the_registration_is_not_adopted") else {
        return;
    };
    if mode != Mode::LibcV2 {
        say(format_args!(
            "SKIPPED a_libc_area_that_is_not_the_registration_is_not_adopted: libc registered \
             no optimized area here ({mode:?})"
        ));
        return;
    }
    // With cpu_id as the kernel leaves it after unregistering (-1), and as
    // glibc leaves it after a failed registration (-2).
    for cpu_id in [
        abi::RSEQ_CPU_ID_UNINITIALIZED,
        abi::RSEQ_CPU_ID_REGISTRATION_FAILED,
    ] {
        on_thread(move || {
            let libc = LibcRseq::get().unwrap();
            let glibc = libc.area();
            rseq(glibc, libc.size, abi::RSEQ_FLAG_UNREGISTER).expect("unregistering glibc's area");
            // SAFETY: glibc's area of this thread, unregistered: only we write it.
            unsafe { (&raw mut (*glibc).cpu_id).write_volatile(cpu_id) };
            // AT_RSEQ_ALIGN (64) for a 33-byte registration.
            #[repr(C, align(64))]
            struct Aligned(Rseq);
            let foreign = Box::into_raw(Box::new(Aligned(Rseq {
                cpu_id_start: 0,
                cpu_id: abi::RSEQ_CPU_ID_UNINITIALIZED,
                rseq_cs: 0,
                flags: 0,
                node_id: 0,
                mm_cid: 0,
                slice_ctrl: 0,
                reserved: 0,
            })));
            // SAFETY: `foreign` is live; its first field is at offset 0.
            let foreign_area = unsafe { &raw mut (*foreign).0 };
            rseq(foreign_area, 33, 0).expect("registering another area");
            let outcome = init();
            let ctrl = request_ptr();
            // Put glibc's registration back before the thread exits.
            rseq(foreign_area, 33, abi::RSEQ_FLAG_UNREGISTER)
                .expect("unregistering the other area");
            // SAFETY: unregistered above; allocated by Box::into_raw.
            drop(unsafe { Box::from_raw(foreign) });
            rseq(glibc, libc.size, 0).expect("registering glibc's area again");
            assert_eq!(
                outcome,
                Err(Unavailable::ForeignRegistration),
                "glibc's area (cpu_id {cpu_id:#x}) is not this thread's registration"
            );
            assert!(ctrl.is_none());
        });
    }
}
