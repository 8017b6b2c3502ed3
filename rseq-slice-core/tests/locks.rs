//! The lock wrappers on any kernel: mutual exclusion, try_lock, nesting
//! with other guards, the adaptive policy, and the request byte after
//! unlock (checked where the thread has a live area, i.e. in the guest).

use rseq_slice_testkit as common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use common::{on_thread, sections};
use rseq_slice_core::diagnostics::slice_ctrl;
use rseq_slice_core::lock::{Policy, RawSpin, SpinMutex, StdMutexExt, WithSlice};
use rseq_slice_core::{SliceGuard, critical, init, lock, stats};

const THREADS: usize = 4;
const ROUNDS: u64 = 20_000;

/// A counter updated with a separate load and store: lost updates show a
/// broken mutual exclusion.
#[derive(Default)]
struct Racy(AtomicU64);

impl Racy {
    fn bump(&self) {
        let v = self.0.load(Ordering::Relaxed);
        std::hint::black_box(v);
        self.0.store(v + 1, Ordering::Relaxed);
    }
}

/// `bump` under `THREADS` threads, each calling `init()` first; returns
/// the final count.
fn hammer(f: impl Fn() + Send + Sync + 'static) -> u64 {
    let f = Arc::new(f);
    let start = Arc::new(Barrier::new(THREADS));
    let hs: Vec<_> = (0..THREADS)
        .map(|_| {
            let (f, start) = (f.clone(), start.clone());
            std::thread::spawn(move || {
                let _ = init();
                start.wait();
                for _ in 0..ROUNDS {
                    f();
                }
                assert_request_clear();
            })
        })
        .collect();
    for h in hs {
        h.join().expect("worker panicked");
    }
    THREADS as u64 * ROUNDS
}

/// Outside every section, `request` and `granted` are 0 (in the guest,
/// where the thread has a live area; on the host there is none to read).
fn assert_request_clear() {
    if let Some((req, granted)) = slice_ctrl() {
        assert_eq!((req, granted), (0, 0), "request/granted after unlock");
    }
}

#[test]
fn parking_lot_wrapper_excludes() {
    for policy in [Policy::Always, Policy::ADAPTIVE, Policy::Never] {
        let m = Arc::new(lock::Mutex::<parking_lot::RawMutex, _>::from_raw(
            WithSlice::new(<parking_lot::RawMutex as lock_api::RawMutex>::INIT, policy),
            Racy::default(),
        ));
        let m2 = m.clone();
        let expect = hammer(move || m2.lock().bump());
        assert_eq!(m.lock().0.load(Ordering::Relaxed), expect, "{policy:?}");
    }
}

#[test]
fn spin_excludes_under_every_policy() {
    for policy in [Policy::Always, Policy::ADAPTIVE, Policy::Never] {
        let m = Arc::new(SpinMutex::from_raw(RawSpin::new(policy), Racy::default()));
        let m2 = m.clone();
        let expect = hammer(move || m2.lock().bump());
        assert_eq!(m.lock().0.load(Ordering::Relaxed), expect, "{policy:?}");
    }
}

#[test]
fn lock_api_04_spin_wrapper_excludes() {
    let m: Arc<lock::v0_4::Mutex<spin::Mutex<()>, Racy>> =
        Arc::new(lock::v0_4::Mutex::new(Racy::default()));
    let m2 = m.clone();
    let expect = hammer(move || m2.lock().bump());
    assert_eq!(m.lock().0.load(Ordering::Relaxed), expect);
}

#[test]
fn rwlock_writers_exclude_and_readers_share() {
    let l: Arc<lock::RwLock<parking_lot::RawRwLock, Racy>> =
        Arc::new(lock::RwLock::new(Racy::default()));
    let l2 = l.clone();
    let expect = hammer(move || {
        l2.write().bump();
        let _r = l2.read();
    });
    let (a, b) = (l.read(), l.read());
    assert_eq!(a.0.load(Ordering::Relaxed), expect);
    assert_eq!(b.0.load(Ordering::Relaxed), expect);
    assert!(l.try_write().is_none(), "readers hold it");
}

#[test]
fn std_mutex_guard_excludes() {
    let m = Arc::new(std::sync::Mutex::new(Racy::default()));
    let m2 = m.clone();
    let expect = hammer(move || m2.lock_slice().unwrap().bump());
    assert_eq!(m.lock().unwrap().0.load(Ordering::Relaxed), expect);
}

#[test]
fn try_lock_fails_while_held_and_leaves_no_section() {
    on_thread(|| {
        let _ = init();
        let pl: lock::Mutex<parking_lot::RawMutex, u8> = lock::Mutex::from_raw(
            WithSlice::new(
                <parking_lot::RawMutex as lock_api::RawMutex>::INIT,
                Policy::Always,
            ),
            0,
        );
        let sp = SpinMutex::from_raw(RawSpin::new(Policy::Always), 0u8);
        let s04: lock::v0_4::Mutex<spin::Mutex<()>, u8> = lock::v0_4::Mutex::new(0);
        let std = std::sync::Mutex::new(0u8);
        // Held elsewhere (another thread would see the same): try fails.
        let held = std::thread::scope(|s| {
            let (a, b, c, d) = (&pl, &sp, &s04, &std);
            let locked = Arc::new(Barrier::new(2));
            let release = Arc::new(Barrier::new(2));
            let (l2, r2) = (locked.clone(), release.clone());
            let h = s.spawn(move || {
                let _g = (a.lock(), b.lock(), c.lock(), d.lock().unwrap());
                l2.wait();
                r2.wait();
            });
            locked.wait();
            let before = stats();
            let fails = pl.try_lock().is_none()
                && sp.try_lock().is_none()
                && s04.try_lock().is_none()
                && std.try_lock_slice().is_err();
            assert_request_clear();
            // A failed try leaves depth 0: the next guard is outermost again.
            critical(|| ());
            let d = stats() - before;
            release.wait();
            h.join().expect("holder panicked");
            (fails, d)
        });
        assert!(held.0, "every try_lock must fail while the lock is held");
        // The spinlock's failed attempt entered and left one section (its
        // request is set just before the compare-exchange); the wrappers
        // request only after acquiring. Plus our own `critical`.
        assert_eq!(held.1.requested, sections(2));
        // Free: every try succeeds and requests (all `Always`).
        let before = stats();
        {
            let _a = pl.try_lock().expect("free");
            let _b = sp.try_lock().expect("free");
            let _c = s04.try_lock().expect("free");
            let _d = std.try_lock_slice().expect("free");
        }
        assert_request_clear();
        assert_eq!(
            (stats() - before).requested,
            sections(1),
            "nested: only the outermost counts"
        );
    });
}

#[test]
fn locks_nest_with_other_guards() {
    on_thread(|| {
        let _ = init();
        let a = SpinMutex::from_raw(RawSpin::new(Policy::Always), 0u8);
        let b: lock::Mutex<parking_lot::RawMutex, u8> = lock::Mutex::from_raw(
            WithSlice::new(
                <parking_lot::RawMutex as lock_api::RawMutex>::INIT,
                Policy::Always,
            ),
            0,
        );
        let before = stats();
        {
            let _outer = SliceGuard::new();
            let ga = a.lock();
            let gb = b.lock();
            // Released out of order: fine with per-acquisition guards.
            drop(ga);
            critical(|| ());
            drop(gb);
        }
        assert_request_clear();
        assert_eq!((stats() - before).requested, sections(1));
        let before = stats();
        {
            let _ga = a.lock();
            let _gb = b.lock();
        }
        assert_eq!(
            (stats() - before).requested,
            sections(1),
            "the spinlock's is outermost"
        );
        assert_request_clear();
    });
}

#[test]
fn each_policy_requests_as_documented_without_contention() {
    on_thread(|| {
        let _ = init();
        let count = |policy| {
            let m = SpinMutex::from_raw(RawSpin::new(policy), 0u8);
            let p: lock::Mutex<parking_lot::RawMutex, u8> = lock::Mutex::from_raw(
                WithSlice::new(<parking_lot::RawMutex as lock_api::RawMutex>::INIT, policy),
                0,
            );
            let before = stats();
            for _ in 0..10 {
                drop(m.lock());
                drop(p.lock());
            }
            assert_request_clear();
            (stats() - before).requested
        };
        assert_eq!(count(Policy::Always), sections(20));
        assert_eq!(
            count(Policy::ADAPTIVE),
            0,
            "never contended: never requests"
        );
        assert_eq!(count(Policy::Never), 0);
    });
}

/// A raw mutex whose `try_lock` can be told to fail once: makes an
/// acquisition look contended, deterministically.
struct Stubborn {
    inner: parking_lot::RawMutex,
    refuse: AtomicBool,
}

// SAFETY: forwards to parking_lot's raw mutex; a refused try_lock acquires nothing.
unsafe impl lock_api::RawMutex for Stubborn {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Stubborn {
        inner: <parking_lot::RawMutex as lock_api::RawMutex>::INIT,
        refuse: AtomicBool::new(false),
    };
    type Guard = <parking_lot::RawMutex as lock_api::RawMutex>::Guard;
    fn lock(&self) -> Self::Guard {
        lock_api::RawMutex::lock(&self.inner)
    }
    fn try_lock(&self) -> Option<Self::Guard> {
        if self.refuse.swap(false, Ordering::Relaxed) {
            return None;
        }
        lock_api::RawMutex::try_lock(&self.inner)
    }
    unsafe fn unlock(&self, guard: Self::Guard) {
        // SAFETY: our caller holds the lock.
        unsafe { lock_api::RawMutex::unlock(&self.inner, guard) }
    }
    fn is_locked(&self) -> bool {
        lock_api::RawMutex::is_locked(&self.inner)
    }
}

#[test]
fn adaptive_window_opens_on_contention_and_closes_after_it() {
    on_thread(|| {
        let _ = init();
        let m: lock::Mutex<Stubborn, u8> = lock::Mutex::from_raw(
            WithSlice::new(
                <Stubborn as lock_api::RawMutex>::INIT,
                Policy::Adaptive { window: 3 },
            ),
            0,
        );
        let raw = || {
            // SAFETY: only reading the raw lock's state, not unlocking.
            unsafe { m.raw() }
        };
        assert!(!raw().is_hot());
        let before = stats();
        drop(m.lock());
        assert_eq!((stats() - before).requested, 0, "cold and uncontended");
        raw().inner().refuse.store(true, Ordering::Relaxed);
        let before = stats();
        drop(m.lock()); // contended: requests, opens the window
        assert!(raw().is_hot());
        for _ in 0..3 {
            drop(m.lock()); // inside the window: requests
        }
        assert!(!raw().is_hot(), "closed after 3");
        drop(m.lock());
        assert_eq!((stats() - before).requested, sections(4));
        assert_request_clear();
    });
}

#[test]
fn an_acquisition_says_it_requested_only_where_its_guard_is_armed() {
    on_thread(|| {
        // Not yet initialised: the first section initialises the thread.
        let raw: WithSlice<parking_lot::RawMutex> = WithSlice::new(
            <parking_lot::RawMutex as lock_api::RawMutex>::INIT,
            Policy::Always,
        );
        let held = lock_api::RawMutex::lock(&raw);
        let on = rseq_slice_core::state().is_ok();
        assert_eq!(held.requested(), on, "state {:?}", rseq_slice_core::state());
        // SAFETY: `held` is this thread's acquisition of `raw`.
        unsafe { lock_api::RawMutex::unlock(&raw, held) };
        let never: WithSlice<parking_lot::RawMutex> = WithSlice::new(
            <parking_lot::RawMutex as lock_api::RawMutex>::INIT,
            Policy::Never,
        );
        let held = lock_api::RawMutex::lock(&never);
        assert!(!held.requested());
        // SAFETY: as above.
        unsafe { lock_api::RawMutex::unlock(&never, held) };
    });
}

#[test]
fn a_bumped_guard_ends_its_section_and_starts_another() {
    on_thread(|| {
        let _ = init();
        let m: lock::Mutex<parking_lot::RawMutex, u32> = lock::Mutex::new(0);
        let before = stats().requested;
        let mut g = m.lock();
        lock_api::MutexGuard::bump(&mut g);
        *g += 1;
        assert!(m.is_locked());
        drop(g);
        assert!(!m.is_locked());
        assert_eq!(stats().requested - before, sections(2));
        assert_request_clear();
    });
}
