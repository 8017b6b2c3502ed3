//! The runtime-wide view of a [`SliceMetrics`], as tokio-metrics gives it:
//! one type, [`RuntimeMetrics`], for everything since the start
//! ([`SliceMetrics::cumulative`]) and for each interval between two samples
//! ([`SliceMetrics::intervals`]).

use super::metrics::SliceMetrics;
use crate::SliceStats;

/// Everything a registry has seen, read at one point.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Totals {
    pub(super) stats: SliceStats,
    pub(super) started: u64,
    pub(super) stopped: u64,
}

/// What a runtime's threads did over a span: since the metrics were created
/// ([`SliceMetrics::cumulative`]) or over one interval
/// ([`SliceMetrics::intervals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeMetrics {
    /// The counters the threads published during the span, summed
    /// (threads publish when they go idle and when they stop).
    pub stats: SliceStats,
    /// Threads that joined during the span.
    pub threads_started: u64,
    /// Threads that stopped during the span.
    pub threads_stopped: u64,
    /// Threads running at the end of the span.
    pub threads_alive: u64,
}

impl RuntimeMetrics {
    /// The span from `before` to `now`.
    pub(super) fn between(before: Totals, now: Totals) -> RuntimeMetrics {
        RuntimeMetrics {
            stats: now.stats - before.stats,
            threads_started: now.started.saturating_sub(before.started),
            threads_stopped: now.stopped.saturating_sub(before.stopped),
            threads_alive: now.started.saturating_sub(now.stopped),
        }
    }
}

/// An endless iterator over the intervals of a [`SliceMetrics`]: see
/// [`SliceMetrics::intervals`]. Each [`next`](Iterator::next) returns
/// `Some`.
#[derive(Debug, Clone)]
pub struct Intervals {
    metrics: SliceMetrics,
    last: Totals,
}

impl Intervals {
    pub(super) fn new(metrics: SliceMetrics) -> Intervals {
        Intervals {
            metrics,
            last: Totals::default(),
        }
    }
}

impl Iterator for Intervals {
    type Item = RuntimeMetrics;

    fn next(&mut self) -> Option<RuntimeMetrics> {
        let now = self.metrics.inner.totals();
        let last = std::mem::replace(&mut self.last, now);
        Some(RuntimeMetrics::between(last, now))
    }
}
