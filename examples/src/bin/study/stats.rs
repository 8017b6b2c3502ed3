//! From runs to cells: the latencies of a cell's repeats pooled, their
//! p50/p99/p99.9 with bootstrap 95 % intervals, each variant's ratio to
//! `off` (same configuration and level) with its interval, and the medians
//! over the repeats of what explains them (grants, lock waits, preempted
//! holds). Intervals come from `rseq_slice_lab` ([`Method`]: two-stage
//! over runs then requests by default, or over the pooled requests).

use std::collections::HashMap;

use hdrhistogram::Histogram;
use rseq_slice_examples::report::{CURVE, decode_hist};
use rseq_slice_lab::bootstrap::{percentile_ci, ratio_ci};
use rseq_slice_lab::{Ci, Clustered, median};
use serde::Serialize;

use crate::plan::Config;
use crate::store::Record;

/// The quantiles with intervals.
pub(crate) const QS: [f64; 3] = [0.5, 0.99, 0.999];

/// Runs each side of a ratio needs before its difference is called
/// significant. With fewer, resampling runs cannot see how much runs differ
/// (one run resamples only to itself), so the interval is too narrow: a
/// guest run can settle in a regime that changes p99.9 twentyfold.
pub(crate) const MIN_RUNS: usize = 3;

/// One cell (configuration, level, variant) over its repeats. Latencies in
/// µs; lock waits in ns; NaN where nothing was recorded.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    pub(crate) config: Config,
    pub(crate) level: f64,
    pub(crate) absolute: bool,
    pub(crate) variant: String,
    pub(crate) runs: usize,
    pub(crate) rate: f64,
    pub(crate) capacity: Option<f64>,
    pub(crate) samples: u64,
    pub(crate) throughput: f64,
    /// p50, p99, p99.9 of the pooled latencies.
    pub(crate) q: [Ci; 3],
    /// Each one's ratio to `off`'s (none for `off`, or without `off`).
    pub(crate) ratio: Option<[Ci; 3]>,
    /// Runs of the `off` cell the ratios compare with.
    pub(crate) off_runs: usize,
    pub(crate) p90: f64,
    pub(crate) max: f64,
    /// Pooled `(percentile, latency)` at each of `report::CURVE`.
    pub(crate) curve: Vec<(f64, f64)>,
    /// Service-side grants (SliceMetrics) per 1 000 requests sent.
    pub(crate) grants_per_1k: f64,
    /// Kernel `rseq/stats` deltas per 1 000 requests: sgrant, sexpir,
    /// srevok, syield (none where debugfs was not readable).
    pub(crate) kernel_per_1k: Option<[f64; 4]>,
    /// Hot-lock wait p50, p99, p99.9 (ns).
    pub(crate) lock_wait_ns: [f64; 3],
    /// Holds over the preempted threshold, per run.
    pub(crate) preempted_holds: f64,
    pub(crate) errors: u64,
    pub(crate) missing: u64,
    /// Runs that did not keep up with their offered rate (throughput under
    /// 97 % of it, or answers missing at the end): the load generator or
    /// the service was saturated, and latencies include queueing.
    pub(crate) overloaded: usize,
}

impl Summary {
    /// Whether quantile `j`'s ratio to `off` is a significant difference:
    /// its interval excludes 1 and both sides have [`MIN_RUNS`] runs. None
    /// without a ratio.
    pub(crate) fn significant(&self, j: usize) -> Option<bool> {
        let r = self.ratio?[j];
        Some(self.enough_runs() && r.excludes(1.0))
    }

    /// Whether both sides of the ratios have [`MIN_RUNS`] runs.
    pub(crate) fn enough_runs(&self) -> bool {
        self.runs >= MIN_RUNS && self.off_runs >= MIN_RUNS
    }
}

/// Whether a run fell behind its offered rate (see [`Summary::overloaded`]).
pub(crate) fn overloaded(r: &Record) -> bool {
    r.report
        .as_ref()
        .is_some_and(|p| p.throughput < 0.97 * r.rate || p.missing > 0)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Each run's latencies as `(value, count)` pairs (its HDR buckets).
fn run_counts(runs: &[&Record]) -> Vec<Vec<(f64, u64)>> {
    runs.iter()
        .filter_map(|r| r.report.as_ref().and_then(|p| decode_hist(&p.hist).ok()))
        .map(|h: Histogram<u64>| {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to() as f64, v.count_since_last_iteration()))
                .collect()
        })
        .collect()
}

/// How replicates are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Method {
    /// Two-stage: runs with replacement, then requests from them.
    Runs,
    /// The pooled requests only, as if independent.
    Requests,
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Summaries of every cell of `runs` (successful `run` records), in the
/// order the cells first appear.
pub(crate) fn summarize(
    runs: &[&Record],
    method: Method,
    resamples: usize,
    seed: u64,
) -> Vec<Summary> {
    let mut keys: Vec<(Config, u64, bool, String)> = Vec::new();
    let mut by: HashMap<(Config, u64, bool, String), Vec<&Record>> = HashMap::new();
    for r in runs {
        let Some(c) = &r.cell else { continue };
        let k = (
            c.config.clone(),
            c.level.to_bits(),
            c.absolute,
            c.variant.clone(),
        );
        if !by.contains_key(&k) {
            keys.push(k.clone());
        }
        by.entry(k).or_default().push(r);
    }
    let mut out = Vec::new();
    let mut reps: HashMap<(Config, u64, bool, String), Vec<Vec<f64>>> = HashMap::new();
    for k in &keys {
        let rs = &by[k];
        let clustered = Clustered::new(&run_counts(rs));
        let w = clustered.pooled();
        let label = format!("{} {} {} {}", k.0.key(), k.1, k.2, k.3);
        let rep = match method {
            Method::Runs => clustered.bootstrap(&QS, resamples, seed ^ fnv(&label)),
            Method::Requests => w.bootstrap(&QS, resamples, seed ^ fnv(&label)),
        };
        let q = [0, 1, 2].map(|j| percentile_ci(w.quantile(QS[j]), &rep[j]));
        reps.insert(k.clone(), rep);
        let med = |f: &dyn Fn(&Record) -> f64| {
            median(rs.iter().map(|r| f(r)).filter(|x| x.is_finite()).collect())
        };
        let svc = |r: &Record, f: &dyn Fn(&serde_json::Value) -> f64| {
            r.report.as_ref().map_or(f64::NAN, |p| f(&p.service))
        };
        let per_1k = |r: &Record, x: f64| {
            let sent = r.report.as_ref().map_or(0, |p| p.scheduled);
            if sent == 0 {
                f64::NAN
            } else {
                x * 1000.0 / sent as f64
            }
        };
        let kernel_per_1k = rs.iter().all(|r| r.kernel.is_some()).then(|| {
            let k = |f: fn(&crate::store::Kernel) -> u64| {
                med(&|r| {
                    r.kernel
                        .as_ref()
                        .map_or(f64::NAN, |k| per_1k(r, f(k) as f64))
                })
            };
            [
                k(|k| k.sgrant),
                k(|k| k.sexpir),
                k(|k| k.srevok),
                k(|k| k.syield),
            ]
        });
        let rep_field = |f: &dyn Fn(&rseq_slice_examples::report::LoadReport) -> u64| {
            rs.iter()
                .filter_map(|r| r.report.as_ref())
                .map(f)
                .sum::<u64>()
        };
        out.push(Summary {
            config: k.0.clone(),
            level: f64::from_bits(k.1),
            absolute: k.2,
            variant: k.3.clone(),
            runs: rs.len(),
            rate: med(&|r| r.rate),
            capacity: rs.iter().find_map(|r| r.capacity),
            samples: w.len(),
            throughput: med(&|r| r.report.as_ref().map_or(f64::NAN, |p| p.throughput)),
            q,
            ratio: None,
            off_runs: 0,
            p90: w.quantile(0.9),
            max: w.quantile(1.0),
            curve: CURVE.iter().map(|&p| (p, w.quantile(p / 100.0))).collect(),
            grants_per_1k: med(&|r| per_1k(r, svc(r, &|s| num(&s["slice_granted"])))),
            kernel_per_1k,
            lock_wait_ns: ["p50", "p99", "p999"]
                .map(|p| med(&|r| svc(r, &|s| num(&s["lock_wait_ns"][p])))),
            preempted_holds: med(&|r| svc(r, &|s| num(&s["preempted_holds"]))),
            errors: rep_field(&|p| p.errors),
            missing: rep_field(&|p| p.missing),
            overloaded: rs.iter().filter(|r| overloaded(r)).count(),
        });
    }
    let ests: HashMap<_, [f64; 3]> = keys
        .iter()
        .zip(&out)
        .map(|(k, s)| (k.clone(), s.q.map(|c| c.est)))
        .collect();
    for (k, s) in keys.iter().zip(&mut out) {
        let base = (k.0.clone(), k.1, k.2, "off".to_string());
        if k.3 == "off" {
            continue;
        }
        let (Some(b), Some(be), Some(m)) = (reps.get(&base), ests.get(&base), reps.get(k)) else {
            continue;
        };
        s.ratio = Some([0, 1, 2].map(|j| ratio_ci(s.q[j].est, &m[j], be[j], &b[j])));
        s.off_runs = by[&base].len();
    }
    out
}

#[cfg(test)]
mod tests {
    use rseq_slice_examples::report::summarize as report;

    use super::*;
    use crate::plan::Cell;
    use crate::store::tests::record;

    fn run(variant: &str, repeat: u32, scale: u64) -> Record {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for i in 0..5_000u64 {
            h.record(scale * (100 + i % 1000)).unwrap();
        }
        let mut r = record(&format!("{variant}{repeat}"), true);
        r.cell = Some(Cell {
            config: r.config.clone(),
            level: 0.5,
            absolute: false,
            variant: variant.into(),
            repeat,
        });
        let svc = serde_json::json!({"slice_granted": 50, "lock_wait_ns": {"p99": 7}});
        r.report = Some(report(&h, 100.0, 60.0, 5_000, 5_000, 0, 0, 50.0, svc));
        r
    }

    #[test]
    fn ratios_to_off_and_their_significance() {
        let rs: Vec<Record> = (0..3)
            .flat_map(|k| [run("off", k, 1), run("sched", k, 1), run("locks", k, 2)])
            .collect();
        let refs: Vec<&Record> = rs.iter().collect();
        let cells = summarize(&refs, Method::Requests, 300, 1);
        let two = summarize(&refs, Method::Runs, 300, 1);
        assert!(two[2].ratio.unwrap()[1].excludes(1.0) && !two[1].ratio.unwrap()[1].excludes(1.0));
        assert_eq!(cells.len(), 3);
        let off = &cells[0];
        assert!(off.ratio.is_none() && off.runs == 3 && off.samples == 15_000);
        assert!(off.q[0].lo <= off.q[0].est && off.q[0].est <= off.q[0].hi);
        let same = cells[1].ratio.unwrap();
        assert!(same.iter().all(|c| !c.excludes(1.0)), "{same:?}");
        let double = cells[2].ratio.unwrap();
        assert!(
            double
                .iter()
                .all(|c| c.excludes(1.0) && (c.est - 2.0).abs() < 0.05),
            "{double:?}"
        );
        assert_eq!((off.grants_per_1k, off.lock_wait_ns[1]), (10.0, 7.0));
        assert!(off.kernel_per_1k.is_none() && off.overloaded == 0);
        assert_eq!(cells[2].significant(2), Some(true));
        assert_eq!(off.significant(2), None);
    }

    #[test]
    fn one_run_a_side_is_never_significant() {
        // Two runs per variant, a doubled latency: the interval excludes 1,
        // but too few runs stand behind it to say so.
        let rs: Vec<Record> = (0..2)
            .flat_map(|k| [run("off", k, 1), run("locks", k, 2)])
            .collect();
        let refs: Vec<&Record> = rs.iter().collect();
        let cells = summarize(&refs, Method::Runs, 300, 1);
        let locks = &cells[1];
        assert!(locks.ratio.unwrap()[2].excludes(1.0));
        assert_eq!((locks.runs, locks.off_runs), (2, 2));
        assert_eq!(locks.significant(2), Some(false));
    }
}
