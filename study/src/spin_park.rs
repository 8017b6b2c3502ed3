//! A spin-then-park mutex: a bounded spin on `parking_lot`'s raw mutex,
//! then its ordinary (parking) lock.

use core::hint::spin_loop;

use lock_api::RawMutex as _;

/// Spin iterations (each a `spin_loop` hint, some tens of ns) before parking:
/// a few µs, enough for a short hold to end if its holder keeps running.
pub const SPINS: u32 = 128;

/// `parking_lot::RawMutex` that first spins up to [`SPINS`] times,
/// test-and-test-and-set, before it parks. Wrap it in
/// `rseq_slice_core::lock::WithSlice` for holders that request an extension.
pub struct RawSpinPark(parking_lot::RawMutex);

impl core::fmt::Debug for RawSpinPark {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawSpinPark")
            .field("locked", &self.0.is_locked())
            .finish()
    }
}

// SAFETY: every operation forwards to `parking_lot::RawMutex` with its own
// guard state; the spin only calls `is_locked` and `try_lock`, so mutual
// exclusion and acquire/release ordering are parking_lot's.
unsafe impl lock_api::RawMutex for RawSpinPark {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = RawSpinPark(parking_lot::RawMutex::INIT);
    type Guard = <parking_lot::RawMutex as lock_api::RawMutex>::Guard;

    #[inline]
    fn lock(&self) -> Self::Guard {
        for _ in 0..SPINS {
            if !self.0.is_locked()
                && let Some(g) = self.0.try_lock()
            {
                return g;
            }
            spin_loop();
        }
        self.0.lock()
    }

    #[inline]
    fn try_lock(&self) -> Option<Self::Guard> {
        self.0.try_lock()
    }

    #[inline]
    unsafe fn unlock(&self, guard: Self::Guard) {
        // SAFETY: the caller holds the lock with `guard`, as `unlock` requires.
        unsafe { self.0.unlock(guard) }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.0.is_locked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_across_threads() {
        let m = std::sync::Arc::new(lock_api::Mutex::<RawSpinPark, u64>::new(0));
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(*m.lock(), 40_000);
        assert!(m.try_lock().is_some() && !m.is_locked());
    }
}
