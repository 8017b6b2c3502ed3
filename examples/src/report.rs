//! What one load run reports, and how it is summarized from a histogram.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Percentiles kept for the latency-by-percentile plot.
pub const CURVE: &[f64] = &[
    0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0,
];

/// One load generator run (latencies in microseconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    /// Target rate, requests per second.
    pub rate: f64,
    /// Seconds of load, warm-up included.
    pub duration: f64,
    /// Requests scheduled.
    pub scheduled: u64,
    /// Requests answered after the warm-up.
    pub ok_measured: u64,
    /// Failed exchanges (the connection is reopened).
    pub errors: u64,
    /// Requests unanswered at the deadline (recorded at their age then).
    pub missing: u64,
    /// Answers per second after the warm-up.
    pub throughput: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
    /// `(percentile, latency)` at each of [`CURVE`].
    pub curve: Vec<(f64, u64)>,
    /// The service's own `/metrics` at the end (slice counters).
    pub service: serde_json::Value,
}

/// Summarize a histogram of microsecond latencies.
#[allow(clippy::too_many_arguments)]
pub fn summarize(
    h: &Histogram<u64>,
    rate: f64,
    duration: f64,
    scheduled: u64,
    ok_measured: u64,
    errors: u64,
    missing: u64,
    measured_secs: f64,
    service: serde_json::Value,
) -> LoadReport {
    let q = |p: f64| h.value_at_quantile(p / 100.0);
    LoadReport {
        rate,
        duration,
        scheduled,
        ok_measured,
        errors,
        missing,
        throughput: ok_measured as f64 / measured_secs.max(1e-9),
        p50: q(50.0),
        p90: q(90.0),
        p99: q(99.0),
        p999: q(99.9),
        max: h.max(),
        mean: h.mean(),
        curve: CURVE.iter().map(|&p| (p, q(p))).collect(),
        service,
    }
}
