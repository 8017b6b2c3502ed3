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

pub(crate) fn thread_stop(cfg: &SliceConfig) {
    runtime::close_section();
    if let Some(f) = &cfg.on_thread_stop {
        f();
    }
    runtime::thread_stop();
}

/// Park and unpark also start the thread that drives a current-thread
/// runtime (tokio runs no start hook there).
pub(crate) fn thread_park(cfg: &SliceConfig) {
    runtime::ensure_started(&cfg.metrics);
    runtime::close_section();
    runtime::publish();
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
