//! The per-thread metrics registry a runtime's threads report to.
//!
//! Bounded: running threads have an entry each, and so do the last
//! [`RETAINED_STOPPED`] threads that stopped; older stopped threads are folded
//! into one [`Retired`] total. A runtime that starts a blocking-pool thread
//! per burst of `spawn_blocking` keeps a registry of constant size.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::intervals::{Intervals, RuntimeMetrics, Totals};
use super::role::ThreadRole;
use crate::stats::SharedStats;
use crate::{Registrar, SliceStats, Unavailable};

/// How many stopped threads keep their own entry in [`SliceMetrics::threads`].
pub const RETAINED_STOPPED: usize = 64;

/// A handle on one runtime's per-thread slice-extension metrics. Cheap to
/// clone; every clone sees the same threads.
#[derive(Debug, Clone, Default)]
pub struct SliceMetrics {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug, Default)]
pub(super) struct Inner {
    registry: Mutex<Registry>,
    next_index: AtomicUsize,
}

#[derive(Debug, Default)]
struct Registry {
    /// Running threads and the retained stopped ones, in start order.
    slots: Vec<Arc<Slot>>,
    /// How many of `slots` have stopped.
    stopped: usize,
    retired: Retired,
}

/// One runtime thread's entry, written by that thread.
#[derive(Debug)]
pub(super) struct Slot {
    index: usize,
    name: Option<String>,
    thread: std::thread::ThreadId,
    /// A thread the runtime started, not one visiting it.
    home: bool,
    /// Its [`ThreadRole`], as a `u8`: the adapter may learn it later.
    role: AtomicU8,
    pub(super) state: Result<Registrar, Unavailable>,
    pub(super) stats: SharedStats,
    pub(super) open_guards: AtomicU32,
    alive: AtomicBool,
}

/// What one runtime thread saw, as of its last publication (each time it
/// went idle, and at its stop).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThreadMetrics {
    /// Order in which the thread started, from 0.
    pub index: usize,
    /// The thread's name.
    pub name: Option<String>,
    /// What the thread is to the runtime: a worker, a blocking-pool thread,
    /// the caller of `block_on`, or another runtime's thread visiting.
    pub role: ThreadRole,
    /// Who registered its rseq area, or why the extension is off there.
    pub state: Result<Registrar, Unavailable>,
    /// Its counters (those of its time with this runtime).
    pub stats: SliceStats,
    /// Guards still alive on the thread when it last went idle (parked, or
    /// between polls of the executor's main future). Anything but 0 is a
    /// guard held across `.await` or leaked: see
    /// [`RuntimeThread::idle`](super::RuntimeThread::idle).
    pub open_guards: u32,
    /// Whether the thread is still running.
    pub alive: bool,
}

/// The stopped threads folded out of [`SliceMetrics::threads`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retired {
    /// How many.
    pub threads: u64,
    /// Their counters, summed.
    pub stats: SliceStats,
}

impl SliceMetrics {
    /// An endless iterator whose every [`next`](Iterator::next) yields what
    /// was published here since the previous one (the first: since these
    /// metrics were created), as tokio-metrics' `RuntimeMonitor::intervals`
    /// does. Sample it at your own pace, e.g. once a second.
    ///
    /// ```
    /// use rseq_slice_core::runtime::{RuntimeThread, SliceMetrics};
    /// let metrics = SliceMetrics::default();
    /// let mut intervals = metrics.intervals();
    /// drop(RuntimeThread::start(&metrics));
    /// let first = intervals.next().unwrap();
    /// assert_eq!((first.threads_started, first.threads_stopped), (1, 1));
    /// let second = intervals.next().unwrap();
    /// assert_eq!((second.threads_started, second.threads_alive), (0, 0));
    /// ```
    pub fn intervals(&self) -> Intervals {
        Intervals::new(self.clone())
    }

    /// The running threads and the last [`RETAINED_STOPPED`] stopped ones,
    /// in start order. Older stopped threads are in [`retired`](Self::retired).
    pub fn threads(&self) -> Vec<ThreadMetrics> {
        self.inner
            .lock()
            .slots
            .iter()
            .map(|s| ThreadMetrics {
                index: s.index,
                name: s.name.clone(),
                role: s.role(),
                state: s.state,
                stats: s.stats.load(),
                open_guards: s.open_guards.load(Ordering::Relaxed),
                alive: s.alive.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// The stopped threads no longer listed by [`threads`](Self::threads).
    pub fn retired(&self) -> Retired {
        self.inner.lock().retired
    }

    /// Everything published here since these metrics were created: the
    /// same type as each of [`intervals`](Self::intervals), as
    /// tokio-metrics' `TaskMonitor::cumulative` is.
    ///
    /// ```
    /// use rseq_slice_core::runtime::{RuntimeThread, SliceMetrics};
    /// let metrics = SliceMetrics::default();
    /// drop(RuntimeThread::start(&metrics));
    /// let all = metrics.cumulative();
    /// assert_eq!((all.threads_started, all.threads_alive), (1, 0));
    /// ```
    pub fn cumulative(&self) -> RuntimeMetrics {
        RuntimeMetrics::between(Totals::default(), self.inner.totals())
    }
}

impl Inner {
    /// Everything published so far, read at one point.
    pub(super) fn totals(&self) -> Totals {
        let r = self.lock();
        let listed = r.slots.len() as u64;
        Totals {
            stats: r.retired.stats + r.slots.iter().map(|s| s.stats.load()).sum(),
            started: r.retired.threads + listed,
            stopped: r.retired.threads + r.stopped as u64,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An entry for the calling thread: a visitor's stopped entry of an
    /// earlier visit, revived, with what it published there (`Some`), or a
    /// new one (`None`).
    pub(super) fn join(
        &self,
        state: Result<Registrar, Unavailable>,
        role: ThreadRole,
    ) -> (Arc<Slot>, Option<SliceStats>) {
        let home = role.home();
        let thread = std::thread::current().id();
        let mut r = self.lock();
        if !home
            && let Some(old) = r
                .slots
                .iter()
                .find(|s| !s.home && s.thread == thread && !s.alive())
                .cloned()
        {
            old.alive.store(true, Ordering::Relaxed);
            old.set_role(role);
            r.stopped -= 1;
            let published = old.stats.load();
            return (old, Some(published));
        }
        let slot = Arc::new(Slot {
            index: self.next_index.fetch_add(1, Ordering::Relaxed),
            name: std::thread::current().name().map(str::to_owned),
            thread,
            home,
            role: AtomicU8::new(role.to_u8()),
            state,
            stats: SharedStats::new(),
            open_guards: AtomicU32::new(0),
            alive: AtomicBool::new(true),
        });
        r.slots.push(slot.clone());
        (slot, None)
    }

    /// Mark `slot` running again (a visit the runtime ended, begun anew);
    /// false when it was folded into [`Retired`] meanwhile and is gone.
    pub(super) fn revive(&self, slot: &Arc<Slot>) -> bool {
        let mut r = self.lock();
        if !r.slots.iter().any(|s| Arc::ptr_eq(s, slot)) {
            return false;
        }
        if !slot.alive.swap(true, Ordering::Relaxed) {
            r.stopped -= 1;
        }
        true
    }

    /// Mark `slot` stopped (its final counters published), and fold the
    /// oldest stopped entries beyond [`RETAINED_STOPPED`] into the total.
    /// Stopping a stopped entry does nothing.
    pub(super) fn leave(&self, slot: &Slot) {
        let mut r = self.lock();
        if !slot.alive.swap(false, Ordering::Relaxed) {
            return;
        }
        r.stopped += 1;
        while r.stopped > RETAINED_STOPPED {
            let Some(i) = r.slots.iter().position(|s| !s.alive()) else {
                break;
            };
            let old = r.slots.remove(i);
            r.stopped -= 1;
            r.retired.threads += 1;
            r.retired.stats = r.retired.stats + old.stats.load();
        }
    }

    /// Mark every visitor's entry stopped.
    pub(super) fn end_visits(&self) {
        let visitors: Vec<Arc<Slot>> = self
            .lock()
            .slots
            .iter()
            .filter(|s| !s.home && s.alive())
            .cloned()
            .collect();
        for s in visitors {
            self.leave(&s);
        }
    }
}

impl Slot {
    pub(super) fn index(&self) -> usize {
        self.index
    }

    pub(super) fn alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    pub(super) fn role(&self) -> ThreadRole {
        ThreadRole::from_u8(self.role.load(Ordering::Relaxed))
    }

    pub(super) fn set_role(&self, role: ThreadRole) {
        self.role.store(role.to_u8(), Ordering::Relaxed);
    }
}
