//! One runtime thread's handle: its entry in a [`SliceMetrics`] and its open
//! section.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::metrics::{Inner, SliceMetrics, Slot};
use super::role::ThreadRole;
use crate::local::LOCAL;
use crate::{Registrar, SliceStats, Unavailable};

/// The calling thread, as one of a runtime's threads: its entry in a
/// [`SliceMetrics`] and the section it holds open across two hooks.
///
/// Made by [`RuntimeThread::start`] (a thread the runtime started: its
/// *home* runtime, with sections) or [`RuntimeThread::join`] (a thread
/// the runtime runs on without starting it, such as the caller of a
/// current-thread runtime's `block_on`: a *visit*, without sections). A
/// thread that drives another runtime for a while (a blocking-pool thread
/// calling `block_on`, a nested runtime) visits it
/// ([`move_to`](RuntimeThread::move_to)): its home entry stays alive and
/// pauses, and each runtime counts what the thread did while it ran that
/// runtime, once. Dropping the handle closes the open section, reports the
/// thread's grants, publishes its final counters and marks its entries
/// stopped. It belongs to the thread that made it (it is `!Send`): keep it
/// in the runtime's own per-thread state, or in one thread-local where the
/// runtime's hooks are free functions.
///
/// ```
/// use rseq_slice_core::runtime::{RuntimeThread, SliceMetrics};
/// let metrics = SliceMetrics::default();
/// let thread = RuntimeThread::start(&metrics);
/// thread.open_section("scheduler");
/// assert_eq!(thread.section(), Some("scheduler"));
/// thread.idle(); // closes it, publishes, checks for guards left open
/// assert_eq!(thread.section(), None);
/// drop(thread);
/// assert!(!metrics.threads()[0].alive);
/// ```
pub struct RuntimeThread {
    /// The entry in the runtime the thread runs now.
    here: Entry,
    /// Whether `here` is the entry in the runtime that started the thread.
    at_home: bool,
    /// That entry, paused, while the thread visits another runtime.
    away: Option<Entry>,
    section: Cell<Option<Open>>,
    /// Cleared by [`stop_sections`](RuntimeThread::stop_sections).
    sections: Cell<bool>,
    /// Sections and counters are the calling thread's.
    _not_send: PhantomData<*const ()>,
}

/// The thread's entry in one registry.
struct Entry {
    slot: Arc<Slot>,
    metrics: Arc<Inner>,
    /// Subtracted from the thread's counters when publishing: their value
    /// when the entry began, plus what the thread counted while it was away
    /// (visiting another runtime), so each runtime counts its own stretch.
    base: Cell<SliceStats>,
    /// The thread's counters when it left for a visit; `None` while here.
    away_since: Cell<Option<SliceStats>>,
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
    /// and give it an entry in `metrics`: its stopped entry there of an
    /// earlier visit, revived, or a new one.
    fn join(metrics: &Arc<Inner>, role: ThreadRole) -> Entry {
        let state = crate::init();
        let (slot, published) = metrics.join(state, role);
        #[cfg(feature = "tracing")]
        if let Err(why) = state
            && published.is_none()
        {
            super::off_reasons::thread_is_off(slot.index(), why);
        }
        Entry {
            slot,
            metrics: metrics.clone(),
            base: Cell::new(crate::stats() - published.unwrap_or_default()),
            away_since: Cell::new(None),
            warned_open: Cell::new(false),
        }
    }

    fn publish(&self) {
        let now = self.away_since.get().unwrap_or_else(crate::stats);
        self.slot.stats.store(now - self.base.get());
    }

    /// The thread leaves for a visit: its counters stop counting here.
    fn pause(&self) {
        self.publish();
        self.away_since.set(Some(crate::stats()));
    }

    /// The thread is back: what it counted meanwhile was the visit's.
    fn resume(&self) {
        if let Some(left) = self.away_since.take() {
            self.base.set(self.base.get() + (crate::stats() - left));
        }
    }

    /// Publish the final counters and mark the entry stopped.
    fn leave(&self) {
        self.publish();
        self.metrics.leave(&self.slot);
    }

    fn reports_to(&self, metrics: &SliceMetrics) -> bool {
        Arc::ptr_eq(&self.metrics, &metrics.inner)
    }
}

impl RuntimeThread {
    /// Register and enable the calling thread ([`crate::init`]) and add it
    /// to `metrics`, with scheduler sections on: for each thread the
    /// runtime starts (from its thread-start hook). The thread's entry ends
    /// when the handle drops.
    ///
    /// Where the extension is off the thread runs on with guards that cost
    /// about nothing; [`state`](Self::state) says why (and with `tracing`
    /// each reason is logged once per process at `WARN`, and each thread's
    /// at `DEBUG`).
    /// Its role is [`ThreadRole::Worker`]; see [`start_as`](Self::start_as).
    pub fn start(metrics: &SliceMetrics) -> RuntimeThread {
        RuntimeThread::start_as(metrics, ThreadRole::Worker)
    }

    /// [`start`](Self::start) in `role` ([`ThreadRole::Worker`] or
    /// [`ThreadRole::Blocking`]: a thread the runtime started), for a
    /// runtime whose thread-start hook cannot tell its workers from its
    /// blocking-pool threads (tokio's); [`set_role`](Self::set_role) says so
    /// later. A visiting role counts as `Blocking`.
    pub fn start_as(metrics: &SliceMetrics, role: ThreadRole) -> RuntimeThread {
        let role = if role.home() {
            role
        } else {
            ThreadRole::Blocking
        };
        RuntimeThread::new(&metrics.inner, role)
    }

    /// [`start`](Self::start) for a thread the runtime runs on without
    /// starting it, such as the thread that drives a current-thread runtime
    /// (call it from a hook that thread does run: park, unpark): a *visit*,
    /// without sections. Such a thread runs code no hook brackets (a
    /// current-thread runtime polls its `block_on` future between task
    /// polls), which a section would cover. A thread that visited before
    /// gets its entry of then back. The entry stops when the handle drops,
    /// when it moves on ([`move_to`](Self::move_to)), or at
    /// [`end_visits`](Self::end_visits).
    ///
    /// Its role is [`ThreadRole::BlockOn`]; a thread that moves here from
    /// another runtime ([`move_to`](Self::move_to)) is a
    /// [`ThreadRole::Visitor`].
    pub fn join(metrics: &SliceMetrics) -> RuntimeThread {
        RuntimeThread::new(&metrics.inner, ThreadRole::BlockOn)
    }

    /// The runtime `metrics` belong to has shut down: every thread that was
    /// only visiting it (a caller of its `block_on`, another runtime's
    /// thread) no longer runs it, and its entry is marked stopped. A thread
    /// that runs it again (metrics shared with another runtime) gets the
    /// same entry back at its next [`move_to`](Self::move_to).
    pub fn end_visits(metrics: &SliceMetrics) {
        metrics.inner.end_visits();
    }

    fn new(metrics: &Arc<Inner>, role: ThreadRole) -> RuntimeThread {
        let here = Entry::join(metrics, role);
        RuntimeThread {
            here,
            at_home: role.home(),
            away: None,
            section: Cell::new(None),
            sections: Cell::new(true),
            _not_send: PhantomData,
        }
    }

    /// Who registered the thread's rseq area, or why the extension is off
    /// there (as recorded in its entry).
    pub fn state(&self) -> Result<Registrar, Unavailable> {
        self.here.slot.state
    }

    /// The thread's index in the registry it reports to now
    /// ([`ThreadMetrics::index`](super::ThreadMetrics::index)).
    pub fn index(&self) -> usize {
        self.here.slot.index()
    }

    /// Whether the thread reports to `metrics` now.
    pub fn reports_to(&self, metrics: &SliceMetrics) -> bool {
        self.here.reports_to(metrics)
    }

    /// The thread's role in the runtime it reports to now.
    pub fn role(&self) -> ThreadRole {
        self.here.slot.role()
    }

    /// A thread the runtime started is now seen in `role` (a
    /// blocking-pool thread that turns out to run the worker loop: tokio
    /// starts both with one hook). Only a home thread's role changes, and
    /// only between [`ThreadRole::Worker`] and [`ThreadRole::Blocking`]; a
    /// relaxed load when nothing changes.
    #[inline]
    pub fn set_role(&self, role: ThreadRole) {
        if self.at_home && role.home() && self.here.slot.role() != role {
            self.here.slot.set_role(role);
        }
    }

    /// The thread runs `metrics`' runtime from now on: call it from every
    /// hook that runtime runs on the thread (park, unpark, task polls). It
    /// costs a pointer comparison when nothing changed.
    ///
    /// - `metrics` is the thread's home: a visit ends, and the home entry
    ///   counts again.
    /// - It is the runtime the thread visits already: nothing, unless that
    ///   runtime ended the visit meanwhile ([`end_visits`](Self::end_visits)):
    ///   it begins again in the same entry.
    /// - Another runtime: the open section closes (it belonged to the
    ///   runtime the thread leaves), a visit of a third runtime ends, the
    ///   home entry pauses, and the thread visits `metrics`, in its entry
    ///   there of an earlier visit if it had one.
    ///
    /// Sections open only at home: a visited runtime runs code no hook
    /// brackets (a current-thread runtime polls its `block_on` future
    /// between task polls), which a section would cover.
    pub fn move_to(&mut self, metrics: &SliceMetrics) {
        if self.here.reports_to(metrics) {
            if self.at_home || self.here.slot.alive() || self.here.metrics.revive(&self.here.slot) {
                return;
            }
            // Folded into the retired total meanwhile: a new entry.
            self.here = Entry::join(&metrics.inner, self.here.slot.role());
            return;
        }
        self.close_section();
        crate::diagnostics::report_grants();
        let going_home = self.away.as_ref().is_some_and(|h| h.reports_to(metrics));
        let next = match self.away.take() {
            Some(home) if going_home => {
                home.resume();
                home
            }
            away => {
                self.away = away;
                Entry::join(&metrics.inner, ThreadRole::Visitor)
            }
        };
        let left = std::mem::replace(&mut self.here, next);
        if self.at_home {
            left.pause();
            self.away = Some(left);
        } else {
            left.leave();
        }
        self.at_home = going_home;
    }

    /// Make the thread's counters visible to its [`SliceMetrics`].
    pub fn publish(&self) {
        self.here.publish();
    }

    /// The thread goes idle for its runtime: a worker about to park, an
    /// executor between polls of its main future. Closes the open section,
    /// publishes the counters, reports the grants of the thread's guards
    /// ([`crate::diagnostics::report_grants`]), and checks that no guard is left open.
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
        let entry = &self.here;
        entry.slot.open_guards.store(open, Ordering::Relaxed);
        entry.publish();
        if open > 0 && !entry.warned_open.replace(true) {
            open_guard_found(entry.slot.index(), open);
        }
        crate::diagnostics::report_grants();
    }

    /// Open a section of `kind` unless one is open, or sections are off on
    /// this thread: it is visiting (see [`move_to`](RuntimeThread::move_to)),
    /// or [`stop_sections`](RuntimeThread::stop_sections) was called. It stays open until
    /// [`close_section`](RuntimeThread::close_section): keep it to a few
    /// microseconds.
    #[inline]
    pub fn open_section(&self, kind: &'static str) {
        if self.at_home {
            self.open(kind);
        }
    }

    /// Open a section of `kind` around exactly one task poll, from a hook
    /// that runs right before the poll, to be closed by one right after it:
    /// unlike [`open_section`](Self::open_section) it opens on a visit too
    /// (a current-thread runtime's `block_on` thread), since nothing but
    /// the task runs between those two hooks. Refused where a section is
    /// open or [`stop_sections`](RuntimeThread::stop_sections) was called.
    #[inline]
    pub fn open_poll_section(&self, kind: &'static str) {
        self.open(kind);
    }

    #[inline]
    fn open(&self, kind: &'static str) {
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
            crate::grant_events::report(l);
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

    /// Open no more sections on this thread (for an adapter that finds its
    /// hooks replaced).
    pub fn stop_sections(&self) {
        self.sections.set(false);
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        self.close_section();
        crate::diagnostics::report_grants();
        self.here.leave();
        if let Some(home) = &self.away {
            home.leave();
        }
    }
}

impl fmt::Debug for RuntimeThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeThread")
            .field("index", &self.index())
            .field("state", &self.state())
            .field("section", &self.section())
            .field("at_home", &self.at_home)
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
fn section_granted(thread: usize, open: Open) {
    #[cfg(feature = "tracing")]
    {
        let yielded = LOCAL.with(|l| l.last_yielded());
        tracing::debug!(
            target: "rseq_slice",
            thread,
            kind = open.kind,
            granted = true,
            yielded,
            revoked = !yielded,
            "slice extension granted"
        );
    }
}
