//! What a glommio executor shares with the adapter: where its metrics go,
//! how its thread enables the extension, and the user's thread hooks.

use rseq_slice_core::runtime::ThreadConfig;

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
/// `new`, `metrics`, `with_metrics`, `enable_via`, `on_thread_start` and
/// `on_thread_stop` are every adapter's
/// ([`slice_config_methods!`](rseq_slice_core::runtime::slice_config_methods)).
/// glommio 0.9 has no park
/// or task-poll hooks, so there are no `on_thread_park` / `unpark`, no poll
/// hooks, and no `scheduler_sections` or `task_polls` policies (see the
/// crate docs for why task-queue boundaries cannot carry them).
#[derive(Clone, Debug, Default)]
pub struct SliceConfig {
    pub(crate) thread: ThreadConfig,
}

impl SliceConfig {
    /// The defaults: a fresh metrics registry, no hooks.
    pub fn new() -> SliceConfig {
        SliceConfig::default()
    }

    rseq_slice_core::runtime::slice_config_methods! {
        thread;
        on_thread_start:
        ///
        /// glommio: before your future generator (or, for
        /// [`make`](crate::SliceExecutorBuilder::make), inside `make`).
        ;
        on_thread_stop:
        ///
        /// glommio: when the executor's main future (or the
        /// [`SliceExecutor`](crate::SliceExecutor)) is dropped.
    }
}
