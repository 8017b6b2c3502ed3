//! What runs in tokio's hooks: the shared per-thread machinery of
//! [`rseq_slice_core::runtime`], composed with the user's hooks.

use rseq_slice_core::runtime;

use crate::config::SliceConfig;

/// Section kinds, as they appear in events.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) const AFTER_POLL: &str = "scheduler";
pub(crate) const AFTER_UNPARK: &str = "unpark";
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) const TASK_POLL: &str = "task_poll";

pub(crate) fn thread_start(cfg: &SliceConfig) {
    let _ = runtime::thread_start(&cfg.metrics);
    if let Some(f) = &cfg.on_thread_start {
        f();
    }
}

/// Ends the thread's entry when dropped: after the user's stop hook, or
/// while it unwinds.
struct Stop;

impl Drop for Stop {
    fn drop(&mut self) {
        runtime::thread_stop();
    }
}

pub(crate) fn thread_stop(cfg: &SliceConfig) {
    runtime::close_section();
    // A panicking user hook must not leave the thread `alive` with its last
    // counters unpublished.
    let _stop = Stop;
    if let Some(f) = &cfg.on_thread_stop {
        f();
    }
}

/// Park and unpark also start the thread that drives a current-thread
/// runtime (tokio runs no start hook there).
pub(crate) fn thread_park(cfg: &SliceConfig) {
    runtime::ensure_started(&cfg.metrics);
    runtime::idle();
    if let Some(f) = &cfg.on_thread_park {
        f();
    }
}

pub(crate) fn thread_unpark(cfg: &SliceConfig) {
    runtime::ensure_started(&cfg.metrics);
    if let Some(f) = &cfg.on_thread_unpark {
        f();
    }
    if cfg.scheduler_sections && cfg!(tokio_unstable) {
        runtime::open_section(AFTER_UNPARK);
    }
}

#[cfg(tokio_unstable)]
pub(crate) use task::{after_task_poll, before_task_poll, task_terminate};

#[cfg(tokio_unstable)]
mod task {
    use std::sync::atomic::{AtomicBool, Ordering};

    use rseq_slice_core::runtime;
    use tokio::runtime::TaskMeta;

    use super::{AFTER_POLL, AFTER_UNPARK, SliceConfig, TASK_POLL};

    pub(crate) fn before_task_poll(cfg: &SliceConfig, meta: &TaskMeta<'_>) {
        // Our after-poll hook closes every task-poll section: one still open
        // means that hook was replaced.
        if runtime::section_kind() == Some(TASK_POLL) {
            hook_replaced("on_after_task_poll");
        }
        runtime::close_section();
        if let Some(f) = &cfg.on_before_task_poll {
            f(meta);
        }
        if cfg.task_polls {
            runtime::open_section(TASK_POLL);
        }
    }

    pub(crate) fn after_task_poll(cfg: &SliceConfig, meta: &TaskMeta<'_>) {
        // Our before-poll hook closes every scheduler section: one still open
        // spanned the whole poll, so that hook was replaced.
        if matches!(runtime::section_kind(), Some(AFTER_POLL | AFTER_UNPARK)) {
            hook_replaced("on_before_task_poll");
        }
        runtime::close_section();
        if let Some(f) = &cfg.on_after_task_poll {
            f(meta);
        }
        if cfg.scheduler_sections {
            runtime::open_section(AFTER_POLL);
        }
    }

    /// Runs on the thread that completes a task, including a blocking-pool
    /// task. A worker whose core `block_in_place` handed to another thread
    /// leaves the worker loop right after its after-poll hook opened a
    /// scheduler section; the worker loop is itself a blocking-pool task, so
    /// its end runs this hook, which closes that section before the thread
    /// goes back to the pool to run `spawn_blocking` closures.
    pub(crate) fn task_terminate(cfg: &SliceConfig, meta: &TaskMeta<'_>) {
        runtime::close_section();
        if let Some(f) = &cfg.on_task_terminate {
            f(meta);
        }
    }

    /// A poll hook of ours did not run: sections would span whole task polls.
    /// Stop opening them on this thread, and say so once per process.
    #[cold]
    fn hook_replaced(which: &'static str) {
        runtime::stop_sections();
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            tracing::error!(
                target: "rseq_slice",
                "the runtime's {which} hook was replaced (set on the builder after \
                 with_slice_extension?), so scheduler sections would span whole task polls: \
                 the adapter stops opening them; pass your hook to SliceConfig::{which} instead"
            );
        }
    }
}
