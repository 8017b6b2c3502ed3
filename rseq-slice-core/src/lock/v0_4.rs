//! Locks for lock_api 0.4 (spin 0.12, parking_lot 0.12, tokio's): 0.4 has
//! no per-acquisition guard state, so the holder records in the lock whether
//! it requested, and the thread's guard depth counts the nesting.

use core::sync::atomic::Ordering::Relaxed;

use super::policy::Policy;
use super::raw::WithSlice;
use crate::local::LOCAL;

/// A `lock_api` 0.4 mutex (spin 0.12, parking_lot 0.12) whose holder requests
/// an extension: see [`WithSlice`].
///
/// ```
/// let m: rseq_slice_core::lock::v0_4::Mutex<spin::Mutex<()>, u32> =
///     rseq_slice_core::lock::v0_4::Mutex::new(0);
/// *m.lock() += 1;
/// assert!(!m.is_locked());
/// ```
pub type Mutex<R, T> = lock_api_04::Mutex<WithSlice<R>, T>;

impl<R: lock_api_04::RawMutex> WithSlice<R> {
    /// lock_api 0.4: the new holder records whether it requested.
    #[inline(always)]
    fn held_04(&self, contended: bool) {
        let request = self.contention.acquired(contended);
        let armed = request && crate::guard::enter_initialising();
        self.held_request.store(armed, Relaxed);
    }
}

// SAFETY: each operation acquires or releases `R` once (an adaptive `lock`
// first tries `R::try_lock`; only a failed try, which holds nothing, is
// followed by `R::lock`). `GuardNoSend` keeps `unlock`
// on the locking thread, so the depth `lock` raised is this thread's; the
// `held_request` flag is written by the holder only, between `R`'s acquire
// and release.
unsafe impl<R: lock_api_04::RawMutex> lock_api_04::RawMutex for WithSlice<R> {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = WithSlice::new(R::INIT, Policy::Always);
    type GuardMarker = lock_api_04::GuardNoSend;

    #[inline]
    fn lock(&self) {
        let contended = if !self.contention.tracks() {
            self.inner.lock();
            false
        } else if self.inner.try_lock() {
            false
        } else {
            self.inner.lock();
            true
        };
        self.held_04(contended);
    }

    #[inline]
    fn try_lock(&self) -> bool {
        let ok = self.inner.try_lock();
        if ok {
            self.held_04(false);
        }
        ok
    }

    #[inline]
    unsafe fn unlock(&self) {
        let requested = self.held_request.load(Relaxed);
        // SAFETY: our caller holds the lock (lock_api's contract).
        unsafe { self.inner.unlock() };
        if requested {
            LOCAL.with(|l| l.exit());
        }
    }

    /// `R`'s own answer: the default would lock and unlock, and so toggle
    /// the request.
    #[inline]
    fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }
}
