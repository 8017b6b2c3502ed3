//! What a glommio executor shares with the adapter.

use rseq_slice_core::runtime::SliceMetrics;

/// How executors use the slice extension; today, where their metrics go.
///
/// ```
/// use glommio::LocalExecutorBuilder;
/// use rseq_slice_glommio::{BuilderExt, SliceConfig};
/// let cfg = SliceConfig::new();
/// let metrics = cfg.metrics();
/// LocalExecutorBuilder::default()
///     .with_slice_config(cfg)
///     .spawn(|| async {})
///     .unwrap()
///     .join()
///     .unwrap();
/// assert_eq!(metrics.threads().len(), 1);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SliceConfig {
    metrics: SliceMetrics,
}

impl SliceConfig {
    /// The defaults: a fresh metrics registry.
    pub fn new() -> SliceConfig {
        SliceConfig::default()
    }

    /// Record into `metrics` (e.g. one registry shared by several pools).
    pub fn with_metrics(mut self, metrics: SliceMetrics) -> SliceConfig {
        self.metrics = metrics;
        self
    }

    /// The executors' per-thread metrics (a handle; clone it freely).
    pub fn metrics(&self) -> SliceMetrics {
        self.metrics.clone()
    }
}
