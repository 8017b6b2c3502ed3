//! What runs in tokio's hooks: the calling thread's
//! [`RuntimeThread`](rseq_slice_core::runtime::RuntimeThread), kept in one
//! thread-local (tokio's hooks are free closures), composed with the user's
//! hooks.

use std::cell::RefCell;
#[cfg(tokio_unstable)]
use std::sync::atomic::AtomicBool;

use rseq_slice_core::runtime::{RuntimeThread, ThreadRole};

use crate::config::SliceConfig;

/// What one runtime's hooks share: its configuration. Dropped with the
/// runtime's hooks, when the runtime is gone: the threads that were only
/// visiting it no longer run it ([`RuntimeThread::end_visits`](rseq_slice_core::runtime::RuntimeThread::end_visits)).
pub(crate) struct Hooks {
    pub(crate) cfg: SliceConfig,
    /// Whether this runtime has logged a replaced poll hook.
    #[cfg(tokio_unstable)]
    replaced_said: AtomicBool,
}

impl Hooks {
    pub(crate) fn new(cfg: SliceConfig) -> Hooks {
        Hooks {
            cfg,
            #[cfg(tokio_unstable)]
            replaced_said: AtomicBool::new(false),
        }
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        RuntimeThread::end_visits(&self.cfg.thread.metrics);
    }
}

/// Section kinds, as they appear in events.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) const AFTER_POLL: &str = "scheduler";
pub(crate) const AFTER_UNPARK: &str = "unpark";
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) const TASK_POLL: &str = "task_poll";

thread_local! {
    /// The calling thread's handle: set in `on_thread_start`, or at the
    /// first hook of a thread no adapter's runtime started (it then visits
    /// the runtime); moved by every hook to the runtime that runs it;
    /// dropped in `on_thread_stop` (or with the thread).
    static RUNTIME_THREAD: RefCell<Option<RuntimeThread>> = const { RefCell::new(None) };
}

/// Run `f` on the calling thread's handle, if it has one and it is not
/// borrowed mutably (a re-entrant hook): hooks must never panic.
fn with_thread(f: impl FnOnce(&RuntimeThread)) {
    let _ = RUNTIME_THREAD.try_with(|t| {
        if let Ok(t) = t.try_borrow()
            && let Some(t) = t.as_ref()
        {
            f(t);
        }
    });
}

/// Replace the calling thread's handle; the old one (if any) is dropped
/// after the thread-local is released.
fn replace_thread(new: Option<RuntimeThread>) {
    let old = RUNTIME_THREAD
        .try_with(|t| {
            t.try_borrow_mut()
                .map(|mut t| std::mem::replace(&mut *t, new))
        })
        .ok()
        .and_then(Result::ok);
    drop(old);
}

/// The kind of section the adapter holds open on the calling thread
/// (`"scheduler"`, `"unpark"` or `"task_poll"`), if any: for tests and
/// diagnostics. It is the adapter's own record, so it shows sections on any
/// kernel, also where the extension is off and sections are inert.
pub fn current_section() -> Option<&'static str> {
    let mut kind = None;
    with_thread(|t| kind = t.section());
    kind
}

pub(crate) fn thread_start(h: &Hooks) {
    let cfg = &h.cfg;
    replace_thread(None);
    cfg.enable_thread();
    // tokio starts workers and blocking-pool threads with this one hook:
    // a thread is a worker once it parks, unparks or polls a task.
    replace_thread(Some(RuntimeThread::start_as(
        &cfg.thread.metrics,
        ThreadRole::Blocking,
    )));
    if let Some(f) = &cfg.thread.on_thread_start {
        f();
    }
}

/// Drops the thread's handle (final counters, entry stopped) when dropped
/// itself: after the user's stop hook, or while it unwinds.
struct Stop;

impl Drop for Stop {
    fn drop(&mut self) {
        replace_thread(None);
    }
}

pub(crate) fn thread_stop(h: &Hooks) {
    let cfg = &h.cfg;
    with_thread(RuntimeThread::close_section);
    // A panicking user hook must not leave the thread `alive` with its last
    // counters unpublished.
    let _stop = Stop;
    if let Some(f) = &cfg.thread.on_thread_stop {
        f();
    }
}

/// Every hook but start and stop: start the thread that drives a
/// current-thread runtime (tokio runs no start hook there) as a visitor,
/// and tell a thread which runtime runs it now (a pointer comparison when
/// nothing changed): a blocking-pool thread that calls another runtime's
/// `block_on`, a nested runtime, alternating runtimes.
fn ensure_started(cfg: &SliceConfig) {
    let _ = RUNTIME_THREAD.try_with(|t| {
        let Ok(mut t) = t.try_borrow_mut() else {
            return;
        };
        match t.as_mut() {
            Some(t) => t.move_to(&cfg.thread.metrics),
            None => {
                cfg.enable_thread();
                *t = Some(RuntimeThread::join(&cfg.thread.metrics));
            }
        }
    });
}

pub(crate) fn thread_park(h: &Hooks) {
    let cfg = &h.cfg;
    ensure_started(cfg);
    with_thread(|t| {
        t.set_role(ThreadRole::Worker);
        t.idle();
    });
    if let Some(f) = &cfg.on_thread_park {
        f();
    }
}

pub(crate) fn thread_unpark(h: &Hooks) {
    let cfg = &h.cfg;
    ensure_started(cfg);
    with_thread(|t| t.set_role(ThreadRole::Worker));
    if let Some(f) = &cfg.on_thread_unpark {
        f();
    }
    if cfg.scheduler_sections && cfg!(tokio_unstable) {
        with_thread(|t| t.open_section(AFTER_UNPARK));
    }
}

#[cfg(tokio_unstable)]
pub(crate) use task::{after_task_poll, before_task_poll, task_terminate};

#[cfg(tokio_unstable)]
mod task {
    use rseq_slice_core::runtime::{RuntimeThread, ThreadRole};
    use tokio::runtime::TaskMeta;

    use super::{AFTER_POLL, AFTER_UNPARK, Hooks, TASK_POLL, ensure_started, with_thread};

    pub(crate) fn before_task_poll(h: &Hooks, meta: &TaskMeta<'_>) {
        let cfg = &h.cfg;
        // A task of another runtime's (a nested `block_on`) first moves the
        // thread there, which closes the section of the poll it runs inside.
        ensure_started(cfg);
        with_thread(|t| {
            // Our after-poll hook closes every task-poll section: one still
            // open means that hook was replaced.
            if t.section() == Some(TASK_POLL) {
                hook_replaced(h, t, "on_after_task_poll");
            }
            t.close_section();
            t.set_role(ThreadRole::Worker);
        });
        if let Some(f) = &cfg.on_before_task_poll {
            f(meta);
        }
        // The two poll hooks bracket exactly this task's poll: the section
        // opens on a current-thread runtime's `block_on` thread too.
        if cfg.task_polls {
            with_thread(|t| t.open_poll_section(TASK_POLL));
        }
    }

    pub(crate) fn after_task_poll(h: &Hooks, meta: &TaskMeta<'_>) {
        let cfg = &h.cfg;
        ensure_started(cfg);
        with_thread(|t| {
            // Our before-poll hook closes every scheduler section: one still
            // open spanned the whole poll, so that hook was replaced.
            if matches!(t.section(), Some(AFTER_POLL | AFTER_UNPARK)) {
                hook_replaced(h, t, "on_before_task_poll");
            }
            t.close_section();
        });
        if let Some(f) = &cfg.on_after_task_poll {
            f(meta);
        }
        if cfg.scheduler_sections {
            with_thread(|t| t.open_section(AFTER_POLL));
        }
    }

    /// Runs on the thread that completes a task, including a blocking-pool
    /// task. A worker whose core `block_in_place` handed to another thread
    /// leaves the worker loop right after its after-poll hook opened a
    /// scheduler section; the worker loop is itself a blocking-pool task, so
    /// its end runs this hook, which closes that section before the thread
    /// goes back to the pool to run `spawn_blocking` closures.
    pub(crate) fn task_terminate(h: &Hooks, meta: &TaskMeta<'_>) {
        let cfg = &h.cfg;
        // A blocking-pool thread back from another runtime's `block_on`
        // returns home here.
        ensure_started(cfg);
        with_thread(RuntimeThread::close_section);
        if let Some(f) = &cfg.on_task_terminate {
            f(meta);
        }
    }

    /// A poll hook of ours did not run: sections would span whole task polls.
    /// Stop opening them on this thread, and (with `tracing`) say so once
    /// per runtime.
    #[cold]
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    fn hook_replaced(h: &Hooks, t: &RuntimeThread, which: &'static str) {
        t.stop_sections();
        #[cfg(feature = "tracing")]
        {
            use std::sync::atomic::Ordering;
            if !h.replaced_said.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    target: "rseq_slice",
                    "the runtime's {which} hook was replaced (set on the builder after \
                     with_slice_extension?), so scheduler sections would span whole task polls: \
                     the adapter stops opening them; pass your hook to SliceConfig::{which} \
                     instead"
                );
            }
        }
    }
}
