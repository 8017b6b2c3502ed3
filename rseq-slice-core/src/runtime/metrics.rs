//! The per-thread metrics registry a runtime's threads report to.
//!
//! Bounded: running threads have an entry each, and so do the last
//! [`RETAINED_STOPPED`] threads that stopped; older stopped threads are folded
//! into one [`Retired`] total. A runtime that starts a blocking-pool thread
//! per burst of `spawn_blocking` keeps a registry of constant size.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{Registrar, SharedStats, SliceStats, Unavailable};

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
    state: Result<Registrar, Unavailable>,
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
    /// Who registered its rseq area, or why the extension is off there.
    pub state: Result<Registrar, Unavailable>,
    /// Its counters (those of its time with this runtime).
    pub stats: SliceStats,
    /// Guards still alive on the thread when it last went idle (parked, or
    /// between polls of the executor's main future). Anything but 0 is a
    /// guard held across `.await` or leaked: see
    /// [`runtime::idle`](super::idle).
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

    /// The counters of every thread that ever reported here, summed.
    pub fn total(&self) -> SliceStats {
        let r = self.inner.lock();
        r.retired.stats + r.slots.iter().map(|s| s.stats.load()).sum()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new entry for the calling thread.
    pub(super) fn join(&self, state: Result<Registrar, Unavailable>) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            index: self.next_index.fetch_add(1, Ordering::Relaxed),
            name: std::thread::current().name().map(str::to_owned),
            state,
            stats: SharedStats::new(),
            open_guards: AtomicU32::new(0),
            alive: AtomicBool::new(true),
        });
        self.lock().slots.push(slot.clone());
        slot
    }

    /// Mark `slot` stopped (its final counters published), and fold the
    /// oldest stopped entries beyond [`RETAINED_STOPPED`] into the total.
    pub(super) fn leave(&self, slot: &Slot) {
        let mut r = self.lock();
        slot.alive.store(false, Ordering::Relaxed);
        r.stopped += 1;
        while r.stopped > RETAINED_STOPPED {
            let Some(i) = r
                .slots
                .iter()
                .position(|s| !s.alive.load(Ordering::Relaxed))
            else {
                break;
            };
            let old = r.slots.remove(i);
            r.stopped -= 1;
            r.retired.threads += 1;
            r.retired.stats = r.retired.stats + old.stats.load();
        }
    }
}

impl Slot {
    pub(super) fn index(&self) -> usize {
        self.index
    }
}
