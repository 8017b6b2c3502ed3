//! Grants on the real kernel: under same-CPU noise they agree with the
//! kernel's own counters (`rseq/stats`), and the kernel's protocol check
//! kills a thread that sets `request` while granted.
//!
//! On a kernel without the feature every test prints why it skips; `cargo
//! xtask test` runs them in a guest (`rseq_debug=1`) with
//! `RSEQ_SLICE_REQUIRE_KERNEL=1`: with the crate's own registration and glibc
//! 2.36's legacy one on the host's root, and glibc 2.41's own (adopted) in a
//! Debian root, and once more as a static glibc binary.

use rseq_slice_testkit as common;

use std::time::{Duration, Instant};

use common::{Mode, Noise, expect_init, kernel_mode, last_cpu, on_thread, pin, say, spin};
use rseq_slice_core::diagnostics::{KernelStats, request_ptr};
use rseq_slice_core::{SliceGuard, critical, init, stats};

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
