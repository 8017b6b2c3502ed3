//! Locks that request a time slice extension for exactly the time they are
//! held: [`RawSlice`] wraps any `lock_api` raw lock (parking_lot, spin, …),
//! [`StdMutexExt`] does the same for `std::sync::Mutex`, and [`Policy`]
//! decides which acquisitions request at all.
//!
//! # Why `lock_api` 0.5 first
//!
//! lock_api 0.5 (parking_lot 0.13) hands every acquisition a `Guard` value
//! that `unlock` gets back. [`SliceHeld`] keeps "this acquisition set the
//! request" there, as an `Option<SliceGuard>`: no per-thread or per-lock
//! bookkeeping, locks may be released in any order, and the `!Send`
//! [`SliceGuard`] inside makes the lock guard `!Send` by construction, so the
//! request is always cleared by the thread that set it. lock_api 0.4 (spin,
//! tokio's parking_lot 0.12) has only a marker type; its impl keeps the same
//! fact in the lock (written by the holder only, so exact for a mutex) and
//! uses the thread's guard depth as its nesting count. RwLocks are wrapped
//! for 0.5 only (0.4's shared holders would share that one fact).
//!
//! # When the request is set
//!
//! After the inner lock is acquired and before it is released, then cleared
//! after the release, with `rseq_slice_yield()` if a grant came meanwhile.
//! A waiter never holds a request while it spins or parks: a spinning waiter
//! with an extension would keep the holder it waits for off the CPU, and any
//! system call (a futex wait) would revoke a grant anyway. The window between
//! the acquiring instruction and the request store is a few instructions; the
//! clear-and-recheck spinlock in [`RawSpin`](crate::RawSpin) closes it by
//! setting the request just before its winning compare-exchange.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{LockResult, Mutex, MutexGuard, PoisonError, TryLockError, TryLockResult};

use crate::guard::SliceGuard;
use crate::local::LOCAL;

/// Which acquisitions of a lock request a time slice extension.
///
/// The request costs one store and one load per section (about 1 ns on the
/// host, nothing measurable next to a 2 µs section in the guest); it pays
/// when a holder would otherwise be preempted while others wait.
/// [`Policy::Always`] is the default because the measurements chose it: in
/// a 1-vCPU guest a spinlock gained 5.4x ops/s at 8 threads with `Always`,
/// against 2.3x with `Adaptive { window: 1024 }`. Grants remove the very
/// contention that keeps the adaptive window open, so it closes and the next
/// preemption lands on a holder that did not request. The README's *Locks*
/// section has the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    /// Every acquisition requests (the "naive" protocol).
    Always,
    /// An acquisition requests when it had to wait for the lock, and so do
    /// the next `window` acquisitions after one that waited. A lock that is
    /// never contended never requests.
    Adaptive {
        /// Acquisitions that still request after the last contended one.
        window: u32,
    },
    /// No acquisition requests: the plain lock, for comparisons.
    Never,
}

impl Policy {
    /// [`Policy::Adaptive`] with a window of 1024 acquisitions (several
    /// scheduler slices of few-µs sections). Measured weaker than `Always`
    /// under contention; for locks that are nearly never contended.
    pub const ADAPTIVE: Policy = Policy::Adaptive { window: 1024 };
}

impl Default for Policy {
    /// [`Policy::Always`].
    fn default() -> Policy {
        Policy::Always
    }
}

/// The per-lock state of a [`Policy`]: how many acquisitions still request.
///
/// Written by lock holders only (racy between the shared holders of an
/// RwLock, which is harmless for a heuristic), read before acquiring.
pub(crate) struct Contention {
    policy: Policy,
    hot: AtomicU32,
}

impl Contention {
    pub(crate) const fn new(policy: Policy) -> Contention {
        Contention {
            policy,
            hot: AtomicU32::new(0),
        }
    }

    pub(crate) fn policy(&self) -> Policy {
        self.policy
    }

    /// Whether the next acquisition should request even if it does not wait.
    #[inline(always)]
    pub(crate) fn wants(&self) -> bool {
        match self.policy {
            Policy::Always => true,
            Policy::Adaptive { .. } => self.hot.load(Relaxed) != 0,
            Policy::Never => false,
        }
    }

    /// Whether the policy needs to know if an acquisition waited.
    #[inline(always)]
    pub(crate) fn tracks(&self) -> bool {
        matches!(self.policy, Policy::Adaptive { .. })
    }

    /// Called by the new holder: update the window and say whether this
    /// acquisition requests.
    #[inline(always)]
    pub(crate) fn acquired(&self, contended: bool) -> bool {
        match self.policy {
            Policy::Always => true,
            Policy::Never => false,
            Policy::Adaptive { window } => {
                let hot = self.hot.load(Relaxed);
                let next = next_hot(hot, contended, window);
                if next != hot {
                    self.hot.store(next, Relaxed);
                }
                contended || hot != 0
            }
        }
    }
}

/// The adaptive state machine: a contended acquisition reopens the window,
/// an uncontended one narrows it by one.
#[inline(always)]
pub(crate) fn next_hot(hot: u32, contended: bool, window: u32) -> u32 {
    if contended {
        window
    } else {
        hot.saturating_sub(1)
    }
}

impl fmt::Debug for Contention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contention")
            .field("policy", &self.policy)
            .field("hot", &self.hot.load(Relaxed))
            .finish()
    }
}

/// A raw lock `R` whose holders request a time slice extension, following a
/// [`Policy`].
///
/// Use it through `lock_api`'s types: [`SliceMutex`] and [`SliceRwLock`]
/// (lock_api 0.5, e.g. `R = parking_lot::RawMutex`), or [`SliceMutex04`]
/// (lock_api 0.4, e.g. `R = spin::Mutex<()>`). `Mutex::new` uses
/// [`Policy::Always`]; [`RawSlice::new`] takes another.
///
/// ```
/// use rseq_slice_core::{Policy, RawSlice, SliceMutex};
/// let _ = rseq_slice_core::init(); // once per thread; guards work either way
/// let m: SliceMutex<parking_lot::RawMutex, Vec<u32>> = SliceMutex::new(Vec::new());
/// m.lock().push(1); // the request (if the policy wants one) lasts as long as the guard
/// let adaptive = SliceMutex::<parking_lot::RawMutex, _>::from_raw(
///     RawSlice::new(<parking_lot::RawMutex as lock_api::RawMutex>::INIT, Policy::ADAPTIVE),
///     0u64,
/// );
/// *adaptive.lock() += 1;
/// ```
///
/// The lock guards are `!Send` (the request belongs to the thread that set
/// it), whatever `R`'s are:
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// // spin's own guards are Send; the wrapper's are not.
/// let m: rseq_slice_core::SliceMutex04<spin::Mutex<()>, u32> = rseq_slice_core::SliceMutex04::new(0);
/// send(m.lock());
/// ```
pub struct RawSlice<R> {
    inner: R,
    contention: Contention,
    /// lock_api 0.4 only: the current holder set the request.
    held_request: AtomicBool,
}

impl<R> RawSlice<R> {
    /// Wrap `inner` with `policy`.
    pub const fn new(inner: R, policy: Policy) -> RawSlice<R> {
        RawSlice {
            inner,
            contention: Contention::new(policy),
            held_request: AtomicBool::new(false),
        }
    }

    /// The wrapped raw lock.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// The policy this lock follows.
    pub fn policy(&self) -> Policy {
        self.contention.policy()
    }

    /// Whether the next acquisition would request even without waiting (the
    /// adaptive window is open, or the policy is `Always`).
    pub fn is_hot(&self) -> bool {
        self.contention.wants()
    }

    /// Acquire with `try_lock` first when the policy needs to know whether
    /// the acquisition waited; then request if the policy says so.
    #[inline(always)]
    fn acquire<G>(
        &self,
        try_lock: impl FnOnce() -> Option<G>,
        lock: impl FnOnce() -> G,
    ) -> (G, bool) {
        let (g, contended) = if self.contention.tracks() {
            match try_lock() {
                Some(g) => (g, false),
                None => (lock(), true),
            }
        } else {
            (lock(), false)
        };
        (g, self.contention.acquired(contended))
    }
}

impl<R: fmt::Debug> fmt::Debug for RawSlice<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSlice")
            .field("inner", &self.inner)
            .field("contention", &self.contention)
            .finish()
    }
}

/// The per-acquisition state of a [`RawSlice`] (lock_api 0.5's `Guard`):
/// the inner lock's guard and, when this acquisition requested, its
/// [`SliceGuard`]. `!Send`.
#[must_use = "dropping it without unlocking leaves the request set"]
#[derive(Debug)]
pub struct SliceHeld<G> {
    inner: G,
    slice: Option<SliceGuard>,
}

impl<G> SliceHeld<G> {
    #[inline(always)]
    fn new(inner: G, request: bool) -> SliceHeld<G> {
        SliceHeld {
            inner,
            slice: request.then(SliceGuard::new),
        }
    }
}

impl SliceHeld<()> {
    #[inline(always)]
    pub(crate) fn from_slice(slice: Option<SliceGuard>) -> SliceHeld<()> {
        SliceHeld { inner: (), slice }
    }
}

impl<G> SliceHeld<G> {
    /// Whether this acquisition set (or, nested, counted) a request.
    pub fn requested(&self) -> bool {
        self.slice.is_some()
    }
}

/// A `lock_api` 0.5 mutex whose holder requests an extension: see [`RawSlice`].
pub type SliceMutex<R, T> = lock_api::Mutex<RawSlice<R>, T>;
/// Its guard.
pub type SliceMutexGuard<'a, R, T> = lock_api::MutexGuard<'a, RawSlice<R>, T>;
/// A `lock_api` 0.5 RwLock whose readers and writer request an extension.
pub type SliceRwLock<R, T> = lock_api::RwLock<RawSlice<R>, T>;
/// A `lock_api` 0.4 mutex (spin 0.12, parking_lot 0.12) whose holder requests
/// an extension: see [`RawSlice`].
///
/// ```
/// let m: rseq_slice_core::SliceMutex04<spin::Mutex<()>, u32> = rseq_slice_core::SliceMutex04::new(0);
/// *m.lock() += 1;
/// assert!(!m.is_locked());
/// ```
pub type SliceMutex04<R, T> = lock_api_04::Mutex<RawSlice<R>, T>;

// SAFETY: mutual exclusion, acquire/release and the unwinding rules are
// `R`'s: every operation forwards to `R` exactly once with `R`'s own guard
// state; the extension request is a thread-local side effect.
unsafe impl<R: lock_api::RawMutex> lock_api::RawMutex for RawSlice<R> {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = RawSlice::new(R::INIT, Policy::Always);
    type Guard = SliceHeld<R::Guard>;

    #[inline]
    fn lock(&self) -> Self::Guard {
        let (g, request) = self.acquire(|| self.inner.try_lock(), || self.inner.lock());
        SliceHeld::new(g, request)
    }

    #[inline]
    fn try_lock(&self) -> Option<Self::Guard> {
        let g = self.inner.try_lock()?;
        Some(SliceHeld::new(g, self.contention.acquired(false)))
    }

    #[inline]
    unsafe fn unlock(&self, guard: Self::Guard) {
        let SliceHeld { inner, slice } = guard;
        // SAFETY: `inner` is the state of the acquisition our caller holds.
        unsafe { self.inner.unlock(inner) };
        drop(slice);
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }
}

// SAFETY: as for `RawMutex`: forwards to `R`.
unsafe impl<R: lock_api::RawMutexFair> lock_api::RawMutexFair for RawSlice<R> {
    #[inline]
    unsafe fn unlock_fair(&self, guard: Self::Guard) {
        let SliceHeld { inner, slice } = guard;
        // SAFETY: `inner` is the state of the acquisition our caller holds.
        unsafe { self.inner.unlock_fair(inner) };
        drop(slice);
    }
}

// SAFETY: as for `RawMutex`: every operation forwards to `R` once.
unsafe impl<R: lock_api::RawRwLock> lock_api::RawRwLock for RawSlice<R> {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = RawSlice::new(R::INIT, Policy::Always);
    type SharedGuard = SliceHeld<R::SharedGuard>;
    type ExclusiveGuard = SliceHeld<R::ExclusiveGuard>;

    #[inline]
    fn lock_shared(&self) -> Self::SharedGuard {
        let (g, request) =
            self.acquire(|| self.inner.try_lock_shared(), || self.inner.lock_shared());
        SliceHeld::new(g, request)
    }

    #[inline]
    fn try_lock_shared(&self) -> Option<Self::SharedGuard> {
        let g = self.inner.try_lock_shared()?;
        Some(SliceHeld::new(g, self.contention.acquired(false)))
    }

    #[inline]
    unsafe fn unlock_shared(&self, guard: Self::SharedGuard) {
        let SliceHeld { inner, slice } = guard;
        // SAFETY: `inner` is the state of the shared acquisition our caller holds.
        unsafe { self.inner.unlock_shared(inner) };
        drop(slice);
    }

    #[inline]
    fn lock_exclusive(&self) -> Self::ExclusiveGuard {
        let (g, request) = self.acquire(
            || self.inner.try_lock_exclusive(),
            || self.inner.lock_exclusive(),
        );
        SliceHeld::new(g, request)
    }

    #[inline]
    fn try_lock_exclusive(&self) -> Option<Self::ExclusiveGuard> {
        let g = self.inner.try_lock_exclusive()?;
        Some(SliceHeld::new(g, self.contention.acquired(false)))
    }

    #[inline]
    unsafe fn unlock_exclusive(&self, guard: Self::ExclusiveGuard) {
        let SliceHeld { inner, slice } = guard;
        // SAFETY: `inner` is the state of the exclusive acquisition our caller holds.
        unsafe { self.inner.unlock_exclusive(inner) };
        drop(slice);
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }

    #[inline]
    fn is_locked_exclusive(&self) -> bool {
        self.inner.is_locked_exclusive()
    }
}

impl<R: lock_api_04::RawMutex> RawSlice<R> {
    /// lock_api 0.4: the new holder records whether it requested.
    #[inline(always)]
    fn held_04(&self, contended: bool) {
        let request = self.contention.acquired(contended);
        let armed = request && LOCAL.with(|l| l.enter());
        self.held_request.store(armed, Relaxed);
    }
}

// SAFETY: forwards to `R` once per operation. `GuardNoSend` keeps `unlock`
// on the locking thread, so the depth `lock` raised is this thread's; the
// `held_request` flag is written by the holder only, between `R`'s acquire
// and release.
unsafe impl<R: lock_api_04::RawMutex> lock_api_04::RawMutex for RawSlice<R> {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = RawSlice::new(R::INIT, Policy::Always);
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

/// Lock a `std::sync::Mutex` and request an extension while it is held.
///
/// std's mutex has no room for the adaptive state, so these always request
/// (the naive protocol); use [`SliceMutex`] over parking_lot for
/// [`Policy::Adaptive`].
///
/// ```
/// use rseq_slice_core::StdMutexExt;
/// let m = std::sync::Mutex::new(1);
/// *m.lock_slice().unwrap() += 1;
/// assert_eq!(*m.lock().unwrap(), 2);
/// ```
pub trait StdMutexExt<T: ?Sized> {
    /// [`Mutex::lock`], then request; poisoning is passed through.
    fn lock_slice(&self) -> LockResult<StdSliceGuard<'_, T>>;
    /// [`Mutex::try_lock`], then request on success.
    fn try_lock_slice(&self) -> TryLockResult<StdSliceGuard<'_, T>>;
}

impl<T: ?Sized> StdMutexExt<T> for Mutex<T> {
    fn lock_slice(&self) -> LockResult<StdSliceGuard<'_, T>> {
        match self.lock() {
            Ok(g) => Ok(StdSliceGuard::new(g)),
            Err(p) => Err(PoisonError::new(StdSliceGuard::new(p.into_inner()))),
        }
    }

    fn try_lock_slice(&self) -> TryLockResult<StdSliceGuard<'_, T>> {
        match self.try_lock() {
            Ok(g) => Ok(StdSliceGuard::new(g)),
            Err(TryLockError::Poisoned(p)) => Err(TryLockError::Poisoned(PoisonError::new(
                StdSliceGuard::new(p.into_inner()),
            ))),
            Err(TryLockError::WouldBlock) => Err(TryLockError::WouldBlock),
        }
    }
}

/// A `std::sync::MutexGuard` with an extension request. Dropping it unlocks
/// first, then clears the request (and yields if granted). `!Send`.
#[must_use = "the lock is released when the guard is dropped"]
#[clippy::has_significant_drop]
#[derive(Debug)]
pub struct StdSliceGuard<'a, T: ?Sized> {
    // Field order is drop order: unlock, then end the section.
    guard: MutexGuard<'a, T>,
    _slice: SliceGuard,
}

impl<'a, T: ?Sized> StdSliceGuard<'a, T> {
    fn new(guard: MutexGuard<'a, T>) -> StdSliceGuard<'a, T> {
        StdSliceGuard {
            guard,
            _slice: SliceGuard::new(),
        }
    }
}

impl<T: ?Sized> core::ops::Deref for StdSliceGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: ?Sized> core::ops::DerefMut for StdSliceGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_opens_on_contention_and_narrows_by_one() {
        assert_eq!(next_hot(0, false, 4), 0);
        assert_eq!(next_hot(0, true, 4), 4);
        assert_eq!(next_hot(4, false, 4), 3);
        assert_eq!(next_hot(2, true, 4), 4);
    }

    #[test]
    fn adaptive_requests_while_the_window_is_open() {
        let c = Contention::new(Policy::Adaptive { window: 2 });
        assert!(!c.wants());
        assert!(!c.acquired(false), "uncontended and cold: no request");
        assert!(c.acquired(true), "a contended acquisition requests");
        assert!(c.wants());
        assert!(c.acquired(false));
        assert!(c.acquired(false));
        assert!(!c.wants(), "the window closed after 2");
        assert!(!c.acquired(false));
    }

    #[test]
    fn always_and_never_ignore_contention() {
        let a = Contention::new(Policy::Always);
        let n = Contention::new(Policy::Never);
        for contended in [false, true] {
            assert!(a.acquired(contended) && a.wants() && !a.tracks());
            assert!(!n.acquired(contended) && !n.wants() && !n.tracks());
        }
    }
}
