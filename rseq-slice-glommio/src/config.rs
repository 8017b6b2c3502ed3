//! What a glommio executor shares with the adapter: where its metrics go,
//! how its thread enables the extension, and the user's thread hooks.

use std::fmt;
use std::sync::Arc;

use rseq_slice_core::diagnostics::EnableVia;
use rseq_slice_core::runtime::SliceMetrics;

pub(crate) type Hook = Arc<dyn Fn() + Send + Sync + 'static>;

/// How executors use the slice extension.
///
/// ```
/// use glommio::LocalExecutorBuilder;
/// use rseq_slice_glommio::{BuilderExt, SliceConfig};
/// let cfg = SliceConfig::new().on_thread_start(|| println!("executor up"));
/// let metrics = cfg.metrics();
/// LocalExecutorBuilder::default()
///     .with_slice_config(cfg)
///     .spawn(|| async {})
///     .unwrap()
///     .join()
///     .unwrap();
/// assert_eq!(metrics.threads().len(), 1);
/// ```
///
/// Shared with `rseq-slice-tokio`'s `SliceConfig`, under the same names:
/// [`new`](SliceConfig::new), [`metrics`](SliceConfig::metrics),
/// [`with_metrics`](SliceConfig::with_metrics),
/// [`enable_via`](SliceConfig::enable_via),
/// [`on_thread_start`](SliceConfig::on_thread_start) and
/// [`on_thread_stop`](SliceConfig::on_thread_stop). glommio 0.9 has no park
/// or task-poll hooks, so there are no `on_thread_park` / `unpark`, no poll
/// hooks, and no `scheduler_sections` or `task_polls` policies (see the
/// crate docs for why task-queue boundaries cannot carry them).
#[derive(Clone, Default)]
pub struct SliceConfig {
    pub(crate) metrics: SliceMetrics,
    pub(crate) enable_via: EnableVia,
    pub(crate) on_thread_start: Option<Hook>,
    pub(crate) on_thread_stop: Option<Hook>,
}

impl fmt::Debug for SliceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SliceConfig")
            .field("enable_via", &self.enable_via)
            .field("on_thread_start", &self.on_thread_start.is_some())
            .field("on_thread_stop", &self.on_thread_stop.is_some())
            .finish_non_exhaustive()
    }
}

impl SliceConfig {
    /// The defaults: a fresh metrics registry, no hooks.
    pub fn new() -> SliceConfig {
        SliceConfig::default()
    }

    /// The executors' per-thread metrics (a handle; clone it freely).
    pub fn metrics(&self) -> SliceMetrics {
        self.metrics.clone()
    }

    /// Record into `metrics` (e.g. one registry shared by several pools).
    pub fn with_metrics(mut self, metrics: SliceMetrics) -> SliceConfig {
        self.metrics = metrics;
        self
    }

    /// How each executor thread turns the extension on where this crate
    /// registers its rseq area ([`rseq_slice_core::diagnostics::init_with`]); the default
    /// is one system call at registration.
    pub fn enable_via(mut self, via: EnableVia) -> SliceConfig {
        self.enable_via = via;
        self
    }

    /// Your hook, run on each executor thread after the adapter registers
    /// it, before your future generator (or, for
    /// [`make`](crate::SliceExecutorBuilder::make), inside `make`).
    pub fn on_thread_start(mut self, f: impl Fn() + Send + Sync + 'static) -> SliceConfig {
        self.on_thread_start = Some(Arc::new(f));
        self
    }

    /// Your hook, run on each executor thread when the executor's main
    /// future (or the [`SliceExecutor`](crate::SliceExecutor)) is dropped,
    /// before the adapter publishes the thread's final counters (which it
    /// does even if your hook panics).
    pub fn on_thread_stop(mut self, f: impl Fn() + Send + Sync + 'static) -> SliceConfig {
        self.on_thread_stop = Some(Arc::new(f));
        self
    }
}
