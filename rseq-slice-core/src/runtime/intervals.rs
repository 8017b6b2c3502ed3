//! The interval view of a [`SliceMetrics`]: what changed between two samples.

use super::metrics::SliceMetrics;
use crate::SliceStats;

/// Everything a registry has seen, read at one point.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Totals {
    pub(super) stats: SliceStats,
    pub(super) started: u64,
    pub(super) stopped: u64,
}

/// What one interval of a [`SliceMetrics`] saw: made by [`Intervals`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Interval {
    /// The counters the threads published during the interval, summed
    /// (threads publish when they go idle and when they stop).
    pub stats: SliceStats,
    /// Threads that joined during the interval.
    pub threads_started: u64,
    /// Threads that stopped during the interval.
    pub threads_stopped: u64,
    /// Threads running at the end of the interval.
    pub threads_alive: u64,
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
    type Item = Interval;

    fn next(&mut self) -> Option<Interval> {
        let now = self.metrics.inner.totals();
        let last = std::mem::replace(&mut self.last, now);
        Some(Interval {
            stats: now.stats - last.stats,
            threads_started: now.started.saturating_sub(last.started),
            threads_stopped: now.stopped.saturating_sub(last.stopped),
            threads_alive: now.started.saturating_sub(now.stopped),
        })
    }
}
