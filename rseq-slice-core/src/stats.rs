//! Per-thread counters, and a shared cell a runtime aggregates them in.

use core::ops::{Add, Sub};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What the guards of one thread (or, summed, of many) saw.
///
/// The counters are plain thread-local integers: reading them costs nothing
/// on the guard's fast path. Take a snapshot with [`stats`](crate::stats),
/// subtract two snapshots for a window, add them up across threads, or
/// [`publish`](SharedStats::publish) them for other threads to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SliceStats {
    /// Outermost critical sections entered (nested guards do not count).
    pub requested: u64,
    /// Sections that found `granted` set at their end: the kernel deferred a
    /// preemption for them.
    pub granted: u64,
    /// Grants whose `rseq_slice_yield()` returned 1: the thread gave the CPU
    /// back inside the extension.
    pub yielded: u64,
    /// Grants whose yield returned 0: the kernel had revoked or expired the
    /// grant first (another interrupt, a syscall, the timer).
    pub revoked: u64,
    /// Sections whose `request` the kernel had cleared without a grant in
    /// sight at their end: the thread was rescheduled during the section, or a
    /// grant was revoked before the section ended.
    ///
    /// Every kernel grant is counted once, here or in `granted`: the guard
    /// clears `request` and reads its old value in one instruction, so a grant
    /// cannot hide between the two. The kernel's `sgrant` for a set of
    /// threads therefore lies in `[granted, granted + cleared]`.
    pub cleared: u64,
}

impl Add for SliceStats {
    type Output = SliceStats;
    fn add(self, o: SliceStats) -> SliceStats {
        SliceStats {
            requested: self.requested + o.requested,
            granted: self.granted + o.granted,
            yielded: self.yielded + o.yielded,
            revoked: self.revoked + o.revoked,
            cleared: self.cleared + o.cleared,
        }
    }
}

impl Sub for SliceStats {
    type Output = SliceStats;
    /// The counts of the window between two snapshots of the same thread.
    fn sub(self, o: SliceStats) -> SliceStats {
        SliceStats {
            requested: self.requested.wrapping_sub(o.requested),
            granted: self.granted.wrapping_sub(o.granted),
            yielded: self.yielded.wrapping_sub(o.yielded),
            revoked: self.revoked.wrapping_sub(o.revoked),
            cleared: self.cleared.wrapping_sub(o.cleared),
        }
    }
}

impl core::iter::Sum for SliceStats {
    fn sum<I: Iterator<Item = SliceStats>>(iter: I) -> SliceStats {
        iter.fold(SliceStats::default(), Add::add)
    }
}

/// A [`SliceStats`] one thread publishes and any thread reads.
///
/// A runtime keeps one per worker (in an `Arc`), has the worker call
/// [`publish`](SharedStats::publish) at natural points (before parking, at
/// thread stop), and sums [`load`](SharedStats::load)s for its metrics.
///
/// ```
/// use rseq_slice_core::{critical, SharedStats};
/// let on = u64::from(rseq_slice_core::init().is_ok());
/// let shared = SharedStats::new();
/// critical(|| ());
/// shared.publish();
/// assert_eq!(shared.load().requested, on); // guards count only where the extension is on
/// ```
#[derive(Debug, Default)]
pub struct SharedStats {
    requested: AtomicU64,
    granted: AtomicU64,
    yielded: AtomicU64,
    revoked: AtomicU64,
    cleared: AtomicU64,
}

impl SharedStats {
    /// All zero.
    pub const fn new() -> SharedStats {
        SharedStats {
            requested: AtomicU64::new(0),
            granted: AtomicU64::new(0),
            yielded: AtomicU64::new(0),
            revoked: AtomicU64::new(0),
            cleared: AtomicU64::new(0),
        }
    }

    /// Store the calling thread's counters (since its start).
    pub fn publish(&self) {
        self.store(crate::stats());
    }

    /// Store `s`.
    pub fn store(&self, s: SliceStats) {
        self.requested.store(s.requested, Relaxed);
        self.granted.store(s.granted, Relaxed);
        self.yielded.store(s.yielded, Relaxed);
        self.revoked.store(s.revoked, Relaxed);
        self.cleared.store(s.cleared, Relaxed);
    }

    /// The last published counters (each counter is exact; together they may
    /// straddle one publication).
    pub fn load(&self) -> SliceStats {
        SliceStats {
            requested: self.requested.load(Relaxed),
            granted: self.granted.load(Relaxed),
            yielded: self.yielded.load(Relaxed),
            revoked: self.revoked.load(Relaxed),
            cleared: self.cleared.load(Relaxed),
        }
    }
}
