//! Per-thread counters, and a shared cell a runtime aggregates them in.
//!
//! The counter list is written once, in the [`counters!`] call below: it
//! makes [`SliceStats`] (a snapshot), [`SharedStats`] (its atomic twin for
//! publication) and `Cells` (the thread-local cells guards bump).

use core::cell::Cell;
use core::ops::{Add, Sub};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Defines the three counter types from one list of documented names.
macro_rules! counters {
    ($($(#[doc = $doc:expr])* $name:ident,)*) => {
        /// What the guards of one thread (or, summed, of many) saw.
        ///
        /// The counters are plain thread-local integers: reading them costs
        /// nothing on the guard's fast path. Take a snapshot with
        /// [`stats`](crate::stats), subtract two snapshots for a window, add
        /// them up across threads, or [`publish`](SharedStats::publish) them
        /// for other threads to read.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct SliceStats {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl Add for SliceStats {
            type Output = SliceStats;
            fn add(self, o: SliceStats) -> SliceStats {
                SliceStats { $($name: self.$name + o.$name,)* }
            }
        }

        impl Sub for SliceStats {
            type Output = SliceStats;
            /// The counts of the window between two snapshots of the same thread.
            fn sub(self, o: SliceStats) -> SliceStats {
                SliceStats { $($name: self.$name.wrapping_sub(o.$name),)* }
            }
        }

        /// A [`SliceStats`] one thread publishes and any thread reads.
        ///
        /// A runtime keeps one per worker (in an `Arc`), has the worker call
        /// [`publish`](SharedStats::publish) at natural points (before
        /// parking, at thread stop), and sums [`load`](SharedStats::load)s
        /// for its metrics.
        ///
        /// ```
        /// use rseq_slice_core::{critical, runtime::SharedStats};
        /// let on = u64::from(rseq_slice_core::init().is_ok());
        /// let shared = SharedStats::new();
        /// critical(|| ());
        /// shared.publish();
        /// assert_eq!(shared.load().requested, on); // guards count only where the extension is on
        /// ```
        #[derive(Debug, Default)]
        pub struct SharedStats {
            $($name: AtomicU64,)*
        }

        impl SharedStats {
            /// All zero.
            pub const fn new() -> SharedStats {
                SharedStats { $($name: AtomicU64::new(0),)* }
            }

            /// Store `s`.
            pub fn store(&self, s: SliceStats) {
                $(self.$name.store(s.$name, Relaxed);)*
            }

            /// The last published counters (each counter is exact; together
            /// they may straddle one publication).
            pub fn load(&self) -> SliceStats {
                SliceStats { $($name: self.$name.load(Relaxed),)* }
            }
        }

        /// The calling thread's counters, as cells its guards bump.
        #[derive(Debug)]
        pub(crate) struct Cells {
            $(pub(crate) $name: Cell<u64>,)*
        }

        impl Cells {
            pub(crate) const fn new() -> Cells {
                Cells { $($name: Cell::new(0),)* }
            }

            pub(crate) fn snapshot(&self) -> SliceStats {
                SliceStats { $($name: self.$name.get(),)* }
            }
        }
    };
}

counters! {
    /// Outermost critical sections entered (nested guards do not count).
    requested,
    /// Sections that found `granted` set at their end: the kernel deferred a
    /// preemption for them.
    granted,
    /// Grants whose `rseq_slice_yield()` returned 1: the thread gave the CPU
    /// back inside the extension.
    yielded,
    /// Grants whose yield returned 0: the grant ended between the section's
    /// end and the yield (it expired, or an interrupt's return revoked it).
    revoked,
    /// Sections whose `request` the kernel had cleared without a grant in
    /// sight at their end: the thread was rescheduled during the section, or
    /// a grant was revoked before the section ended (an interrupt, a system
    /// call inside the section, the expiry timer).
    ///
    /// Every kernel grant of a section that ends while the thread's area is
    /// registered is counted once, here or in `granted`: the guard clears
    /// `request` and reads its old value in one instruction, so a grant
    /// cannot hide between the two. The kernel's `sgrant` for a set of
    /// threads therefore lies in `[granted, granted + cleared]`, but for
    /// sections still open when a thread's own area goes (a guard in a later
    /// thread-local destructor), which count in neither.
    cleared,
    /// Outermost sections that found another copy's section open on the
    /// thread (`request` or `granted` already set in `slice_ctrl`: a second
    /// copy of this crate in the process shares libc's area) and stayed
    /// inert, leaving that section's request and grant alone.
    foreign,
}

impl Cells {
    /// Add one to `counter`.
    #[inline(always)]
    pub(crate) fn bump(counter: &Cell<u64>) {
        counter.set(counter.get() + 1);
    }
}

impl core::iter::Sum for SliceStats {
    fn sum<I: Iterator<Item = SliceStats>>(iter: I) -> SliceStats {
        iter.fold(SliceStats::default(), Add::add)
    }
}

impl SharedStats {
    /// Store the calling thread's counters (since its start).
    pub fn publish(&self) {
        self.store(crate::stats());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_list_makes_all_three_types() {
        let cells = Cells::new();
        Cells::bump(&cells.granted);
        Cells::bump(&cells.cleared);
        let a = cells.snapshot();
        assert_eq!((a.granted, a.cleared, a.requested), (1, 1, 0));
        let shared = SharedStats::new();
        shared.store(a + a);
        assert_eq!(shared.load().granted, 2);
        assert_eq!(shared.load() - a, a);
        assert_eq!([a, a, a].into_iter().sum::<SliceStats>().cleared, 3);
    }
}
