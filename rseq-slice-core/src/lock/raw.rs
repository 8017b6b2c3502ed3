//! [`WithSlice`]: a `lock_api` raw lock whose holders request an
//! extension, and its lock_api 0.5 implementations (mutex, fair mutex,
//! RwLock), whose per-acquisition `Guard` carries the request.

use core::fmt;
use core::sync::atomic::AtomicBool;

use super::policy::{Contention, Policy};
use crate::guard::SliceGuard;

/// A raw lock `R` whose holders request a time slice extension, following a
/// [`Policy`].
///
/// Use it through `lock_api`'s types: [`Mutex`] and [`RwLock`]
/// (lock_api 0.5, e.g. `R = parking_lot::RawMutex`), or
/// [`v0_4::Mutex`](super::v0_4::Mutex) (lock_api
/// 0.4, e.g. `R = spin::Mutex<()>`). `Mutex::new` uses
/// [`Policy::Always`]; [`WithSlice::new`] takes another.
///
/// ```
/// use rseq_slice_core::lock::{Mutex, Policy, WithSlice};
/// let _ = rseq_slice_core::init(); // once per thread; guards work either way
/// let m: Mutex<parking_lot::RawMutex, Vec<u32>> = Mutex::new(Vec::new());
/// m.lock().push(1); // the request (if the policy wants one) lasts as long as the guard
/// let adaptive = Mutex::<parking_lot::RawMutex, _>::from_raw(
///     WithSlice::new(<parking_lot::RawMutex as lock_api::RawMutex>::INIT, Policy::ADAPTIVE),
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
/// use rseq_slice_core::lock::v0_4::Mutex;
/// let m: Mutex<spin::Mutex<()>, u32> = Mutex::new(0);
/// send(m.lock());
/// ```
pub struct WithSlice<R> {
    pub(super) inner: R,
    pub(super) contention: Contention,
    /// lock_api 0.4 only: the current holder set the request.
    pub(super) held_request: AtomicBool,
}

impl<R> WithSlice<R> {
    /// Wrap `inner` with `policy`.
    pub const fn new(inner: R, policy: Policy) -> WithSlice<R> {
        WithSlice {
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
    ) -> SliceHeld<G> {
        let (g, contended) = if self.contention.tracks() {
            match try_lock() {
                Some(g) => (g, false),
                None => (lock(), true),
            }
        } else {
            (lock(), false)
        };
        SliceHeld::new(g, self.contention.acquired(contended))
    }

    /// A `try_lock` of any kind that got the lock (an uncontended
    /// acquisition), requesting if the policy says so.
    #[inline(always)]
    fn try_acquire<G>(&self, got: Option<G>) -> Option<SliceHeld<G>> {
        Some(SliceHeld::new(got?, self.contention.acquired(false)))
    }
}

impl<R: fmt::Debug> fmt::Debug for WithSlice<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithSlice")
            .field("inner", &self.inner)
            .field("contention", &self.contention)
            .finish()
    }
}

/// The per-acquisition state of a [`WithSlice`] (lock_api 0.5's `Guard`):
/// the inner lock's guard and, when this acquisition requested, its
/// [`SliceGuard`]. `!Send`.
#[must_use = "dropping it without unlocking leaves the lock locked"]
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
            slice: request.then(SliceGuard::initialising),
        }
    }
}

impl<G> SliceHeld<G> {
    /// Unlock with `unlock` (given the inner guard state), then end the
    /// section: the request stays set until the lock is free.
    #[inline(always)]
    fn release(self, unlock: impl FnOnce(G)) {
        let SliceHeld { inner, slice } = self;
        unlock(inner);
        drop(slice);
    }
}

impl SliceHeld<()> {
    #[inline(always)]
    pub(crate) fn from_slice(slice: Option<SliceGuard>) -> SliceHeld<()> {
        SliceHeld { inner: (), slice }
    }
}

impl<G> SliceHeld<G> {
    /// Whether this acquisition set (or, nested, counted) a request: false
    /// where the policy said no, and where the extension is off on the
    /// thread (its guard is inert).
    pub fn requested(&self) -> bool {
        self.slice.as_ref().is_some_and(SliceGuard::armed)
    }
}

/// A `lock_api` 0.5 mutex whose holder requests an extension: see [`WithSlice`].
pub type Mutex<R, T> = lock_api::Mutex<WithSlice<R>, T>;
/// Its guard.
pub type MutexGuard<'a, R, T> = lock_api::MutexGuard<'a, WithSlice<R>, T>;
/// A `lock_api` 0.5 RwLock whose readers and writer request an extension.
pub type RwLock<R, T> = lock_api::RwLock<WithSlice<R>, T>;

// SAFETY: mutual exclusion, acquire/release and the unwinding rules are
// `R`'s: every operation acquires or releases `R` exactly once, with `R`'s
// own guard state (an adaptive `lock` first tries `R::try_lock`, and only a
// failed try, which holds nothing, is followed by `R::lock`); the extension
// request is a thread-local side effect.
unsafe impl<R: lock_api::RawMutex> lock_api::RawMutex for WithSlice<R> {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = WithSlice::new(R::INIT, Policy::Always);
    type Guard = SliceHeld<R::Guard>;

    #[inline]
    fn lock(&self) -> Self::Guard {
        self.acquire(|| self.inner.try_lock(), || self.inner.lock())
    }

    #[inline]
    fn try_lock(&self) -> Option<Self::Guard> {
        self.try_acquire(self.inner.try_lock())
    }

    #[inline]
    unsafe fn unlock(&self, guard: Self::Guard) {
        // SAFETY: `g` is the state of the acquisition our caller holds.
        guard.release(|g| unsafe { self.inner.unlock(g) });
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }
}

// SAFETY: as for `RawMutex`: each operation forwards to `R` once.
unsafe impl<R: lock_api::RawMutexFair> lock_api::RawMutexFair for WithSlice<R> {
    #[inline]
    unsafe fn unlock_fair(&self, guard: Self::Guard) {
        // SAFETY: `g` is the state of the acquisition our caller holds.
        guard.release(|g| unsafe { self.inner.unlock_fair(g) });
    }

    /// `R`'s own bump (cheap when nobody waits). The section ends before it,
    /// since a bump with waiters hands the lock over and may block, and a
    /// new one starts after it if this acquisition had requested.
    #[inline]
    unsafe fn bump(&self, guard: &mut Self::Guard) {
        let requested = guard.slice.take().is_some();
        // SAFETY: `inner` is the state of the acquisition our caller holds;
        // `R::bump` returns with the lock held again.
        unsafe { self.inner.bump(&mut guard.inner) };
        guard.slice = requested.then(SliceGuard::initialising);
    }
}

// SAFETY: as for `RawMutex`: every operation forwards to `R` once.
unsafe impl<R: lock_api::RawRwLock> lock_api::RawRwLock for WithSlice<R> {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = WithSlice::new(R::INIT, Policy::Always);
    type SharedGuard = SliceHeld<R::SharedGuard>;
    type ExclusiveGuard = SliceHeld<R::ExclusiveGuard>;

    #[inline]
    fn lock_shared(&self) -> Self::SharedGuard {
        self.acquire(|| self.inner.try_lock_shared(), || self.inner.lock_shared())
    }

    #[inline]
    fn try_lock_shared(&self) -> Option<Self::SharedGuard> {
        self.try_acquire(self.inner.try_lock_shared())
    }

    #[inline]
    unsafe fn unlock_shared(&self, guard: Self::SharedGuard) {
        // SAFETY: `g` is the state of the shared acquisition our caller holds.
        guard.release(|g| unsafe { self.inner.unlock_shared(g) });
    }

    #[inline]
    fn lock_exclusive(&self) -> Self::ExclusiveGuard {
        self.acquire(
            || self.inner.try_lock_exclusive(),
            || self.inner.lock_exclusive(),
        )
    }

    #[inline]
    fn try_lock_exclusive(&self) -> Option<Self::ExclusiveGuard> {
        self.try_acquire(self.inner.try_lock_exclusive())
    }

    #[inline]
    unsafe fn unlock_exclusive(&self, guard: Self::ExclusiveGuard) {
        // SAFETY: `g` is the state of the exclusive acquisition our caller holds.
        guard.release(|g| unsafe { self.inner.unlock_exclusive(g) });
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
