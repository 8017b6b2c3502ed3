//! Policies, and the user's own thread hooks (which the adapter composes).

use std::fmt;
use std::sync::Arc;

use rseq_slice_core::runtime::SliceMetrics;

pub(crate) type Hook = Arc<dyn Fn() + Send + Sync + 'static>;

/// How a runtime uses the slice extension.
///
/// Defaults: scheduler sections **on** (they take effect only in builds with
/// `--cfg tokio_unstable`, which has the task-poll hooks); whole task polls
/// **off** (a poll can outlast a 5 µs grant by far: use
/// [`slice_critical`](crate::slice_critical) on the short parts instead).
///
/// tokio keeps one hook of each kind and cannot show it back, so hooks set on
/// the builder after the adapter would replace its own. Hand yours to the
/// config instead; the adapter runs them outside any section:
///
/// ```
/// use rseq_slice_tokio::{BuilderExt, SliceConfig};
/// let cfg = SliceConfig::new().on_thread_start(|| println!("thread up"));
/// let metrics = cfg.metrics();
/// let rt = tokio::runtime::Builder::new_multi_thread()
///     .with_slice_config(cfg)
///     .build()
///     .unwrap();
/// rt.block_on(async {});
/// drop(rt);
/// assert!(metrics.threads().len() >= 1);
/// ```
#[derive(Clone)]
pub struct SliceConfig {
    pub(crate) scheduler_sections: bool,
    pub(crate) task_polls: bool,
    pub(crate) metrics: SliceMetrics,
    pub(crate) on_thread_start: Option<Hook>,
    pub(crate) on_thread_stop: Option<Hook>,
    pub(crate) on_thread_park: Option<Hook>,
    pub(crate) on_thread_unpark: Option<Hook>,
}

impl Default for SliceConfig {
    fn default() -> Self {
        SliceConfig::new()
    }
}

impl fmt::Debug for SliceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SliceConfig")
            .field("scheduler_sections", &self.scheduler_sections)
            .field("task_polls", &self.task_polls)
            .field("on_thread_start", &self.on_thread_start.is_some())
            .field("on_thread_stop", &self.on_thread_stop.is_some())
            .field("on_thread_park", &self.on_thread_park.is_some())
            .field("on_thread_unpark", &self.on_thread_unpark.is_some())
            .finish_non_exhaustive()
    }
}

impl SliceConfig {
    /// The defaults.
    pub fn new() -> SliceConfig {
        SliceConfig {
            scheduler_sections: true,
            task_polls: false,
            metrics: SliceMetrics::default(),
            on_thread_start: None,
            on_thread_stop: None,
            on_thread_park: None,
            on_thread_unpark: None,
        }
    }

    /// Guard the scheduler's own work between task polls and after unpark
    /// (steals, inject-queue pops, timer wheel): one section from
    /// `on_after_task_poll` / `on_thread_unpark` to the next
    /// `on_before_task_poll` / `on_thread_park`. Needs `--cfg tokio_unstable`.
    pub fn scheduler_sections(mut self, on: bool) -> Self {
        self.scheduler_sections = on;
        self
    }

    /// Whether [`scheduler_sections`](SliceConfig::scheduler_sections) is on.
    pub fn scheduler_sections_enabled(&self) -> bool {
        self.scheduler_sections
    }

    /// Guard every whole task poll. Off by default. Needs `--cfg tokio_unstable`.
    pub fn task_polls(mut self, on: bool) -> Self {
        self.task_polls = on;
        self
    }

    /// The runtime's per-thread metrics (a handle; clone it freely).
    pub fn metrics(&self) -> SliceMetrics {
        self.metrics.clone()
    }

    /// Your `on_thread_start` hook, run after the adapter registers the thread.
    pub fn on_thread_start(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_thread_start = Some(Arc::new(f));
        self
    }

    /// Your `on_thread_stop` hook, run after the adapter closes its section
    /// and before it publishes the thread's final counters.
    pub fn on_thread_stop(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_thread_stop = Some(Arc::new(f));
        self
    }

    /// Your `on_thread_park` hook, run after the adapter closes its section.
    pub fn on_thread_park(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_thread_park = Some(Arc::new(f));
        self
    }

    /// Your `on_thread_unpark` hook, run before the adapter opens its section.
    pub fn on_thread_unpark(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_thread_unpark = Some(Arc::new(f));
        self
    }
}
