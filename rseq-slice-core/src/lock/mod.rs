//! Locks that request a time slice extension for exactly the time they are
//! held: [`WithSlice`] wraps any `lock_api` raw lock (parking_lot, spin, …),
//! [`StdMutexExt`] does the same for `std::sync::Mutex`, and [`Policy`]
//! decides which acquisitions request at all.
//!
//! # Why `lock_api` 0.5 first
//!
//! lock_api 0.5 (parking_lot 0.13) hands every acquisition a `Guard` value
//! that `unlock` gets back. [`SliceHeld`] keeps "this acquisition set the
//! request" there, as an `Option<SliceGuard>`: no per-thread or per-lock
//! bookkeeping, locks may be released in any order, and the `!Send`
//! [`SliceGuard`](crate::SliceGuard) inside makes the lock guard `!Send` by construction, so the
//! request is always cleared by the thread that set it. lock_api 0.4 (spin,
//! tokio's parking_lot 0.12) has only a marker type; its impl keeps the same
//! fact in the lock (written by the holder only, so exact for a mutex) and
//! uses the thread's guard depth as its nesting count
//! ([`v0_4::Mutex`]). RwLocks are wrapped
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
//! clear-and-recheck spinlock in [`RawSpin`] closes it by
//! setting the request just before its winning compare-exchange.
//!
//! One file a concern: `policy` ([`Policy`]), `raw` ([`WithSlice`] and its
//! lock_api 0.5 impls), `v0_4` (lock_api 0.4), `std_ext` ([`StdMutexExt`]),
//! `spin` ([`RawSpin`], the clear-and-recheck spinlock).

mod policy;
mod raw;
mod spin;
mod std_ext;
pub mod v0_4;

pub use policy::Policy;
pub use raw::{Mutex, MutexGuard, RwLock, SliceHeld, WithSlice};
pub use spin::{RawSpin, SpinMutex, SpinMutexGuard};
pub use std_ext::{StdMutexExt, StdSliceGuard};
