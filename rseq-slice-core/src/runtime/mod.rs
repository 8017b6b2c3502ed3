//! What every runtime adapter needs, written once: a per-thread metrics
//! registry ([`SliceMetrics`], bounded: see [`RETAINED_STOPPED`]) and the
//! calling thread's *open section*, a guard that spans two scheduler hooks
//! (opened in one, closed in the next) and reports its grant as a `tracing`
//! event.
//!
//! An adapter calls, on each of its runtime threads:
//! [`thread_start`] once, then [`open_section`] / [`close_section`] from its
//! hooks, [`idle`] at natural pauses (before parking: it also checks for
//! guards left open) and [`thread_stop`] at the end.
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
//! (`WARN`), and so does a thread found idle with a guard open. The grants
//! of every guard on the thread are reported ([`crate::report_grants`]) at
//! each section close, at [`idle`] and at [`thread_stop`], never from inside
//! a guard. Without a subscriber that wants them they cost tracing's level
//! check.

mod metrics;

use std::cell::{Cell, RefCell};
use std::sync::{Arc, Weak};

use crate::local::LOCAL;
use crate::{Registrar, SliceStats, Unavailable};

use metrics::{Inner, Slot};
pub use metrics::{RETAINED_STOPPED, Retired, SliceMetrics, ThreadMetrics};

/// The calling thread's adapter state (cold: touched at start, park, stop).
struct Worker {
    slot: Arc<Slot>,
    /// Which [`SliceMetrics`] the thread reports to.
    metrics: Arc<Inner>,
    /// The thread's counters when it joined `metrics`: it reports the
    /// difference, so a thread that moves between runtimes counts once.
    base: SliceStats,
    /// Whether [`idle`] has warned about a guard left open.
    warned_open: bool,
    #[cfg(feature = "tracing")]
    _span: tracing::span::EnteredSpan,
}

impl Worker {
    fn publish(&self) {
        self.slot.stats.store(crate::stats() - self.base);
    }
}

/// The open section (hot: touched around every poll): its kind and the
/// thread's grant count when it opened. The guard itself is implicit: opening
/// enters the thread's protocol state, closing leaves it.
#[derive(Clone, Copy)]
struct Open {
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
    /// The registry the thread joined through [`thread_start`]: its runtime,
    /// whose sections it gets back when it returns there from another.
    static HOME: RefCell<Weak<Inner>> = const { RefCell::new(Weak::new()) };
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
    let _ = HOME.try_with(|h| {
        if let Ok(mut h) = h.try_borrow_mut() {
            *h = Arc::downgrade(&metrics.inner);
        }
    });
    start(metrics, true)
}

fn start(metrics: &SliceMetrics, sections: bool) -> Result<Registrar, Unavailable> {
    stop();
    let state = crate::init();
    let slot = metrics.inner.join(state);
    #[cfg(feature = "tracing")]
    if let Err(why) = state {
        tracing::warn!(target: "rseq_slice", thread = slot.index(), "slice extension off: {why}");
    }
    #[cfg(feature = "tracing")]
    let span =
        tracing::debug_span!(target: "rseq_slice", "rseq_slice_thread", index = slot.index());
    let index = slot.index();
    let worker = Worker {
        slot,
        metrics: metrics.inner.clone(),
        base: crate::stats(),
        warned_open: false,
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
/// run (park, unpark). A thread reports to one runtime at a time: joining
/// another one ends its entry in the first (with the counters of its time
/// there), and coming back starts a new one. Such a thread never stops for
/// the runtime, so it stays `alive` in `metrics` until it joins another
/// runtime or calls [`thread_stop`].
///
/// A thread joined this way gets no sections from [`open_section`]: it runs
/// code no hook brackets (a current-thread runtime polls its `block_on`
/// future between task polls), which a section would cover. A runtime
/// thread ([`thread_start`]) that comes back to its own runtime this way,
/// after driving another one, gets its sections back.
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
        let home = HOME
            .try_with(|h| {
                h.try_borrow()
                    .is_ok_and(|h| h.as_ptr() == Arc::as_ptr(&metrics.inner))
            })
            .unwrap_or(false);
        let _ = start(metrics, home);
    }
}

/// Close the open section, publish the counters and mark the thread stopped.
pub fn thread_stop() {
    let _ = HOME.try_with(|h| {
        if let Ok(mut h) = h.try_borrow_mut() {
            *h = Weak::new();
        }
    });
    stop();
}

/// End the thread's entry in its current registry, if any.
fn stop() {
    close_section();
    crate::report_grants();
    let _ = WORKER.try_with(|w| {
        if let Ok(mut w) = w.try_borrow_mut()
            && let Some(w) = w.take()
        {
            INDEX.set(NO_WORKER);
            SECTIONS.set(false);
            w.publish();
            w.metrics.leave(&w.slot);
        }
    });
}

/// Make the calling thread's counters visible to [`SliceMetrics`].
pub fn publish() {
    with_worker(|w| w.publish());
}

/// The calling thread goes idle for its runtime: a worker about to park, an
/// executor between polls of its main future. Closes the open section,
/// publishes the counters, reports the grants of the thread's guards
/// ([`crate::report_grants`]), and checks that no guard is left open.
///
/// No task runs at such a point, so any guard still alive was held across
/// an `.await` (possible on executors that run `!Send` futures: glommio,
/// tokio's `LocalSet`, a `block_on` future) or leaked (`mem::forget`,
/// `MutexGuard::leak`). While it lives every other guard on the thread is
/// nested in it, so it requests nothing of its own, and
/// [`disable`](crate::disable) / [`enable`](crate::enable) refuse. The count
/// goes to [`ThreadMetrics::open_guards`]; with `tracing`, the first time on
/// each thread also logs a `WARN`.
pub fn idle() {
    close_section();
    let open = LOCAL.with(|l| l.depth());
    with_worker(|w| {
        w.slot
            .open_guards
            .store(open, std::sync::atomic::Ordering::Relaxed);
        w.publish();
        if open > 0 && !w.warned_open {
            w.warned_open = true;
            open_guard_found(w.slot.index(), open);
        }
    });
    crate::report_grants();
}

#[cold]
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
fn open_guard_found(thread: usize, open: u32) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "rseq_slice",
        thread,
        open,
        "a slice guard is still alive while the thread is idle: held across .await or leaked \
         (mem::forget, MutexGuard::leak); until it drops, this thread's guards request nothing \
         of their own and disable/enable fail"
    );
}

/// Open no more sections on the calling thread until it starts again (for
/// an adapter that finds its hooks replaced).
pub fn stop_sections() {
    SECTIONS.set(false);
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
        crate::report::report(l);
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

/// The kind of the calling thread's open section, if any.
pub fn section_kind() -> Option<&'static str> {
    SECTION.get().map(|o| o.kind)
}
