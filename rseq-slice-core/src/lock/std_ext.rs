//! [`StdMutexExt`]: `std::sync::Mutex` with an extension request while held.

use std::sync::{LockResult, Mutex, MutexGuard, PoisonError, TryLockError, TryLockResult};

use crate::guard::SliceGuard;

/// Lock a `std::sync::Mutex` and request an extension while it is held.
///
/// std's mutex has no room for the adaptive state, so these always request
/// (the naive protocol); use [`Mutex`](super::Mutex) over parking_lot for
/// [`Policy::Adaptive`](super::Policy::Adaptive).
///
/// ```
/// use rseq_slice_core::lock::StdMutexExt;
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
            _slice: SliceGuard::initialising(),
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
