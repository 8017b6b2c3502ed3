//! From runs to cells. Runs are the unit: each run gives its own p50, p99
//! and p99.9; a cell shows their median and the lowest and highest run; a
//! variant's ratio to `off` (same configuration and level) is
//! `rseq_slice_lab::runs::compare` over the two cells' runs, with Holm's
//! correction over the matrix's planned comparisons ([`family`]), fixed
//! before any run's figures. A ratio is a claim only where both cells have
//! [`MIN_RUNS`] runs from [`MIN_BOOTS`] boots, every run kept up with its
//! load ([`stable`]) and was offered the same rate.

use std::collections::HashMap;

use rseq_slice_lab::runs::{ALPHA, Shift, compare, holm, split_false_positive_rate};
use rseq_slice_lab::{Weighted, median};
use rseq_slice_study::report::CURVE;
use serde::Serialize;

use crate::plan::Config;
use crate::store::{Record, latest_ok};

mod per_run;
use per_run::latencies;
pub(crate) use per_run::{CLIENT_BOUND, run_quantiles, served_quantiles, stable};

/// The quantiles each run gives.
pub(crate) const QS: [f64; 3] = [0.5, 0.99, 0.999];

/// Runs each side of a ratio needs before it can be a claim.
pub(crate) const MIN_RUNS: usize = 10;

/// Boots each side's runs must come from.
pub(crate) const MIN_BOOTS: usize = 2;

/// The name of the A/A control: `off` run again under another label.
pub(crate) use crate::args::CONTROL;

/// One cell (configuration, level, variant) over its runs. Latencies in
/// µs; lock waits in ns; NaN where nothing was recorded.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    pub(crate) config: Config,
    pub(crate) level: f64,
    pub(crate) absolute: bool,
    pub(crate) variant: String,
    /// The variant its ratios compare with.
    pub(crate) baseline: String,
    pub(crate) runs: usize,
    /// Distinct boots the runs come from.
    pub(crate) boots: usize,
    /// Its runs in each boot, by the boot's label.
    pub(crate) boot_runs: std::collections::BTreeMap<String, usize>,
    /// The rate offered (the runs' median; see `rates`).
    pub(crate) rate: f64,
    /// Every distinct rate its runs were offered, ascending: one, unless
    /// its boots calibrated differently (then it is no claim).
    pub(crate) rates: Vec<f64>,
    pub(crate) capacity: Option<f64>,
    pub(crate) samples: u64,
    pub(crate) throughput: f64,
    /// p50, p99, p99.9 over the runs.
    pub(crate) q: [Spread; 3],
    /// Each run's p50, p99, p99.9 (`per_run[j][run]`).
    pub(crate) per_run: [Vec<f64>; 3],
    /// The service's own p50, p99, p99.9 (from the read of a request to its
    /// answer; `served_us` on its `/metrics`), like `q`: NaN where the
    /// service does not record it.
    pub(crate) served: [Spread; 3],
    /// Each one's ratio to `off`'s (none for `off`, or without `off`).
    pub(crate) ratio: Option<[Shift; 3]>,
    /// Holm-adjusted p-values of the ratios over the planned comparisons
    /// ([`family`]); NaN without a ratio. Significant only for a claim.
    pub(crate) p_adjusted: [f64; 3],
    /// Runs and boots of the `off` cell the ratios compare with, and how
    /// many of its runs were unstable.
    pub(crate) off_runs: usize,
    pub(crate) off_boots: usize,
    pub(crate) off_unstable: usize,
    /// The rates the `off` cell's runs were offered.
    pub(crate) off_rates: Vec<f64>,
    /// How its ratios' runs fall over boots: for each boot (in label
    /// order), this cell's runs and the `off` cell's there. Empty without
    /// a ratio.
    pub(crate) split: Vec<(usize, usize)>,
    /// The method's false-positive rate for that split (the A/A
    /// simulation of `rseq_slice_lab::runs::split_false_positive_rate`):
    /// above 5 %, no claim. NaN without a ratio.
    pub(crate) split_false_positive: f64,
    /// Runs that did not keep up (see [`stable`]).
    pub(crate) unstable: usize,
    pub(crate) p90: f64,
    pub(crate) max: f64,
    /// The runs' median `(percentile, latency)` at each of `report::CURVE`.
    pub(crate) curve: Vec<(f64, f64)>,
    /// Service-side grants (SliceMetrics) per 1 000 requests sent.
    pub(crate) grants_per_1k: f64,
    /// Kernel `rseq/stats` deltas per 1 000 requests: sgrant, sexpir,
    /// srevok, syield (none where debugfs was not readable).
    pub(crate) kernel_per_1k: Option<[f64; 4]>,
    /// The service cgroup's throttled periods and throttled ms per run
    /// (none without a cgroup).
    pub(crate) throttled: Option<[f64; 2]>,
    /// Hot-lock wait p50, p99, p99.9 (ns).
    pub(crate) lock_wait_ns: [f64; 3],
    /// Hot-lock hold p50, p99 (ns; NaN where the service does not say).
    pub(crate) lock_hold_ns: [f64; 2],
    /// Holds over the preempted threshold, per run.
    pub(crate) preempted_holds: f64,
    pub(crate) errors: u64,
    pub(crate) missing: u64,
    /// loadgen's CPU share, the runs' median (NaN: unknown).
    pub(crate) client_cpu: f64,
    /// Answers by HTTP status code, over its runs.
    pub(crate) statuses: std::collections::BTreeMap<u16, u64>,
}

/// Why a ratio is or is not a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Both sides stable, enough runs and boots.
    Claim,
    /// Its runs, or its runs and `off`'s, were offered different rates:
    /// the comparison mixes loads.
    MixedRates,
    /// A run of either side did not keep up: its tail is its queue.
    Unstable,
    /// Fewer than [`MIN_RUNS`] runs a side.
    FewRuns,
    /// Runs from fewer than [`MIN_BOOTS`] boots.
    OneBoot,
    /// Its runs and `off`'s fall over the boots in a way whose simulated
    /// A/A false-positive rate exceeds 5 %.
    Unbalanced,
}

impl Summary {
    /// Whether this cell's ratios can support a claim.
    pub(crate) fn standing(&self) -> Standing {
        if !self.one_rate() {
            Standing::MixedRates
        } else if self.unstable > 0 || self.off_unstable > 0 {
            Standing::Unstable
        } else if self.runs < MIN_RUNS || self.off_runs < MIN_RUNS {
            Standing::FewRuns
        } else if self.boots < MIN_BOOTS || self.off_boots < MIN_BOOTS {
            Standing::OneBoot
        } else if self.split_false_positive.is_nan() || self.split_false_positive > ALPHA {
            Standing::Unbalanced
        } else {
            Standing::Claim
        }
    }

    /// Whether every run of this cell, and of the `off` cell its ratios
    /// compare with, was offered the same rate.
    pub(crate) fn one_rate(&self) -> bool {
        self.rates.len() == 1 && (self.ratio.is_none() || self.off_rates == self.rates)
    }

    /// Whether quantile `j`'s ratio to `off` is a significant difference: a
    /// claim whose Holm-adjusted p-value is under 5 %. None without a ratio.
    pub(crate) fn significant(&self, j: usize) -> Option<bool> {
        self.ratio?;
        Some(self.standing() == Standing::Claim && self.p_adjusted[j] < ALPHA)
    }
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// One figure over a cell's runs: their median, lowest and highest (no
/// interval: a cell's uncertainty is in its ratios).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) lowest: f64,
    pub(crate) highest: f64,
}

/// The spread of `v`'s finite values (NaN everywhere when none).
fn spread(v: &[f64]) -> Spread {
    let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if f.is_empty() {
        return Spread {
            median: f64::NAN,
            lowest: f64::NAN,
            highest: f64::NAN,
        };
    }
    Spread {
        median: median(f.clone()),
        lowest: f.iter().copied().fold(f64::INFINITY, f64::min),
        highest: f.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

type Key = (Config, u64, bool, String);

/// Where a variant's rows go: the baseline, the control, then the others
/// in the order they first appear.
fn variant_rank(v: &str, base: &str, seen: &[String]) -> usize {
    match v {
        _ if v == base => 0,
        CONTROL => 1,
        _ => 2 + seen.iter().position(|s| s == v).unwrap_or(seen.len()),
    }
}

/// The records' baseline variant (`off` unless they say otherwise).
fn baseline(records: &[Record]) -> &str {
    records.first().map_or("off", |r| r.baseline.as_str())
}

/// The matrix's planned comparisons, Holm's family: every configuration ×
/// every level × every variant but the baseline that any run record
/// names, failed ones included, each at p50, p99 and p99.9. The plan is a
/// cross product run repeat by repeat, so these are the plan's cells
/// whatever became of their runs; which cells turned out stable, or had
/// enough runs, does not change it.
pub(crate) fn family(records: &[Record]) -> Vec<Key> {
    let base = baseline(records);
    let (mut configs, mut levels, mut variants) = (Vec::new(), Vec::new(), Vec::new());
    for c in records
        .iter()
        .filter(|r| r.kind == "run")
        .filter_map(|r| r.cell.as_ref())
    {
        let level = (c.level.to_bits(), c.absolute);
        if !configs.contains(&c.config) {
            configs.push(c.config.clone());
        }
        if !levels.contains(&level) {
            levels.push(level);
        }
        if c.variant != base && !variants.contains(&c.variant) {
            variants.push(c.variant.clone());
        }
    }
    let mut out = Vec::new();
    for c in &configs {
        for &(l, a) in &levels {
            for v in &variants {
                out.push((c.clone(), l, a, v.clone()));
            }
        }
    }
    out
}

/// Summaries of every cell of `records` (runs.jsonl: the last successful
/// record of each run key makes the cells; failed runs count only in the
/// [`family`]): configurations in the order they first appear, then levels
/// ascending, then the baseline, the control and the other variants.
/// Ratios compare each with the baseline.
pub(crate) fn summarize(records: &[Record]) -> Vec<Summary> {
    let base = baseline(records);
    let runs: Vec<&Record> = latest_ok(records)
        .into_iter()
        .filter(|r| r.kind == "run")
        .collect();
    let mut keys: Vec<Key> = Vec::new();
    let mut by: HashMap<Key, Vec<&Record>> = HashMap::new();
    let (mut configs, mut variants): (Vec<Config>, Vec<String>) = (Vec::new(), Vec::new());
    for r in runs {
        let Some(c) = &r.cell else { continue };
        let k = (
            c.config.clone(),
            c.level.to_bits(),
            c.absolute,
            c.variant.clone(),
        );
        if !configs.contains(&c.config) {
            configs.push(c.config.clone());
        }
        if !variants.contains(&c.variant) {
            variants.push(c.variant.clone());
        }
        if !by.contains_key(&k) {
            keys.push(k.clone());
        }
        by.entry(k).or_default().push(r);
    }
    keys.sort_by(|a, b| {
        let pos = |c: &Config| configs.iter().position(|x| x == c);
        pos(&a.0)
            .cmp(&pos(&b.0))
            .then(f64::from_bits(a.1).total_cmp(&f64::from_bits(b.1)))
            .then(variant_rank(&a.3, base, &variants).cmp(&variant_rank(&b.3, base, &variants)))
    });
    let mut out: Vec<Summary> = keys.iter().map(|k| cell(k, &by[k], base)).collect();
    let index: HashMap<&Key, usize> = keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    for i in 0..out.len() {
        let k = &keys[i];
        if k.3 == base {
            continue;
        }
        let of = (k.0.clone(), k.1, k.2, base.to_string());
        let Some(&b) = index.get(&of) else { continue };
        let off = out[b].clone();
        let s = &mut out[i];
        let shifts: Vec<Shift> = (0..3)
            .filter_map(|j| compare(&s.per_run[j], &off.per_run[j]))
            .collect();
        if let Ok(r) = <[Shift; 3]>::try_from(shifts) {
            s.ratio = Some(r);
        }
        (s.off_runs, s.off_boots, s.off_unstable) = (off.runs, off.boots, off.unstable);
        s.off_rates = off.rates;
        let mut boots: Vec<&String> = s.boot_runs.keys().chain(off.boot_runs.keys()).collect();
        boots.sort_unstable();
        boots.dedup();
        s.split = boots
            .iter()
            .map(|b| {
                let n = |m: &std::collections::BTreeMap<String, usize>| m.get(*b).copied();
                (n(&s.boot_runs).unwrap_or(0), n(&off.boot_runs).unwrap_or(0))
            })
            .collect();
        s.split_false_positive = split_false_positive_rate(&s.split);
    }
    // Holm over the planned family, the control's comparisons included: a
    // comparison without a ratio (its runs failed) counts with p = 1.
    let fam = family(records);
    let mut ps = Vec::with_capacity(3 * fam.len());
    for k in &fam {
        let shifts = index.get(k).and_then(|&i| out[i].ratio);
        for j in 0..3 {
            ps.push(shifts.map_or(1.0, |r| r[j].p));
        }
    }
    let adjusted = holm(&ps);
    for (n, k) in fam.iter().enumerate() {
        if let Some(&i) = index.get(k)
            && out[i].ratio.is_some()
        {
            out[i]
                .p_adjusted
                .copy_from_slice(&adjusted[3 * n..3 * n + 3]);
        }
    }
    out
}

fn cell(k: &Key, rs: &[&Record], base: &str) -> Summary {
    let figures: Vec<[f64; 3]> = rs.iter().map(|r| run_quantiles(r)).collect();
    let per_run = [0, 1, 2].map(|j| figures.iter().map(|f| f[j]).collect::<Vec<f64>>());
    let lat: Vec<Weighted> = rs.iter().filter_map(|r| latencies(r)).collect();
    let med_q = |q: f64| median(lat.iter().map(|w| w.quantile(q)).collect());
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
    let throttled = rs.iter().any(|r| r.throttling.is_some()).then(|| {
        let t = |f: fn(&crate::cgroup::Throttling) -> f64| {
            med(&|r| r.throttling.as_ref().map_or(f64::NAN, f))
        };
        [
            t(|t| t.throttled as f64),
            t(|t| t.throttled_us as f64 / 1000.0),
        ]
    });
    let sum = |f: &dyn Fn(&rseq_slice_study::report::LoadReport) -> u64| {
        rs.iter()
            .filter_map(|r| r.report.as_ref())
            .map(f)
            .sum::<u64>()
    };
    let mut boot_runs = std::collections::BTreeMap::new();
    for r in rs {
        *boot_runs.entry(r.boot.clone()).or_insert(0) += 1;
    }
    let mut rates: Vec<f64> = rs.iter().map(|r| r.rate).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    Summary {
        config: k.0.clone(),
        level: f64::from_bits(k.1),
        absolute: k.2,
        variant: k.3.clone(),
        baseline: base.to_string(),
        runs: rs.len(),
        boots: boot_runs.len(),
        boot_runs,
        rate: med(&|r| r.rate),
        rates,
        capacity: rs.iter().find_map(|r| r.capacity),
        samples: lat.iter().map(Weighted::len).sum(),
        throughput: med(&|r| r.report.as_ref().map_or(f64::NAN, |p| p.throughput)),
        q: [0, 1, 2].map(|j| spread(&per_run[j])),
        per_run,
        served: {
            let sq: Vec<[f64; 3]> = rs.iter().map(|r| served_quantiles(r)).collect();
            [0, 1, 2].map(|j| spread(&sq.iter().map(|f| f[j]).collect::<Vec<f64>>()))
        },
        ratio: None,
        p_adjusted: [f64::NAN; 3],
        off_runs: 0,
        off_boots: 0,
        off_unstable: 0,
        off_rates: Vec::new(),
        split: Vec::new(),
        split_false_positive: f64::NAN,
        unstable: rs.iter().filter(|r| !stable(r)).count(),
        p90: med_q(0.9),
        max: med_q(1.0),
        curve: CURVE.iter().map(|&p| (p, med_q(p / 100.0))).collect(),
        grants_per_1k: med(&|r| per_1k(r, svc(r, &|s| num(&s["slice_granted"])))),
        kernel_per_1k,
        throttled,
        lock_wait_ns: ["p50", "p99", "p999"]
            .map(|p| med(&|r| svc(r, &|s| num(&s["lock_wait_ns"][p])))),
        lock_hold_ns: ["p50", "p99"].map(|p| med(&|r| svc(r, &|s| num(&s["lock_hold_ns"][p])))),
        preempted_holds: med(&|r| svc(r, &|s| num(&s["preempted_holds"]))),
        errors: sum(&|p| p.errors),
        missing: sum(&|p| p.missing),
        client_cpu: med(&|r| {
            r.report
                .as_ref()
                .and_then(|p| p.client_cpu)
                .unwrap_or(f64::NAN)
        }),
        statuses: rs
            .iter()
            .filter_map(|r| r.report.as_ref())
            .flat_map(|p| p.statuses.iter())
            .fold(Default::default(), |mut m, (&k, &n)| {
                *m.entry(k).or_default() += n;
                m
            }),
    }
}

/// The A/A control over the matrix: of its comparisons that are claims,
/// how many had p < 5 % unadjusted, and how many are significant after
/// Holm. `(comparisons, unadjusted, adjusted)`.
pub(crate) fn control_false_positives(cells: &[Summary]) -> (usize, usize, usize) {
    let mut n = (0, 0, 0);
    for s in cells.iter().filter(|s| s.variant == CONTROL) {
        let (Some(r), Standing::Claim) = (s.ratio, s.standing()) else {
            continue;
        };
        for (j, shift) in r.iter().enumerate() {
            n.0 += 1;
            n.1 += usize::from(shift.p < ALPHA);
            n.2 += usize::from(s.significant(j) == Some(true));
        }
    }
    n
}

/// Capacity at an SLO: per configuration and variant, the highest rate at
/// which p99.9 stayed under `slo_us` in at least 90 % of its runs, every run
/// stable (none: not even the lowest). `(config, variant, rate)`.
pub(crate) fn slo_capacity(cells: &[Summary], slo_us: f64) -> Vec<(Config, String, Option<f64>)> {
    let mut out: Vec<(Config, String, Option<f64>)> = Vec::new();
    for s in cells {
        let meets = s.unstable == 0 && {
            let p = &s.per_run[2];
            let under = p.iter().filter(|&&x| x < slo_us).count();
            !p.is_empty() && under as f64 >= 0.9 * p.len() as f64
        };
        let slot = match out
            .iter_mut()
            .find(|(c, v, _)| c == &s.config && v == &s.variant)
        {
            Some(x) => x,
            None => {
                out.push((s.config.clone(), s.variant.clone(), None));
                out.last_mut().expect("just pushed")
            }
        };
        if meets {
            slot.2 = Some(slot.2.map_or(s.rate, |r: f64| r.max(s.rate)));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
