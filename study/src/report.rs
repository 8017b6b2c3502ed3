//! What one load run reports, and how it is summarized from a histogram.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

/// Percentiles kept for the latency-by-percentile plot.
pub const CURVE: &[f64] = &[
    0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0,
];

/// One load generator run (latencies in microseconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    /// `open` (constant rate) or `closed` (back-to-back, for capacity).
    #[serde(default)]
    pub mode: String,
    /// Target rate, requests per second.
    pub rate: f64,
    /// Seconds of load, warm-up included.
    pub duration: f64,
    /// Requests scheduled.
    pub scheduled: u64,
    /// Requests answered after the warm-up.
    pub ok_measured: u64,
    /// Failed exchanges (the connection is reopened) and 5xx answers.
    pub errors: u64,
    /// Answers by HTTP status code.
    #[serde(default)]
    pub statuses: std::collections::BTreeMap<u16, u64>,
    /// loadgen's own CPU time over the run, in CPUs (1.0: one CPU busy
    /// throughout; none where unknown): near 1 on a client CPU of its own,
    /// the client, not the service, sets the latency.
    #[serde(default)]
    pub client_cpu: Option<f64>,
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
    /// Median latency of the requests scheduled in the first and in the
    /// second half of the measured window (open loop; `[0, 0]` unknown): a
    /// backlog that grows shows as a second half far slower than the first.
    #[serde(default)]
    pub halves_p50: [u64; 2],
    /// The recorded latencies: a V2 serialized HDR histogram, base64
    /// ([`decode_hist`]), for the bootstrap.
    #[serde(default)]
    pub hist: String,
}

/// This process's CPU time so far (user and system, all threads), to the
/// microsecond (`getrusage(RUSAGE_SELF)`); None where it cannot be read.
pub fn cpu_time() -> Option<std::time::Duration> {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `u` is a writable `rusage`; getrusage fills it or fails.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: zeroed is a valid `rusage` (plain integers), filled by the call.
    let u = unsafe { u.assume_init() };
    let tv = |t: libc::timeval| {
        let us = u64::try_from(t.tv_usec).ok()?;
        Some(
            std::time::Duration::from_secs(u64::try_from(t.tv_sec).ok()?)
                + std::time::Duration::from_micros(us),
        )
    };
    Some(tv(u.ru_utime)? + tv(u.ru_stime)?)
}

/// A histogram as base64 of its V2 serialization.
pub fn encode_hist(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    match V2Serializer::new().serialize(h, &mut buf) {
        Ok(_) => STANDARD.encode(buf),
        Err(_) => String::new(),
    }
}

/// The histogram [`encode_hist`] wrote.
pub fn decode_hist(s: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = STANDARD.decode(s.trim())?;
    Ok(Deserializer::new().deserialize(&mut bytes.as_slice())?)
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
        mode: "open".into(),
        rate,
        duration,
        scheduled,
        ok_measured,
        errors,
        statuses: Default::default(),
        client_cpu: None,
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
        halves_p50: [0, 0],
        hist: encode_hist(h),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// This thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`).
    fn thread_cpu() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    /// CPU time in microseconds: spinning until it moves, it moves by far
    /// less than a 10 ms clock tick; and while this thread spins 20 ms of
    /// its own CPU time, the process's grows at least that much.
    #[test]
    fn cpu_time_is_fine_grained() {
        let start = std::time::Instant::now();
        let t0 = cpu_time().expect("this process's CPU time");
        let mut t1 = t0;
        while t1 == t0 && start.elapsed() < Duration::from_secs(1) {
            t1 = cpu_time().expect("this process's CPU time");
        }
        let step = t1.saturating_sub(t0);
        assert!(
            !step.is_zero() && step < Duration::from_millis(2),
            "the first step of CPU time was {step:?}"
        );
        let mine = thread_cpu();
        while thread_cpu() - mine < Duration::from_millis(20) {
            std::hint::spin_loop();
        }
        let used = cpu_time().expect("this process's CPU time") - t1;
        assert!(used >= Duration::from_micros(19_990), "{used:?}");
    }

    #[test]
    fn histogram_round_trip() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in [1, 5, 5, 900, 12_345, 59_000_000] {
            h.record(v).unwrap();
        }
        let back = decode_hist(&encode_hist(&h)).unwrap();
        assert_eq!(
            (back.len(), back.max(), back.min()),
            (h.len(), h.max(), h.min())
        );
        assert!(decode_hist("not base64!").is_err());
    }
}
