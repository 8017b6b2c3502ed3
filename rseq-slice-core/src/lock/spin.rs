//! A test-and-test-and-set spinlock with *clear-and-recheck*: a waiter holds
//! no request while it spins, sets it just before the compare-exchange that
//! may win, and, if that compare-exchange loses, ends the section through the
//! guard's normal exit (which yields if a grant arrived meanwhile) before
//! spinning again. The holder's request therefore covers exactly the time it
//! holds the lock, with no window between acquiring and requesting.

use core::fmt;
use core::sync::atomic::{
    AtomicBool,
    Ordering::{Acquire, Relaxed, Release},
};

use super::policy::{Contention, Policy};
use super::raw::SliceHeld;
use crate::guard::SliceGuard;

/// A raw spinlock for `lock_api` 0.5 whose holder requests a time slice
/// extension, following a [`Policy`] (`Always` by default).
///
/// Spinning is plain (`spin_loop` hints, no yielding): on an oversubscribed
/// CPU a preempted holder costs every waiter its whole time slice, which is
/// exactly what the extension prevents.
///
/// ```
/// use rseq_slice_core::lock::{Policy, RawSpin, SpinMutex};
/// let _ = rseq_slice_core::init();
/// let m: SpinMutex<u64> = SpinMutex::new(0);
/// *m.lock() += 1;
/// assert!(m.try_lock().is_some());
/// let plain = SpinMutex::from_raw(RawSpin::new(Policy::Never), 0u64);
/// *plain.lock() += 1;
/// ```
///
/// Its guard is `!Send`: the request belongs to the locking thread.
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let m: rseq_slice_core::lock::SpinMutex<u32> = rseq_slice_core::lock::SpinMutex::new(0);
/// send(m.lock());
/// ```
pub struct RawSpin {
    locked: AtomicBool,
    contention: Contention,
}

/// A `lock_api` 0.5 mutex over [`RawSpin`].
pub type SpinMutex<T> = lock_api::Mutex<RawSpin, T>;
/// Its guard (`!Send`).
pub type SpinMutexGuard<'a, T> = lock_api::MutexGuard<'a, RawSpin, T>;

impl RawSpin {
    /// An unlocked spinlock following `policy`.
    pub const fn new(policy: Policy) -> RawSpin {
        RawSpin {
            locked: AtomicBool::new(false),
            contention: Contention::new(policy),
        }
    }

    /// The policy this lock follows.
    pub fn policy(&self) -> Policy {
        self.contention.policy()
    }

    /// One attempt: request if `request`, then the compare-exchange. A lost
    /// attempt ends its section through the guard's exit path.
    #[inline(always)]
    fn attempt(&self, request: bool) -> Option<Option<SliceGuard>> {
        let slice = request.then(SliceGuard::initialising);
        match self.locked.compare_exchange(false, true, Acquire, Relaxed) {
            Ok(_) => Some(slice),
            Err(_) => {
                drop(slice);
                None
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) -> Option<SliceGuard> {
        let request = !matches!(self.contention.policy(), Policy::Never);
        loop {
            // Clear-and-recheck: no request while the lock is held.
            while self.locked.load(Relaxed) {
                core::hint::spin_loop();
            }
            if let Some(slice) = self.attempt(request) {
                self.contention.acquired(true);
                return slice;
            }
        }
    }
}

impl fmt::Debug for RawSpin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSpin")
            .field("locked", &self.locked.load(Relaxed))
            .field("contention", &self.contention)
            .finish()
    }
}

impl Default for RawSpin {
    fn default() -> RawSpin {
        RawSpin::new(Policy::Always)
    }
}

// SAFETY: `locked` goes false -> true only by a compare-exchange with
// Acquire and back by a Release store in `unlock`, which only the holder
// calls: mutual exclusion with acquire/release semantics. Nothing here
// unwinds.
unsafe impl lock_api::RawMutex for RawSpin {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = RawSpin::new(Policy::Always);
    type Guard = SliceHeld<()>;

    #[inline]
    fn lock(&self) -> Self::Guard {
        let request = self.contention.wants();
        let slice = match self.attempt(request) {
            Some(slice) => {
                self.contention.acquired(false);
                slice
            }
            None => self.lock_contended(),
        };
        SliceHeld::from_slice(slice)
    }

    #[inline]
    fn try_lock(&self) -> Option<Self::Guard> {
        let slice = self.attempt(self.contention.wants())?;
        self.contention.acquired(false);
        Some(SliceHeld::from_slice(slice))
    }

    #[inline]
    unsafe fn unlock(&self, guard: Self::Guard) {
        self.locked.store(false, Release);
        drop(guard);
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.locked.load(Relaxed)
    }
}
