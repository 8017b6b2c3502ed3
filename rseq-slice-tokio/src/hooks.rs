//! What runs in tokio's hooks: per-thread registration, the scheduler
//! sections between them, publication of the counters, grant events.

use std::cell::RefCell;
use std::sync::Arc;

use rseq_slice_core::{SliceGuard, SliceStats, stats};

use crate::config::SliceConfig;
use crate::metrics::Slot;

/// Section kinds, as they appear in events.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) const AFTER_POLL: &str = "scheduler";
pub(crate) const AFTER_UNPARK: &str = "unpark";
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
pub(crate) const TASK_POLL: &str = "task_poll";

struct Worker {
    slot: Arc<Slot>,
    /// The open section, if any: its guard, kind, and the counters at its start.
    section: Option<(SliceGuard, &'static str, SliceStats)>,
    _span: tracing::span::EnteredSpan,
}

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

pub(crate) fn thread_start(cfg: &SliceConfig) {
    let slot = cfg.metrics.register_current();
    let state = rseq_slice_core::init();
    if let Err(why) = state {
        tracing::warn!(target: "rseq_slice", thread = slot.index, "slice extension off: {why}");
    }
    slot.set_state(state);
    let span = tracing::debug_span!(target: "rseq_slice", "rseq_slice_thread", index = slot.index);
    let worker = Worker {
        slot,
        section: None,
        _span: span.entered(),
    };
    let _ = WORKER.try_with(|w| w.replace(Some(worker)));
    if let Some(f) = &cfg.on_thread_start {
        f();
    }
}

pub(crate) fn thread_stop(cfg: &SliceConfig) {
    close();
    if let Some(f) = &cfg.on_thread_stop {
        f();
    }
    let _ = WORKER.try_with(|w| {
        if let Some(w) = w.borrow_mut().take() {
            w.slot.stopped();
        }
    });
}

pub(crate) fn thread_park(cfg: &SliceConfig) {
    close();
    let _ = WORKER.try_with(|w| {
        if let Ok(w) = w.try_borrow()
            && let Some(w) = w.as_ref()
        {
            w.slot.stats.publish();
        }
    });
    if let Some(f) = &cfg.on_thread_park {
        f();
    }
}

pub(crate) fn thread_unpark(cfg: &SliceConfig) {
    if let Some(f) = &cfg.on_thread_unpark {
        f();
    }
    if cfg.scheduler_sections && cfg!(tokio_unstable) {
        open(AFTER_UNPARK);
    }
}

/// Open a section of `kind` unless one is open.
pub(crate) fn open(kind: &'static str) {
    let _ = WORKER.try_with(|w| {
        if let Ok(mut w) = w.try_borrow_mut()
            && let Some(w) = w.as_mut()
            && w.section.is_none()
        {
            let before = stats();
            w.section = Some((SliceGuard::new(), kind, before));
        }
    });
}

/// Close the open section, if any; report a grant it got.
pub(crate) fn close() {
    let _ = WORKER.try_with(|w| {
        let Ok(mut w) = w.try_borrow_mut() else {
            return;
        };
        let Some(w) = w.as_mut() else { return };
        let Some((guard, kind, before)) = w.section.take() else {
            return;
        };
        drop(guard);
        let d = stats() - before;
        if d.granted > 0 {
            tracing::debug!(
                target: "rseq_slice",
                worker = w.slot.index,
                kind,
                yielded = d.yielded > 0,
                "slice extension granted"
            );
        }
    });
}
