//! The locks on the real kernel: oversubscribed on one CPU, their holders
//! get grants and keep the request/granted protocol (`cargo xtask test`
//! boots with `rseq_debug=1`, which kills a thread that breaks it). On a
//! kernel without the feature every test prints why it skips.

use rseq_slice_testkit as common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{Mode, expect_init, kernel_mode, last_cpu, pin, say, spin};
use rseq_slice_core::diagnostics::KernelStats;
use rseq_slice_core::diagnostics::slice_ctrl;
use rseq_slice_core::lock::{Policy, RawSpin, SpinMutex, StdMutexExt, WithSlice};
use rseq_slice_core::{SliceStats, init, lock, stats};

const THREADS: usize = 4;
const RUN: Duration = Duration::from_millis(1500);
const SECTION: Duration = Duration::from_micros(2);

/// The request and granted bytes, which must both be 0 outside sections.
fn ctrl() -> (u8, u8) {
    slice_ctrl().expect("a live area while the feature is on")
}

/// `THREADS` threads pinned to one CPU run `op` (lock, 2 µs section,
/// unlock) then 1 µs outside, for `RUN`; each checks the control bytes
/// after every unlock. Returns the summed counters and the kernel's deltas.
fn oversubscribed(mode: Mode, op: impl Fn() + Send + Sync + 'static) -> (SliceStats, KernelStats) {
    let cpu = last_cpu();
    let op = Arc::new(op);
    let start = Arc::new(Barrier::new(THREADS + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let hs: Vec<_> = (0..THREADS)
        .map(|_| {
            let (op, start, stop, ops) = (op.clone(), start.clone(), stop.clone(), ops.clone());
            std::thread::spawn(move || {
                pin(cpu);
                let outcome = init();
                expect_init(mode, outcome);
                let on = outcome.is_ok();
                start.wait();
                let before = stats();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    op();
                    if on {
                        assert_eq!(ctrl(), (0, 0), "request/granted after unlock");
                    }
                    spin(Duration::from_micros(1));
                    n += 1;
                }
                ops.fetch_add(n, Ordering::Relaxed);
                stats() - before
            })
        })
        .collect();
    let k0 = KernelStats::read().ok();
    start.wait();
    std::thread::sleep(RUN);
    stop.store(true, Ordering::Relaxed);
    let s: SliceStats = hs.into_iter().map(|h| h.join().expect("worker")).sum();
    let k = match (KernelStats::read().ok(), k0) {
        (Some(a), Some(b)) => a.since(b),
        _ => KernelStats::default(),
    };
    say(format_args!(
        "  {} ops; crate {s:?}; kernel {k:?}",
        ops.load(Ordering::Relaxed)
    ));
    (s, k)
}

fn expect_grants(name: &str, mode: Mode, (s, k): (SliceStats, KernelStats)) {
    match mode {
        Mode::Crate | Mode::LibcV2 => {
            assert!(s.granted > 0, "{name}: no grant under contention: {s:?}");
            assert!(s.yielded > 0, "{name}: no yield inside a grant: {s:?}");
            assert!(k.granted >= s.granted, "{name}: kernel {k:?} vs {s:?}");
        }
        Mode::LibcLegacy => assert_eq!(s.granted, 0, "{name}: an inert guard is never granted"),
    }
}

fn section<T>(_held: &T) {
    spin(SECTION);
}

#[test]
fn spinlock_holders_get_grants_when_oversubscribed() {
    let Some(mode) = kernel_mode("spinlock_holders_get_grants_when_oversubscribed") else {
        return;
    };
    for policy in [Policy::Always, Policy::ADAPTIVE] {
        say(format_args!("spin {policy:?}"));
        let m = Arc::new(SpinMutex::from_raw(RawSpin::new(policy), ()));
        let r = oversubscribed(mode, move || section(&m.lock()));
        expect_grants("spin", mode, r);
    }
}

#[test]
fn spinlock_without_requests_gets_no_grants() {
    let Some(mode) = kernel_mode("spinlock_without_requests_gets_no_grants") else {
        return;
    };
    let m = Arc::new(SpinMutex::from_raw(RawSpin::new(Policy::Never), ()));
    let (s, _) = oversubscribed(mode, move || section(&m.lock()));
    assert_eq!((s.requested, s.granted), (0, 0), "{s:?}");
}

#[test]
fn wrapped_locks_keep_the_protocol_and_get_grants() {
    let Some(mode) = kernel_mode("wrapped_locks_keep_the_protocol_and_get_grants") else {
        return;
    };
    say(format_args!("parking_lot, Always"));
    let pl = Arc::new(lock::Mutex::<parking_lot::RawMutex, ()>::from_raw(
        WithSlice::new(
            <parking_lot::RawMutex as lock_api::RawMutex>::INIT,
            Policy::Always,
        ),
        (),
    ));
    let (s, _) = oversubscribed(mode, move || section(&pl.lock()));
    // Parked waiters leave the CPU to the holder: fewer preemptions, but
    // the tick and wake-ups still land inside sections.
    if mode.on() {
        assert!(s.requested > 0 && s.granted > 0, "{s:?}");
    }
    say(format_args!("spin crate (lock_api 0.4), default policy"));
    let s04: Arc<lock::v0_4::Mutex<spin::Mutex<()>, ()>> = Arc::new(lock::v0_4::Mutex::new(()));
    expect_grants(
        "spin 0.4",
        mode,
        oversubscribed(mode, move || section(&s04.lock())),
    );
    say(format_args!("std::sync::Mutex"));
    let m = Arc::new(std::sync::Mutex::new(()));
    let (s, _) = oversubscribed(mode, move || section(&m.lock_slice().unwrap()));
    if mode.on() {
        assert!(s.requested > 0 && s.granted > 0, "{s:?}");
    }
}

#[test]
fn a_grant_ends_with_a_yield_after_unlock() {
    let Some(mode) = kernel_mode("a_grant_ends_with_a_yield_after_unlock") else {
        return;
    };
    if !mode.on() {
        say(format_args!(
            "SKIPPED a_grant_ends_with_a_yield_after_unlock: glibc's legacy area gets no grants"
        ));
        return;
    }
    // One holder and a busy sibling on the same CPU: the tick lands inside
    // the long-ish section now and then; each grant must be yielded after
    // the unlock (the spinlock is free when the sibling gets the CPU).
    let cpu = last_cpu();
    let m = Arc::new(SpinMutex::from_raw(RawSpin::new(Policy::Always), ()));
    let stop = Arc::new(AtomicBool::new(false));
    let sibling = {
        let (m, stop) = (m.clone(), stop.clone());
        std::thread::spawn(move || {
            pin(cpu);
            let _ = init();
            let mut seen_free = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if !m.is_locked() {
                    seen_free += 1;
                }
            }
            seen_free
        })
    };
    let s = std::thread::spawn(move || {
        pin(cpu);
        init().expect("feature on");
        let before = stats();
        let t = Instant::now();
        while t.elapsed() < RUN {
            let g = m.lock();
            spin(Duration::from_micros(20));
            drop(g);
            assert_eq!(ctrl(), (0, 0));
        }
        stats() - before
    })
    .join()
    .expect("holder");
    stop.store(true, Ordering::Relaxed);
    let seen_free = sibling.join().expect("sibling");
    say(format_args!(
        "  holder {s:?}, sibling saw it free {seen_free} times"
    ));
    assert!(s.granted > 0, "{s:?}");
    assert_eq!(s.granted, s.yielded + s.revoked);
    assert!(s.yielded > 0, "{s:?}");
}
