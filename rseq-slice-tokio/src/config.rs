//! Policies, and the user's own thread hooks (which the adapter composes).

use std::fmt;
use std::sync::Arc;

use rseq_slice_core::runtime::{Hook, ThreadConfig};

/// A task hook (`tokio_unstable`): poll start and end, task termination.
#[cfg(tokio_unstable)]
pub(crate) type TaskHook = Arc<dyn Fn(&tokio::runtime::TaskMeta<'_>) + Send + Sync + 'static>;

/// How a runtime uses the slice extension.
///
/// Defaults: every worker and blocking thread registered and counted;
/// scheduler sections **off** and whole task polls **off** (both need
/// `--cfg tokio_unstable`, which has the task-poll hooks; a poll can outlast
/// a 5 µs grant by far). So the defaults guard nothing by themselves: the
/// sections come from slice-aware locks and
/// [`slice_critical`](crate::slice_critical) on the short parts.
///
/// tokio keeps one hook of each kind and cannot show it back, so hooks set on
/// the builder after the adapter replace its own, and hooks set before it
/// are replaced by the adapter's. Hand yours to the config instead (thread
/// hooks, and with `tokio_unstable` the task-poll and task-terminate hooks);
/// the adapter runs them outside any section:
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
///
/// `new`, `metrics`, `with_metrics`, `enable_via`, `on_thread_start` and
/// `on_thread_stop` are every adapter's
/// ([`slice_config_methods!`](rseq_slice_core::runtime::slice_config_methods)).
/// Only tokio has park
/// and poll hooks, so only this one has the park and poll hooks and the
/// section policies built on them.
#[derive(Clone)]
pub struct SliceConfig {
    pub(crate) scheduler_sections: bool,
    pub(crate) task_polls: bool,
    pub(crate) thread: ThreadConfig,
    pub(crate) on_thread_park: Option<Hook>,
    pub(crate) on_thread_unpark: Option<Hook>,
    #[cfg(tokio_unstable)]
    pub(crate) on_before_task_poll: Option<TaskHook>,
    #[cfg(tokio_unstable)]
    pub(crate) on_after_task_poll: Option<TaskHook>,
    #[cfg(tokio_unstable)]
    pub(crate) on_task_terminate: Option<TaskHook>,
}

impl Default for SliceConfig {
    fn default() -> Self {
        SliceConfig::new()
    }
}

impl fmt::Debug for SliceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SliceConfig");
        d.field("scheduler_sections", &self.scheduler_sections)
            .field("task_polls", &self.task_polls)
            .field("thread", &self.thread)
            .field("on_thread_park", &self.on_thread_park.is_some())
            .field("on_thread_unpark", &self.on_thread_unpark.is_some());
        #[cfg(tokio_unstable)]
        d.field("on_before_task_poll", &self.on_before_task_poll.is_some())
            .field("on_after_task_poll", &self.on_after_task_poll.is_some())
            .field("on_task_terminate", &self.on_task_terminate.is_some());
        d.finish_non_exhaustive()
    }
}

impl SliceConfig {
    /// The defaults.
    pub fn new() -> SliceConfig {
        SliceConfig {
            // Off: no measurement on a faithful platform shows them to help
            // (docs/study.md).
            scheduler_sections: false,
            task_polls: false,
            thread: ThreadConfig::default(),
            on_thread_park: None,
            on_thread_unpark: None,
            #[cfg(tokio_unstable)]
            on_before_task_poll: None,
            #[cfg(tokio_unstable)]
            on_after_task_poll: None,
            #[cfg(tokio_unstable)]
            on_task_terminate: None,
        }
    }

    /// Guard the scheduler's own work between task polls and after unpark
    /// (steals, inject-queue pops, timer wheel): one section from
    /// `on_after_task_poll` / `on_thread_unpark` to the next
    /// `on_before_task_poll` / `on_thread_park`. Needs `--cfg tokio_unstable`:
    /// without it this guards nothing, and building the runtime says so
    /// (a `tracing` WARN).
    ///
    /// Off by default: measured beside nice-0 batch work on 2 and 4 vCPUs
    /// (layouts that pass the workspace's fidelity checks), they changed
    /// no p99.9 (1.04–1.15× off, none significant) and cost 1–2 % of p50
    /// (its `docs/study.md`; the study's `sched` variant). Measure before
    /// turning them on.
    pub fn scheduler_sections(mut self, on: bool) -> Self {
        self.scheduler_sections = on;
        self
    }

    /// Whether [`scheduler_sections`](SliceConfig::scheduler_sections) is on.
    pub fn scheduler_sections_enabled(&self) -> bool {
        self.scheduler_sections
    }

    /// Guard every whole task poll. Needs `--cfg tokio_unstable`: without
    /// it this guards nothing, and building the runtime says so (a
    /// `tracing` WARN).
    ///
    /// Off by default: a poll can outlast a grant, and measured on 4 vCPUs
    /// beside nice-0 batch work whole polls made p99.9 worse (1.12× off,
    /// significant), with most of their grants revoked or expired (the
    /// workspace's `docs/study.md`, the `polls` variant).
    pub fn task_polls(mut self, on: bool) -> Self {
        self.task_polls = on;
        self
    }

    rseq_slice_core::runtime::slice_config_methods! {
        thread;
        on_thread_start:;
        on_thread_stop:
        ///
        /// tokio: after the adapter closes the thread's section.
    }

    /// Register and enable the calling thread as configured (idempotent).
    pub(crate) fn enable_thread(&self) {
        let _ = rseq_slice_core::diagnostics::init_with(self.thread.enable_via);
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

    /// Your `on_before_task_poll` hook (`tokio_unstable`), run after the
    /// adapter closes the scheduler section and before it opens a task-poll
    /// section (with [`task_polls`](SliceConfig::task_polls)).
    #[cfg(tokio_unstable)]
    #[cfg_attr(docsrs, doc(cfg(tokio_unstable)))]
    pub fn on_before_task_poll(
        mut self,
        f: impl Fn(&tokio::runtime::TaskMeta<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_before_task_poll = Some(Arc::new(f));
        self
    }

    /// Your `on_after_task_poll` hook (`tokio_unstable`), run after the
    /// adapter closes a task-poll section and before it opens the scheduler
    /// section.
    #[cfg(tokio_unstable)]
    #[cfg_attr(docsrs, doc(cfg(tokio_unstable)))]
    pub fn on_after_task_poll(
        mut self,
        f: impl Fn(&tokio::runtime::TaskMeta<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_after_task_poll = Some(Arc::new(f));
        self
    }

    /// Your `on_task_terminate` hook (`tokio_unstable`), run after the
    /// adapter closes the thread's open section (see the tokio guide: this
    /// is the hook that runs when a worker thread turns into a blocking-pool
    /// thread).
    #[cfg(tokio_unstable)]
    #[cfg_attr(docsrs, doc(cfg(tokio_unstable)))]
    pub fn on_task_terminate(
        mut self,
        f: impl Fn(&tokio::runtime::TaskMeta<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_task_terminate = Some(Arc::new(f));
        self
    }
}
