//! The one builder call.

use std::sync::Arc;

use tokio::runtime::Builder;

use crate::config::SliceConfig;
use crate::hooks::{self, Hooks};

/// Adds the slice extension to a tokio runtime [`Builder`].
///
/// Call it after your other builder settings, and give your own hooks to
/// [`SliceConfig`]: the adapter composes them with its own. tokio keeps one
/// hook of each kind and offers no way to ask whether one is set, so the
/// adapter cannot see hooks set on the builder directly:
/// - one set *before* this call is replaced by the adapter's, silently;
/// - one set *after* it replaces the adapter's. A replaced poll hook
///   (`tokio_unstable`) is found at the next poll: the adapter logs an
///   error once (with the `tracing` feature) and that thread stops opening
///   scheduler sections. A replaced park or unpark hook is harmless to the
///   other: each one starts the thread if needed. A replaced start hook
///   leaves each worker to join at its first park or unpark, without
///   scheduler sections; a replaced stop hook leaves the threads `alive` in
///   the metrics.
pub trait BuilderExt {
    /// [`with_slice_config`](BuilderExt::with_slice_config) with the defaults.
    fn with_slice_extension(&mut self) -> &mut Self;

    /// Install the adapter's hooks (thread hooks, and with `tokio_unstable`
    /// the task hooks its policies and `cfg`'s hooks need), replacing any
    /// set on the builder.
    fn with_slice_config(&mut self, cfg: SliceConfig) -> &mut Self;
}

impl BuilderExt for Builder {
    fn with_slice_extension(&mut self) -> &mut Self {
        self.with_slice_config(SliceConfig::new())
    }

    fn with_slice_config(&mut self, cfg: SliceConfig) -> &mut Self {
        let cfg = Arc::new(Hooks::new(cfg));
        let (c1, c2, c3, c4) = (cfg.clone(), cfg.clone(), cfg.clone(), cfg.clone());
        self.on_thread_start(move || hooks::thread_start(&c1))
            .on_thread_stop(move || hooks::thread_stop(&c2))
            .on_thread_park(move || hooks::thread_park(&c3))
            .on_thread_unpark(move || hooks::thread_unpark(&c4));
        // The task hooks run around every task poll: install them only for a
        // policy or user hooks that need them.
        #[cfg(tokio_unstable)]
        {
            let c = &cfg.cfg;
            let sections = c.scheduler_sections || c.task_polls;
            if sections || c.on_before_task_poll.is_some() || c.on_after_task_poll.is_some() {
                let (c1, c2) = (cfg.clone(), cfg.clone());
                self.on_before_task_poll(move |m| hooks::before_task_poll(&c1, m))
                    .on_after_task_poll(move |m| hooks::after_task_poll(&c2, m));
            }
            if sections || c.on_task_terminate.is_some() {
                let c = cfg.clone();
                self.on_task_terminate(move |m| hooks::task_terminate(&c, m));
            }
        }
        #[cfg(all(not(tokio_unstable), feature = "tracing"))]
        if cfg.cfg.scheduler_sections || cfg.cfg.task_polls {
            tracing::warn!(
                target: "rseq_slice",
                "scheduler_sections / task_polls need tokio's task hooks: this build has no \
                 --cfg tokio_unstable, so they guard nothing"
            );
        }
        self
    }
}
