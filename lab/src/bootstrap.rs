//! Bootstrap confidence intervals for quantiles of a latency sample, and for
//! the ratio of two samples' quantiles.
//!
//! A sample is a [`Weighted`] distribution: distinct values with their counts
//! (an HDR histogram's buckets, or raw values counted once each). A resample
//! draws as many values as the sample holds, with replacement, from that
//! distribution, with a seeded generator so a rerun gives the same
//! intervals.

/// A sample as distinct sorted values and their cumulative counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weighted {
    values: Vec<f64>,
    /// `cum[i]`: how many sample values are `<= values[i]`.
    cum: Vec<u64>,
}

/// A point estimate and its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ci {
    /// The estimate on the whole sample.
    pub est: f64,
    /// 2.5th percentile of the bootstrap distribution.
    pub lo: f64,
    /// 97.5th percentile of the bootstrap distribution.
    pub hi: f64,
}

impl Ci {
    /// NaN everywhere: no data.
    pub const NAN: Ci = Ci {
        est: f64::NAN,
        lo: f64::NAN,
        hi: f64::NAN,
    };

    /// Whether the interval lies wholly on one side of `x` (for a ratio,
    /// `x = 1`: a significant difference).
    pub fn excludes(&self, x: f64) -> bool {
        self.lo > x || self.hi < x
    }
}

impl Weighted {
    /// From `(value, count)` pairs in any order; zero counts are dropped.
    pub fn from_counts(pairs: impl IntoIterator<Item = (f64, u64)>) -> Weighted {
        let mut v: Vec<(f64, u64)> = pairs
            .into_iter()
            .filter(|&(x, n)| n > 0 && x.is_finite())
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut w = Weighted::default();
        let mut total = 0u64;
        for (x, n) in v {
            total += n;
            if w.values.last() == Some(&x) {
                *w.cum.last_mut().expect("cum follows values") = total;
            } else {
                w.values.push(x);
                w.cum.push(total);
            }
        }
        w
    }

    /// From raw values, each counted once.
    pub fn from_values(values: impl IntoIterator<Item = f64>) -> Weighted {
        Weighted::from_counts(values.into_iter().map(|x| (x, 1)))
    }

    /// How many values the sample holds.
    pub fn len(&self) -> u64 {
        self.cum.last().copied().unwrap_or(0)
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `q`-quantile (`0..=1`), nearest rank: the smallest value with at
    /// least `ceil(q * n)` values at or below it. NaN when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        self.quantile_of(&self.cum, q)
    }

    fn quantile_of(&self, cum: &[u64], q: f64) -> f64 {
        let n = cum.last().copied().unwrap_or(0);
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).clamp(1, n);
        let i = cum.partition_point(|&c| c < rank);
        self.values[i.min(self.values.len() - 1)]
    }

    /// `resamples` bootstrap replicates of each quantile in `qs`:
    /// `out[j][r]` is quantile `qs[j]` of resample `r`. Seeded, so the same
    /// inputs give the same replicates.
    pub fn bootstrap(&self, qs: &[f64], resamples: usize, seed: u64) -> Vec<Vec<f64>> {
        let n = self.len();
        let mut out = vec![Vec::with_capacity(resamples); qs.len()];
        if n == 0 {
            for o in &mut out {
                o.resize(resamples, f64::NAN);
            }
            return out;
        }
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut counts = vec![0u64; self.values.len()];
        let mut cum = vec![0u64; self.values.len()];
        for _ in 0..resamples {
            counts.fill(0);
            for _ in 0..n {
                let r = rng.u64(0..n);
                counts[self.cum.partition_point(|&c| c <= r)] += 1;
            }
            let mut t = 0;
            for (c, k) in cum.iter_mut().zip(&counts) {
                t += k;
                *c = t;
            }
            for (j, &q) in qs.iter().enumerate() {
                out[j].push(self.quantile_of(&cum, q));
            }
        }
        out
    }
}

/// The 2.5th and 97.5th percentiles of `replicates` around `est`.
pub fn percentile_ci(est: f64, replicates: &[f64]) -> Ci {
    let w = Weighted::from_values(replicates.iter().copied());
    Ci {
        est,
        lo: w.quantile(0.025),
        hi: w.quantile(0.975),
    }
}

/// The interval of `a / b` from independent replicates of each (paired by
/// index), around `est_a / est_b`.
pub fn ratio_ci(est_a: f64, a: &[f64], est_b: f64, b: &[f64]) -> Ci {
    let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    percentile_ci(est_a / est_b, &r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let w = Weighted::from_values((1..=100).map(f64::from));
        assert_eq!(w.len(), 100);
        assert_eq!(w.quantile(0.5), 50.0);
        assert_eq!(w.quantile(0.99), 99.0);
        assert_eq!(w.quantile(0.0), 1.0);
        assert_eq!(w.quantile(1.0), 100.0);
        let c = Weighted::from_counts([(5.0, 3), (1.0, 1), (5.0, 1), (9.0, 0)]);
        assert_eq!((c.len(), c.quantile(0.2), c.quantile(0.3)), (5, 1.0, 5.0));
        assert!(Weighted::default().quantile(0.5).is_nan());
    }

    /// An exponential sample of 20 000 (mean 100): the intervals of its
    /// median and p99 contain the true values, 100 ln 2 and 100 ln 100.
    #[test]
    fn interval_contains_the_true_quantile() {
        let mut rng = fastrand::Rng::with_seed(7);
        let w = Weighted::from_values((0..20_000).map(|_| -100.0 * (1.0 - rng.f64()).ln()));
        let reps = w.bootstrap(&[0.5, 0.99], 400, 1);
        for (j, (q, truth)) in [(0.5, 100.0 * 2f64.ln()), (0.99, 100.0 * 100f64.ln())]
            .into_iter()
            .enumerate()
        {
            let ci = percentile_ci(w.quantile(q), &reps[j]);
            assert!(ci.lo <= truth && truth <= ci.hi, "q {q}: {ci:?} vs {truth}");
            assert!(ci.lo < ci.hi && ci.hi - ci.lo < truth * 0.2, "{ci:?}");
        }
    }

    #[test]
    fn ratio_of_identical_samples_contains_one() {
        let w = Weighted::from_values((0..5_000).map(|i| f64::from(i % 997) + 1.0));
        let a = w.bootstrap(&[0.99], 300, 1);
        let b = w.bootstrap(&[0.99], 300, 2);
        let ci = ratio_ci(w.quantile(0.99), &a[0], w.quantile(0.99), &b[0]);
        assert_eq!(ci.est, 1.0);
        assert!(!ci.excludes(1.0), "{ci:?}");
        let shifted = Weighted::from_values((0..5_000).map(|i| 2.0 * (f64::from(i % 997) + 1.0)));
        let s = shifted.bootstrap(&[0.99], 300, 3);
        let ci = ratio_ci(shifted.quantile(0.99), &s[0], w.quantile(0.99), &b[0]);
        assert!(ci.excludes(1.0) && ci.lo > 1.5, "{ci:?}");
    }

    #[test]
    fn same_seed_same_replicates() {
        let w = Weighted::from_values((0..1000).map(f64::from));
        assert_eq!(w.bootstrap(&[0.9], 20, 5), w.bootstrap(&[0.9], 20, 5));
        let e = Weighted::default().bootstrap(&[0.5], 3, 0);
        assert!(e[0].len() == 3 && e[0][0].is_nan());
    }
}
