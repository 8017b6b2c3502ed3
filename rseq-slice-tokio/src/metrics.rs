//! Per-thread metrics a user reads from the runtime, in the spirit of
//! `tokio-metrics`: plain snapshots, no locks on any hot path.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rseq_slice_core::{Registrar, SharedStats, SliceStats, Unavailable};

/// A handle on one runtime's slice-extension metrics.
#[derive(Debug, Clone, Default)]
pub struct SliceMetrics {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    threads: Mutex<Vec<Arc<Slot>>>,
    next_index: AtomicUsize,
}

/// One runtime thread's entry, written by that thread.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) index: usize,
    name: Option<String>,
    state: OnceLock<Result<Registrar, Unavailable>>,
    pub(crate) stats: SharedStats,
    alive: AtomicBool,
}

impl Slot {
    pub(crate) fn set_state(&self, s: Result<Registrar, Unavailable>) {
        let _ = self.state.set(s);
    }
    pub(crate) fn stopped(&self) {
        self.stats.publish();
        self.alive.store(false, Ordering::Relaxed);
    }
}

/// What one runtime thread (worker or blocking-pool thread: tokio starts
/// both through the same hook) saw, as of its last publication (each park,
/// and its stop).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThreadMetrics {
    /// Order in which the thread started, from 0.
    pub index: usize,
    /// The thread's name.
    pub name: Option<String>,
    /// Who registered its rseq area, or why the extension is off there.
    pub state: Result<Registrar, Unavailable>,
    /// Its counters.
    pub stats: SliceStats,
    /// Whether the thread is still running.
    pub alive: bool,
}

impl SliceMetrics {
    /// Every thread that started in the runtime, in start order.
    pub fn threads(&self) -> Vec<ThreadMetrics> {
        let threads = self.inner.threads.lock().unwrap_or_else(|p| p.into_inner());
        threads
            .iter()
            .map(|s| ThreadMetrics {
                index: s.index,
                name: s.name.clone(),
                state: s
                    .state
                    .get()
                    .copied()
                    .unwrap_or(Err(Unavailable::NotInitialized)),
                stats: s.stats.load(),
                alive: s.alive.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// The counters of all threads, summed.
    pub fn total(&self) -> SliceStats {
        self.threads().into_iter().map(|t| t.stats).sum()
    }

    pub(crate) fn register_current(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            index: self.inner.next_index.fetch_add(1, Ordering::Relaxed),
            name: std::thread::current().name().map(str::to_owned),
            state: OnceLock::new(),
            stats: SharedStats::new(),
            alive: AtomicBool::new(true),
        });
        self.inner
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(slot.clone());
        slot
    }
}
