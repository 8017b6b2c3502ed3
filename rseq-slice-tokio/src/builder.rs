//! The one builder call.

use std::fmt;
use std::sync::Arc;

use tokio::runtime::Builder;

use crate::config::SliceConfig;
use crate::hooks;

/// Adds the slice extension to a tokio runtime [`Builder`].
///
/// Call it after your other builder settings. tokio keeps one hook of each
/// kind: a thread, task-poll or task-terminate hook set on the builder
/// *after* this call replaces the adapter's, and one set *before* it is
/// replaced by the adapter's. Give yours to [`SliceConfig`] instead: the
/// adapter runs them for you. (A replaced poll hook is detected at the next
/// poll: the adapter logs an error and stops opening scheduler sections.)
pub trait BuilderExt {
    /// [`with_slice_config`](BuilderExt::with_slice_config) with the defaults.
    fn with_slice_extension(&mut self) -> &mut Self;

    /// Install the adapter's hooks. If the builder already has thread hooks
    /// they are replaced, and a `tracing` error names them; use
    /// [`try_with_slice_config`](BuilderExt::try_with_slice_config) to get
    /// that as an error instead.
    fn with_slice_config(&mut self, cfg: SliceConfig) -> &mut Self;

    /// Install the adapter's hooks, or refuse (changing nothing) when the
    /// builder already has thread hooks that they would replace.
    fn try_with_slice_config(&mut self, cfg: SliceConfig) -> Result<&mut Self, HookConflict>;
}

/// Thread hooks already set on the builder, which the adapter would replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookConflict {
    /// The builder methods whose hooks are set (`on_thread_start`, ...).
    pub hooks: Vec<&'static str>,
}

impl fmt::Display for HookConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the runtime builder already has {} set, which rseq-slice-tokio would replace: \
             pass those hooks to SliceConfig (e.g. SliceConfig::new().on_thread_start(..)) instead",
            self.hooks.join(", ")
        )
    }
}

impl std::error::Error for HookConflict {}

/// The thread hooks a builder has, read from its `Debug` output (tokio offers
/// no other way to see them; task-poll hooks are not shown there).
fn hooks_set(b: &Builder) -> Vec<&'static str> {
    let dbg = format!("{b:?}");
    [
        ("after_start: Some", "on_thread_start"),
        ("before_stop: Some", "on_thread_stop"),
        ("before_park: Some", "on_thread_park"),
        ("after_unpark: Some", "on_thread_unpark"),
    ]
    .into_iter()
    .filter(|(field, _)| dbg.contains(field))
    .map(|(_, name)| name)
    .collect()
}

impl BuilderExt for Builder {
    fn with_slice_extension(&mut self) -> &mut Self {
        self.with_slice_config(SliceConfig::new())
    }

    fn with_slice_config(&mut self, cfg: SliceConfig) -> &mut Self {
        let set = hooks_set(self);
        if !set.is_empty() {
            tracing::error!(target: "rseq_slice", "{}", HookConflict { hooks: set });
        }
        install(self, cfg)
    }

    fn try_with_slice_config(&mut self, cfg: SliceConfig) -> Result<&mut Self, HookConflict> {
        let set = hooks_set(self);
        if set.is_empty() {
            Ok(install(self, cfg))
        } else {
            Err(HookConflict { hooks: set })
        }
    }
}

fn install(b: &mut Builder, cfg: SliceConfig) -> &mut Builder {
    let cfg = Arc::new(cfg);
    let (c1, c2, c3, c4) = (cfg.clone(), cfg.clone(), cfg.clone(), cfg.clone());
    b.on_thread_start(move || hooks::thread_start(&c1))
        .on_thread_stop(move || hooks::thread_stop(&c2))
        .on_thread_park(move || hooks::thread_park(&c3))
        .on_thread_unpark(move || hooks::thread_unpark(&c4));
    // The task hooks run around every task poll: install them only for a
    // policy or user hooks that need them.
    #[cfg(tokio_unstable)]
    {
        let sections = cfg.scheduler_sections || cfg.task_polls;
        if sections || cfg.on_before_task_poll.is_some() || cfg.on_after_task_poll.is_some() {
            let (c1, c2) = (cfg.clone(), cfg.clone());
            b.on_before_task_poll(move |m| hooks::before_task_poll(&c1, m))
                .on_after_task_poll(move |m| hooks::after_task_poll(&c2, m));
        }
        if sections || cfg.on_task_terminate.is_some() {
            let c = cfg.clone();
            b.on_task_terminate(move |m| hooks::task_terminate(&c, m));
        }
    }
    b
}
