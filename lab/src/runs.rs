//! Comparing two variants run by run: each run gives one figure (its p99.9,
//! say), and the runs, not the requests, are the observations. Requests
//! inside a run are not independent (one stall delays hundreds), so only
//! the spread between runs says how sure a difference is.
//!
//! [`compare`] works on the figures' logarithms: the ratio is the
//! Hodges–Lehmann shift (the median of every pairwise log difference,
//! exponentiated), its interval and p-value come from the Mann–Whitney
//! statistic's exact distribution. Under "no difference" the runs of both
//! sides are exchangeable and the test holds its level whatever the
//! figures' distribution; a test in this module simulates runs with
//! run-to-run and boot-to-boot effects and checks the false-positive rate
//! and the interval's coverage. With 3 runs a side no 95 % interval exists
//! (the most extreme split has probability 1/20), and [`compare`] says so
//! with an unbounded one. [`holm`] corrects many comparisons.

use std::collections::BTreeMap;
use std::sync::Mutex;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_distr::{Beta, Distribution, Normal};

use crate::Ci;

/// One figure's ratio between two sets of runs.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Shift {
    /// The ratio (Hodges–Lehmann) and its 95 % interval (unbounded where
    /// too few runs give none).
    pub ratio: Ci,
    /// Two-sided p-value of "no difference" (Mann–Whitney, exact).
    pub p: f64,
    /// Runs on each side.
    pub runs: (usize, usize),
}

/// The level of every interval here.
pub const ALPHA: f64 = 0.05;

/// The ratio `a / b` of two sets of runs' figures (positive and finite; the
/// others are left out). None when either side has none.
pub fn compare(a: &[f64], b: &[f64]) -> Option<Shift> {
    let logs = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .filter(|x| x.is_finite() && **x > 0.0)
            .map(|x| x.ln())
            .collect()
    };
    let (x, y) = (logs(a), logs(b));
    let (m, n) = (x.len(), y.len());
    if m == 0 || n == 0 {
        return None;
    }
    let mut d: Vec<f64> = x
        .iter()
        .flat_map(|a| y.iter().map(move |b| a - b))
        .collect();
    d.sort_by(f64::total_cmp);
    let est = crate::median(d.clone()).exp();
    let cdf = u_cdf(m, n);
    let p = p_value(u_statistic(&d), &cdf);
    // The interval: the k-th smallest and largest differences, k the
    // largest with P(U <= k - 1) <= alpha / 2.
    let k = (1..=m * n)
        .take_while(|&k| cdf[k - 1] <= ALPHA / 2.0)
        .last()
        .unwrap_or(0);
    let (lo, hi) = if k == 0 {
        (0.0, f64::INFINITY)
    } else {
        (d[k - 1].exp(), d[m * n - k].exp())
    };
    Some(Shift {
        ratio: Ci { est, lo, hi },
        p,
        runs: (m, n),
    })
}

/// The Mann–Whitney statistic from every pairwise difference `a - b`: the
/// pairs where a's run is above b's, ties counting half.
fn u_statistic(d: &[f64]) -> f64 {
    d.iter()
        .map(|&v| {
            if v > 0.0 {
                1.0
            } else if v == 0.0 {
                0.5
            } else {
                0.0
            }
        })
        .sum()
}

/// The two-sided p-value of `u` under `cdf` ([`u_cdf`]). Conservative with
/// ties: a half-integer `u` is taken at its less extreme side.
fn p_value(u: f64, cdf: &[f64]) -> f64 {
    let at = |k: f64| -> f64 {
        if k < 0.0 {
            0.0
        } else {
            cdf[(k as usize).min(cdf.len() - 1)]
        }
    };
    let lower = at(u.ceil());
    let upper = 1.0 - at(u.floor() - 1.0);
    (2.0 * lower.min(upper)).min(1.0)
}

/// `P(U <= u)` for `u = 0..=m n`, the Mann–Whitney statistic of `m` and `n`
/// exchangeable values without ties: the coefficients of the Gaussian
/// binomial `[m + n choose m]_q`, over `C(m + n, m)`.
fn u_cdf(m: usize, n: usize) -> Vec<f64> {
    let len = m * n + 1;
    // row[k]: the coefficients of [N choose k]_q, for N = 0..=m + n.
    let mut row: Vec<Vec<f64>> = vec![vec![0.0; len]; m + 1];
    row[0][0] = 1.0;
    for big_n in 1..=m + n {
        for k in (1..=m.min(big_n)).rev() {
            // [N, k] = [N-1, k-1] + q^k [N-1, k]
            let (head, tail) = row.split_at_mut(k);
            let (prev, cur) = (&head[k - 1], &mut tail[0]);
            for u in (0..len).rev() {
                let shifted = if u >= k { cur[u - k] } else { 0.0 };
                cur[u] = prev[u] + shifted;
            }
        }
    }
    let total: f64 = row[m].iter().sum();
    let mut acc = 0.0;
    row[m]
        .iter()
        .map(|c| {
            acc += c / total;
            acc.min(1.0)
        })
        .collect()
}

/// How runs vary, for simulated comparisons: each run's p99.9 is that of
/// `requests` latencies `50 + Exp(mean 100)` µs, scaled by `exp(boot +
/// run)`, with a boot effect shared by every run of a boot (normal on the
/// log scale, σ `boot_sigma`) and a run effect of its own (σ `run_sigma`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunModel {
    /// σ of the boot effect, on the log scale.
    pub boot_sigma: f64,
    /// σ of the run effect, on the log scale.
    pub run_sigma: f64,
    /// Requests a run.
    pub requests: f64,
}

/// The models [`compare`] was checked under: runs of 20 000 requests, boot
/// effects of 10 %, run effects of 10 % and 30 %.
pub const CHECKED: [RunModel; 2] = [
    RunModel {
        boot_sigma: 0.1,
        run_sigma: 0.1,
        requests: 20_000.0,
    },
    RunModel {
        boot_sigma: 0.1,
        run_sigma: 0.3,
        requests: 20_000.0,
    },
];

/// Trials per model behind [`split_false_positive_rate`].
pub const SPLIT_TRIALS: usize = 20_000;

impl RunModel {
    /// One run's p99.9 in a boot of effect `boot`, its side scaled by
    /// `ratio`: the order statistic drawn once (Beta), as a run of
    /// `requests` requests would give it.
    fn run(&self, rng: &mut ChaCha8Rng, boot: f64, ratio: f64) -> f64 {
        let k = (0.999 * self.requests).ceil();
        let u = Beta::new(k, self.requests + 1.0 - k).map_or(0.999, |b| b.sample(rng));
        let run = Normal::new(0.0, self.run_sigma).map_or(0.0, |n| n.sample(rng));
        ratio * (boot + run).exp() * (50.0 - 100.0 * (1.0 - u).ln())
    }

    /// Both sides of one simulated comparison laid out as `split` (for each
    /// boot, the runs of side a and of side b it holds), side a scaled by
    /// `ratio`.
    pub fn sides(
        &self,
        rng: &mut ChaCha8Rng,
        split: &[(usize, usize)],
        ratio: f64,
    ) -> (Vec<f64>, Vec<f64>) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for &(na, nb) in split {
            let boot = Normal::new(0.0, self.boot_sigma).map_or(0.0, |n| n.sample(rng));
            a.extend((0..na).map(|_| self.run(rng, boot, ratio)));
            b.extend((0..nb).map(|_| self.run(rng, boot, 1.0)));
        }
        (a, b)
    }

    /// The share of `trials` A/A comparisons laid out as `split`, runs
    /// drawn from this model, that [`compare`] calls different (p <
    /// [`ALPHA`]): the method's false-positive rate for that layout.
    /// Seeded: the same arguments give the same rate. NaN where a side has
    /// no run or `trials` is 0.
    pub fn false_positive_rate(&self, split: &[(usize, usize)], trials: usize, seed: u64) -> f64 {
        let (m, n) = split.iter().fold((0, 0), |(m, n), &(a, b)| (m + a, n + b));
        if m == 0 || n == 0 || trials == 0 {
            return f64::NAN;
        }
        let cdf = u_cdf(m, n);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut called = 0usize;
        for _ in 0..trials {
            let (a, b) = self.sides(&mut rng, split, 1.0);
            let d: Vec<f64> = a
                .iter()
                .flat_map(|x| b.iter().map(move |y| x - y))
                .collect();
            called += usize::from(p_value(u_statistic(&d), &cdf) < ALPHA);
        }
        called as f64 / trials as f64
    }
}

/// The seed of [`CHECKED`]`[i]`'s trials in [`split_false_positive_rate`].
pub fn split_seed(i: usize) -> u64 {
    0x5eed + i as u64
}

/// The false-positive rate of a comparison laid out as `split` (for each
/// boot, the runs of side a and of side b it holds; the boots' order does
/// not matter): the highest of the [`CHECKED`] models' over
/// [`SPLIT_TRIALS`] A/A trials each, seeded ([`split_seed`]), so the same
/// split always gives the same figure (kept for the process's life). The
/// exact test's own level at 10 runs a side is 4.3 %; where a layout's
/// rate exceeds [`ALPHA`], it does not hold the level and a difference
/// found there is no claim. NaN where a side has no run.
pub fn split_false_positive_rate(split: &[(usize, usize)]) -> f64 {
    static RATES: Mutex<BTreeMap<Vec<(usize, usize)>, f64>> = Mutex::new(BTreeMap::new());
    let mut key: Vec<(usize, usize)> = split.iter().copied().filter(|&b| b != (0, 0)).collect();
    key.sort_unstable();
    let known = RATES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .copied();
    known.unwrap_or_else(|| {
        let mut r: f64 = 0.0;
        for (i, m) in CHECKED.iter().enumerate() {
            let x = m.false_positive_rate(&key, SPLIT_TRIALS, split_seed(i));
            r = if x.is_nan() { x } else { r.max(x) };
        }
        RATES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, r);
        r
    })
}

/// Holm's step-down adjustment of `p` (NaN entries are left out and stay
/// NaN): reject where the adjusted value is below the level, and the
/// family's chance of any false rejection stays under it.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_finite()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let m = idx.len();
    let mut out = vec![f64::NAN; p.len()];
    let mut running: f64 = 0.0;
    for (j, &i) in idx.iter().enumerate() {
        running = running.max(((m - j) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_null_distribution_is_exact() {
        // m = n = 2: U takes 0, 1, 2, 2, 3, 4 over the 6 splits.
        let c = u_cdf(2, 2);
        let want = [1.0, 2.0, 4.0, 5.0, 6.0].map(|k| k / 6.0);
        assert!(
            c.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{c:?}"
        );
        // 10 a side: P(U <= 23) = 0.0216, P(U <= 24) = 0.0262 (tables).
        let c = u_cdf(10, 10);
        assert!((c[23] - 0.0216).abs() < 5e-4 && (c[24] - 0.0262).abs() < 5e-4);
    }

    #[test]
    fn three_runs_a_side_have_no_95_percent_interval() {
        let s = compare(&[1.0, 1.1, 1.2], &[2.0, 2.1, 2.2]).unwrap();
        assert_eq!((s.ratio.lo, s.ratio.hi), (0.0, f64::INFINITY));
        assert!(
            (s.p - 0.1).abs() < 1e-12,
            "the most extreme split: p = 2/20"
        );
        let s = compare(&[1.0; 10], &[2.0; 10]).unwrap();
        assert!(s.ratio.excludes(1.0) && s.p < 1e-4 && (s.ratio.est - 0.5).abs() < 1e-12);
        assert!(compare(&[], &[1.0]).is_none());
    }

    #[test]
    fn holm_adjusts_step_down() {
        let a = holm(&[0.01, 0.04, f64::NAN, 0.03]);
        assert_eq!(a[0], 0.03);
        assert!((a[3] - 0.06).abs() < 1e-12 && (a[1] - 0.06).abs() < 1e-12);
        assert!(a[2].is_nan());
    }

    /// The coverage test behind the choice: 10 runs a side from 2 boots,
    /// 5 of each side's in each, run effects of 10 % and 30 %
    /// ([`CHECKED`]). An A/A comparison is called different at most 5 % of
    /// the time, a true ratio of 1.3 lies inside the interval at least
    /// 95 % of the time, and is found most of the time where runs differ by
    /// 10 %.
    #[test]
    fn level_coverage_and_power_with_run_and_boot_effects() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let trials = 400;
        let split = [(5, 5), (5, 5)];
        for model in CHECKED {
            let sigma = model.run_sigma;
            let (mut false_pos, mut covered, mut found) = (0, 0, 0);
            for _ in 0..trials {
                let (a, b) = model.sides(&mut rng, &split, 1.0);
                false_pos += usize::from(compare(&a, &b).unwrap().p < ALPHA);
                let (a, b) = model.sides(&mut rng, &split, 1.3);
                let s = compare(&a, &b).unwrap();
                covered += usize::from(s.ratio.lo <= 1.3 && 1.3 <= s.ratio.hi);
                found += usize::from(s.p < ALPHA);
            }
            let rate = |k: usize| k as f64 / trials as f64;
            eprintln!(
                "σ {sigma}: A/A called different {:.3}, coverage {:.3}, power {:.3}",
                rate(false_pos),
                rate(covered),
                rate(found)
            );
            assert!(
                rate(false_pos) <= 0.05 + 0.02,
                "σ {sigma}: A/A {}",
                rate(false_pos)
            );
            assert!(
                rate(covered) >= 0.95 - 0.02,
                "σ {sigma}: coverage {}",
                rate(covered)
            );
            if sigma == 0.1 {
                assert!(rate(found) >= 0.8, "σ {sigma}: power {}", rate(found));
            }
        }
    }

    /// The false-positive rate for the ways `--resume` and failed runs can
    /// lay 10 runs a side over 2 boots: balanced (5/5), unbalanced alike on
    /// both sides (7/3, 8/2: the variants alternate within a repeat), and
    /// unbalanced against each other (8/2 against 2/8, 7/3 against 5/5),
    /// where the boot effect falls on one side more than the other.
    #[test]
    fn false_positive_rates_of_unbalanced_splits() {
        let splits: [(&str, [(usize, usize); 2]); 5] = [
            ("5/5", [(5, 5), (5, 5)]),
            ("7/3", [(7, 7), (3, 3)]),
            ("8/2", [(8, 8), (2, 2)]),
            ("7/3 against 5/5", [(7, 5), (3, 5)]),
            ("8/2 against 2/8", [(8, 2), (2, 8)]),
        ];
        let mut rates = Vec::new();
        for (name, split) in splits {
            let mut sorted = split;
            sorted.sort_unstable();
            let [narrow, wide] = [0, 1]
                .map(|i| CHECKED[i].false_positive_rate(&sorted, SPLIT_TRIALS, split_seed(i)));
            let r = split_false_positive_rate(&split);
            eprintln!(
                "split {name}: A/A called different {narrow:.3} (run σ 0.1), {wide:.3} (run σ 0.3)"
            );
            assert_eq!(r, narrow.max(wide), "split {name}");
            rates.push(r);
        }
        for (name, r) in splits.iter().map(|s| s.0).zip(&rates).take(3) {
            assert!(*r <= ALPHA, "split {name}: {r}");
        }
        assert!(rates[4] > ALPHA, "8/2 against 2/8: {}", rates[4]);
        // Seeded: the same split, the same figure; no run on a side: NaN.
        assert_eq!(
            split_false_positive_rate(&[(2, 2), (8, 8), (0, 0)]),
            rates[2]
        );
        assert!(split_false_positive_rate(&[(10, 0)]).is_nan());
        assert!(CHECKED[0].false_positive_rate(&[(5, 5)], 0, 1).is_nan());
    }
}
