//! What every runtime adapter needs, written once: a per-thread metrics
//! registry ([`SliceMetrics`]) and the calling thread's *open section*, a guard
//! that spans two scheduler hooks (opened in one, closed in the next) and
//! reports its grant as a `tracing` event.
//!
//! An adapter calls, on each of its runtime threads:
//! [`thread_start`] once, then [`open_section`] / [`close_section`] from its
//! hooks, [`publish`] at natural pauses (before parking) and [`thread_stop`]
//! at the end.
//!
//! ```
//! use rseq_slice_core::runtime::{self, SliceMetrics};
//! let metrics = SliceMetrics::default();
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         let _ = runtime::thread_start(&metrics); // Err(reason) on this kernel is fine
//!         runtime::open_section("scheduler");
//!         runtime::close_section();
//!         runtime::thread_stop();
//!     });
//! });
//! let t = &metrics.threads()[0];
//! // One section, counted where the extension is on (guards are inert where it is off).
//! let on = u64::from(t.state.is_ok());
//! assert_eq!((t.index, t.alive, t.stats.requested), (0, false, on));
//! ```
//!
//! With the `tracing` feature, each thread enters a `rseq_slice_thread` span
//! (`DEBUG`, field `index`) and every section that got a grant emits a
//! `DEBUG` event with target `rseq_slice` and fields `worker`, `kind` and
//! `yielded`; a thread where the extension is off logs its reason once
//! (`WARN`). Without a subscriber that wants them they cost tracing's level
//! check.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::local::LOCAL;
use crate::{Registrar, SharedStats, SliceStats, Unavailable};

/// A handle on one runtime's per-thread slice-extension metrics. Cheap to
/// clone; every clone sees the same threads.
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
struct Slot {
    index: usize,
    name: Option<String>,
    state: OnceLock<Result<Registrar, Unavailable>>,
    stats: SharedStats,
    alive: AtomicBool,
}

/// What one runtime thread saw, as of its last publication (each
/// [`publish`], and [`thread_stop`]).
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
    /// Every thread that started, in start order.
    pub fn threads(&self) -> Vec<ThreadMetrics> {
        self.lock()
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Slot>>> {
        self.inner.threads.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The calling thread's adapter state (cold: touched at start, park, stop).
struct Worker {
    slot: Arc<Slot>,
    /// Which [`SliceMetrics`] the thread reports to.
    metrics: Arc<Inner>,
    #[cfg(feature = "tracing")]
    _span: tracing::span::EnteredSpan,
}

/// The open section (hot: touched around every poll): its kind and the
/// thread's grant count when it opened. The guard itself is implicit: opening
/// enters the thread's protocol state, closing leaves it.
#[derive(Clone, Copy)]
struct Open {
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    kind: &'static str,
    /// The extension was on when it opened: `close_section` must exit it.
    armed: bool,
    granted_before: u64,
}

/// No worker on this thread (sections are not opened).
const NO_WORKER: usize = usize::MAX;

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
    static INDEX: Cell<usize> = const { Cell::new(NO_WORKER) };
    static SECTION: Cell<Option<Open>> = const { Cell::new(None) };
    /// Whether [`open_section`] may open sections on this thread.
    static SECTIONS: Cell<bool> = const { Cell::new(false) };
}

/// Run `f` on the calling thread's worker state, if it has one and it is not
/// borrowed already (a signal handler or a re-entrant hook): hooks must
/// never panic.
fn with_worker(f: impl FnOnce(&mut Worker)) {
    let _ = WORKER.try_with(|w| {
        if let Ok(mut w) = w.try_borrow_mut()
            && let Some(w) = w.as_mut()
        {
            f(w);
        }
    });
}

/// Register and enable the calling thread ([`crate::init`]) and add it to
/// `metrics`. Returns the outcome; a thread where the extension is off runs
/// on with guards that cost about nothing (and logs why, with `tracing`).
pub fn thread_start(metrics: &SliceMetrics) -> Result<Registrar, Unavailable> {
    start(metrics, true)
}

fn start(metrics: &SliceMetrics, sections: bool) -> Result<Registrar, Unavailable> {
    thread_stop();
    let slot = Arc::new(Slot {
        index: metrics.inner.next_index.fetch_add(1, Ordering::Relaxed),
        name: std::thread::current().name().map(str::to_owned),
        state: OnceLock::new(),
        stats: SharedStats::new(),
        alive: AtomicBool::new(true),
    });
    metrics.lock().push(slot.clone());
    let state = crate::init();
    let _ = slot.state.set(state);
    #[cfg(feature = "tracing")]
    if let Err(why) = state {
        tracing::warn!(target: "rseq_slice", thread = slot.index, "slice extension off: {why}");
    }
    #[cfg(feature = "tracing")]
    let span = tracing::debug_span!(target: "rseq_slice", "rseq_slice_thread", index = slot.index);
    let index = slot.index;
    let worker = Worker {
        slot,
        metrics: metrics.inner.clone(),
        #[cfg(feature = "tracing")]
        _span: span.entered(),
    };
    let _ = WORKER.try_with(|w| {
        if let Ok(mut w) = w.try_borrow_mut() {
            *w = Some(worker);
            INDEX.set(index);
            SECTIONS.set(sections);
        }
    });
    state
}

/// [`thread_start`] unless the calling thread already reports to `metrics`.
///
/// For threads a runtime runs on without a start hook, such as the thread
/// that drives a current-thread runtime: call it from a hook that thread does
/// run (park, unpark). Such a thread never stops for the runtime, so it stays
/// `alive` in `metrics` until it joins another runtime or calls
/// [`thread_stop`]. It gets no sections from [`open_section`]: such a thread
/// runs code no hook brackets (a current-thread runtime polls its `block_on`
/// future between task polls), which a section would cover.
pub fn ensure_started(metrics: &SliceMetrics) {
    let mut started = false;
    let _ = WORKER.try_with(|w| {
        if let Ok(w) = w.try_borrow() {
            started = w
                .as_ref()
                .is_some_and(|w| Arc::ptr_eq(&w.metrics, &metrics.inner));
        }
    });
    if !started {
        let _ = start(metrics, false);
    }
}

/// Close the open section, publish the counters and mark the thread stopped.
pub fn thread_stop() {
    close_section();
    let _ = WORKER.try_with(|w| {
        if let Ok(mut w) = w.try_borrow_mut()
            && let Some(w) = w.take()
        {
            INDEX.set(NO_WORKER);
            SECTIONS.set(false);
            w.slot.stats.publish();
            w.slot.alive.store(false, Ordering::Relaxed);
        }
    });
}

/// Make the calling thread's counters visible to [`SliceMetrics`].
pub fn publish() {
    with_worker(|w| w.slot.stats.publish());
}

/// Open a section of `kind` on the calling thread unless one is open (or the
/// thread never called [`thread_start`], or joined by [`ensure_started`]). It stays open until
/// [`close_section`]: keep it to a few microseconds.
#[inline]
pub fn open_section(kind: &'static str) {
    if !SECTIONS.get() || SECTION.get().is_some() {
        return;
    }
    let (armed, granted_before) = LOCAL.with(|l| (l.enter(), l.granted_count()));
    SECTION.set(Some(Open {
        kind,
        armed,
        granted_before,
    }));
}

/// Close the calling thread's open section, if any (clearing the request and
/// yielding if granted), and report a grant it got.
#[inline]
pub fn close_section() {
    let Some(open) = SECTION.take() else { return };
    if !open.armed {
        return;
    }
    let granted = LOCAL.with(|l| {
        l.exit();
        l.granted_count()
    });
    if granted != open.granted_before {
        section_granted(open);
    }
}

#[cold]
fn section_granted(open: Open) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "rseq_slice",
        worker = INDEX.get(),
        kind = open.kind,
        yielded = LOCAL.with(|l| l.last_yielded()),
        "slice extension granted"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = open;
}

/// Whether the calling thread has an open section.
pub fn section_open() -> bool {
    SECTION.get().is_some()
}
