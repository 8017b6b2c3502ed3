//! One runtime thread's handle: its entry in a [`SliceMetrics`] and its open
//! section.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::metrics::{Inner, SliceMetrics, Slot};
use crate::local::LOCAL;
use crate::{Registrar, SliceStats, Unavailable};

/// The calling thread, as one of a runtime's threads: its entry in a
/// [`SliceMetrics`] and the section it holds open across two hooks.
///
/// Made by [`SliceMetrics::start_thread`] (a thread the runtime started:
/// sections on) or [`SliceMetrics::join_thread`] (a thread the runtime runs
/// on without starting it: no sections). Dropping it closes the open
/// section, reports the thread's grants, publishes its final counters and
/// marks its entry stopped. It belongs to the thread that made it (it is
/// `!Send`): keep it in the runtime's own per-thread state, or in one
/// thread-local where the runtime's hooks are free functions.
///
/// ```
/// use rseq_slice_core::runtime::SliceMetrics;
/// let metrics = SliceMetrics::default();
/// let thread = metrics.start_thread();
/// thread.open_section("scheduler");
/// assert_eq!(thread.section(), Some("scheduler"));
/// thread.idle(); // closes it, publishes, checks for guards left open
/// assert_eq!(thread.section(), None);
/// drop(thread);
/// assert!(!metrics.threads()[0].alive);
/// ```
pub struct RuntimeThread {
    entry: Entry,
    /// The registry of [`SliceMetrics::start_thread`]: the thread's own
    /// runtime, whose sections it gets back when it returns there.
    home: Option<Arc<Inner>>,
    section: Cell<Option<Open>>,
    /// Whether [`open_section`](RuntimeThread::open_section) opens sections.
    sections: Cell<bool>,
    #[cfg(feature = "tracing")]
    span: Option<tracing::span::EnteredSpan>,
    /// Sections and counters are the calling thread's.
    _not_send: PhantomData<*const ()>,
}

/// The thread's entry in the registry it reports to now.
struct Entry {
    slot: Arc<Slot>,
    metrics: Arc<Inner>,
    /// The thread's counters when it joined `metrics`: it reports the
    /// difference, so a thread that moves between runtimes counts once.
    base: SliceStats,
    /// Whether [`RuntimeThread::idle`] has warned about a guard left open.
    warned_open: Cell<bool>,
}

/// The open section: its kind and the thread's grant count when it opened.
/// The guard itself is implicit: opening enters the thread's protocol state,
/// closing leaves it.
#[derive(Clone, Copy)]
struct Open {
    kind: &'static str,
    /// The extension was on when it opened: `close_section` must exit it.
    armed: bool,
    granted_before: u64,
}

impl Entry {
    /// Register and enable the calling thread ([`crate::init`], idempotent)
    /// and add it to `metrics`.
    fn join(metrics: &Arc<Inner>) -> Entry {
        let state = crate::init();
        let slot = metrics.join(state);
        #[cfg(feature = "tracing")]
        if let Err(why) = state {
            tracing::warn!(target: "rseq_slice", thread = slot.index(), "slice extension off: {why}");
        }
        Entry {
            slot,
            metrics: metrics.clone(),
            base: crate::stats(),
            warned_open: Cell::new(false),
        }
    }

    fn publish(&self) {
        self.slot.stats.store(crate::stats() - self.base);
    }

    /// Publish the final counters and mark the entry stopped.
    fn leave(&self) {
        self.publish();
        self.metrics.leave(&self.slot);
    }
}

#[cfg(feature = "tracing")]
fn thread_span(index: usize) -> tracing::span::EnteredSpan {
    tracing::debug_span!(target: "rseq_slice", "rseq_slice_thread", index).entered()
}

impl RuntimeThread {
    pub(super) fn new(metrics: &Arc<Inner>, home: bool) -> RuntimeThread {
        let entry = Entry::join(metrics);
        RuntimeThread {
            #[cfg(feature = "tracing")]
            span: Some(thread_span(entry.slot.index())),
            entry,
            home: home.then(|| metrics.clone()),
            section: Cell::new(None),
            sections: Cell::new(home),
            _not_send: PhantomData,
        }
    }

    /// Who registered the thread's rseq area, or why the extension is off
    /// there (as recorded in its entry).
    pub fn state(&self) -> Result<Registrar, Unavailable> {
        self.entry.slot.state
    }

    /// The thread's index in the registry it reports to
    /// ([`ThreadMetrics::index`](super::ThreadMetrics::index)).
    pub fn index(&self) -> usize {
        self.entry.slot.index()
    }

    /// Whether the thread reports to `metrics` now.
    pub fn reports_to(&self, metrics: &SliceMetrics) -> bool {
        Arc::ptr_eq(&self.entry.metrics, &metrics.inner)
    }

    /// Report to `metrics` from now on, unless the thread does already.
    ///
    /// For a thread that drives another runtime, as a worker does that
    /// calls a current-thread runtime's `block_on` from a blocking closure:
    /// call it from a hook that runtime runs on the thread (park, unpark).
    /// A thread reports to one runtime at a time: moving ends its entry in
    /// the current registry (with the counters of its time there), and
    /// coming back starts a new one. The thread opens sections only while
    /// it reports to the runtime that [started](SliceMetrics::start_thread)
    /// it: elsewhere it runs code no hook brackets (a current-thread runtime
    /// polls its `block_on` future between task polls), which a section
    /// would cover.
    pub fn move_to(&mut self, metrics: &SliceMetrics) {
        if self.reports_to(metrics) {
            return;
        }
        self.close_section();
        crate::report_grants();
        self.entry.leave();
        #[cfg(feature = "tracing")]
        {
            self.span = None;
        }
        self.entry = Entry::join(&metrics.inner);
        #[cfg(feature = "tracing")]
        {
            self.span = Some(thread_span(self.entry.slot.index()));
        }
        let home = self
            .home
            .as_ref()
            .is_some_and(|h| Arc::ptr_eq(h, &metrics.inner));
        self.sections.set(home);
    }

    /// Make the thread's counters visible to its [`SliceMetrics`].
    pub fn publish(&self) {
        self.entry.publish();
    }

    /// The thread goes idle for its runtime: a worker about to park, an
    /// executor between polls of its main future. Closes the open section,
    /// publishes the counters, reports the grants of the thread's guards
    /// ([`crate::report_grants`]), and checks that no guard is left open.
    ///
    /// No task runs at such a point, so any guard still alive was held
    /// across an `.await` (possible on executors that run `!Send` futures:
    /// glommio, tokio's `LocalSet`, a `block_on` future) or leaked
    /// (`mem::forget`, `MutexGuard::leak`). While it lives every other guard
    /// on the thread is nested in it, so it requests nothing of its own, and
    /// [`disable`](crate::disable) / [`enable`](crate::enable) refuse. The
    /// count goes to [`ThreadMetrics::open_guards`](super::ThreadMetrics::open_guards);
    /// with `tracing`, the first time in each entry also logs a `WARN`.
    pub fn idle(&self) {
        self.close_section();
        let open = LOCAL.with(|l| l.depth());
        let entry = &self.entry;
        entry.slot.open_guards.store(open, Ordering::Relaxed);
        entry.publish();
        if open > 0 && !entry.warned_open.replace(true) {
            open_guard_found(entry.slot.index(), open);
        }
        crate::report_grants();
    }

    /// Open a section of `kind` unless one is open (or sections are off on
    /// this thread: see [`move_to`](RuntimeThread::move_to) and
    /// [`stop_sections`](RuntimeThread::stop_sections)). It stays open until
    /// [`close_section`](RuntimeThread::close_section): keep it to a few
    /// microseconds.
    #[inline]
    pub fn open_section(&self, kind: &'static str) {
        if !self.sections.get() || self.section.get().is_some() {
            return;
        }
        let (armed, granted_before) = LOCAL.with(|l| (l.enter(), l.granted_count()));
        self.section.set(Some(Open {
            kind,
            armed,
            granted_before,
        }));
    }

    /// Close the open section, if any (clearing the request and yielding if
    /// granted), and report a grant it got.
    #[inline]
    pub fn close_section(&self) {
        let Some(open) = self.section.take() else {
            return;
        };
        if !open.armed {
            return;
        }
        let granted = LOCAL.with(|l| {
            l.exit();
            crate::report::report(l);
            l.granted_count()
        });
        if granted != open.granted_before {
            section_granted(self.index(), open);
        }
    }

    /// The kind of the open section, if any.
    pub fn section(&self) -> Option<&'static str> {
        self.section.get().map(|o| o.kind)
    }

    /// Open no more sections on this thread until it moves back to its own
    /// runtime (for an adapter that finds its hooks replaced).
    pub fn stop_sections(&self) {
        self.sections.set(false);
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        self.close_section();
        crate::report_grants();
        self.entry.leave();
    }
}

impl fmt::Debug for RuntimeThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeThread")
            .field("index", &self.index())
            .field("state", &self.state())
            .field("section", &self.section())
            .field("sections", &self.sections.get())
            .finish_non_exhaustive()
    }
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

#[cold]
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
fn section_granted(worker: usize, open: Open) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "rseq_slice",
        worker,
        kind = open.kind,
        yielded = LOCAL.with(|l| l.last_yielded()),
        "slice extension granted"
    );
}
