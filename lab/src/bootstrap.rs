//! Bootstrap confidence intervals for quantiles of a latency sample, and for
//! the ratio of two samples' quantiles.
//!
//! A sample is a [`Weighted`] distribution: distinct values with their counts
//! (an HDR histogram's buckets, or raw values counted once each). A resample
//! draws as many values as the sample holds, with replacement, from that
//! distribution; its `q`-quantile is what the interval is built from.
//!
//! # One draw per replicate
//!
//! The `k`-th smallest of `n` values drawn from the sample is
//! `F⁻¹(U₍ₖ₎)`, where `F⁻¹` is the sample's quantile function and `U₍ₖ₎` the
//! `k`-th smallest of `n` uniforms, which follows `Beta(k, n + 1 - k)`. So
//! one Beta draw gives one bootstrap replicate of a quantile, exactly as
//! drawing `n` values would, whatever `n` (a test checks the two agree).
//! Replicates are seeded ([`ChaCha8Rng`]): the same inputs give the same
//! intervals.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_distr::{Beta, Distribution};

/// A sample as distinct sorted values and their cumulative counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weighted {
    values: Vec<f64>,
    /// `cum[i]`: how many sample values are `<= values[i]`.
    cum: Vec<u64>,
}

/// A point estimate and its 95 % confidence interval: from
/// [`percentile_ci`] and [`ratio_ci`] (the bootstrap's 2.5th and 97.5th
/// percentiles), or from [`crate::runs::compare`] (the exact Mann–Whitney
/// interval of a ratio, `[0, ∞]` where too few runs give none).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ci {
    /// The estimate.
    pub est: f64,
    /// The interval's lower end.
    pub lo: f64,
    /// The interval's upper end.
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
        if self.is_empty() {
            return f64::NAN;
        }
        self.at_rank(rank(q, self.len()))
    }

    /// The `k`-th smallest value (`1..=n`).
    fn at_rank(&self, k: u64) -> f64 {
        let i = self.cum.partition_point(|&c| c < k);
        self.values[i.min(self.values.len() - 1)]
    }

    /// The value at rank `ceil(u * n)` (`u` in `0..=1`).
    pub(crate) fn at(&self, u: f64) -> f64 {
        let n = self.len();
        let rank = ((u.clamp(0.0, 1.0) * n as f64).ceil() as u64).clamp(1, n);
        let i = self.cum.partition_point(|&c| c < rank);
        self.values[i.min(self.values.len() - 1)]
    }

    /// `resamples` bootstrap replicates of each quantile in `qs`:
    /// `out[j][r]` is quantile `qs[j]` of resample `r` (NaN when empty).
    /// Seeded, so the same inputs give the same replicates.
    pub fn bootstrap(&self, qs: &[f64], resamples: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = vec![Vec::with_capacity(resamples); qs.len()];
        for _ in 0..resamples {
            for (o, &q) in out.iter_mut().zip(qs) {
                o.push(self.draw_quantile(q, &mut rng));
            }
        }
        out
    }

    /// The `q`-quantile of one resample of `len()` values (one Beta draw;
    /// NaN when empty).
    pub(crate) fn draw_quantile(&self, q: f64, rng: &mut ChaCha8Rng) -> f64 {
        let n = self.len();
        let k = rank(q, n);
        match Beta::new(k as f64, (n + 1 - k) as f64) {
            Ok(beta) if n > 0 => self.at(beta.sample(rng)),
            _ => f64::NAN,
        }
    }
}

/// The nearest rank of quantile `q` among `n` values, `1..=n` (0 when `n`
/// is 0): `ceil(q n)`, where a product within rounding of an integer is that
/// integer (`0.999 * 60 000` is 59 940, not 59 941).
fn rank(q: f64, n: u64) -> u64 {
    let x = q.clamp(0.0, 1.0) * n as f64;
    let k = if (x - x.round()).abs() <= 1e-9 * x.max(1.0) {
        x.round()
    } else {
        x.ceil()
    };
    (k as u64).clamp(1.min(n), n)
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

    /// The nearest rank, whatever the sample's size: `ceil(q n)` in
    /// integers, never one value high through a fraction's rounding (1 133
    /// values: p50 is the 567th).
    #[test]
    fn nearest_rank_for_every_size() {
        for n in (1..3_000u64).chain([20_000, 59_999, 60_000, 60_001]) {
            let w = Weighted::from_values((1..=n).map(|i| i as f64));
            for q in [0.5, 0.9, 0.99, 0.999] {
                let want = ((q * n as f64) - 1e-7).ceil().max(1.0);
                assert_eq!(w.quantile(q), want, "n {n} q {q}");
            }
        }
    }

    /// Exponential samples (mean 100): the intervals of the median and of
    /// p90 contain the true values, 100 ln 2 and 100 ln 10, about 95 % of
    /// the time (200 samples of 2 000), and are narrow.
    #[test]
    fn intervals_cover_the_true_quantile() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let exp = rand_distr::Exp::new(0.01f64).unwrap();
        for (q, truth) in [(0.5, 100.0 * 2f64.ln()), (0.9, 100.0 * 10f64.ln())] {
            let mut covered = 0;
            for seed in 0..200 {
                let w = Weighted::from_values((0..2_000).map(|_| exp.sample(&mut rng)));
                let ci = percentile_ci(w.quantile(q), &w.bootstrap(&[q], 500, seed)[0]);
                assert!(ci.lo <= ci.est && ci.est <= ci.hi && ci.hi - ci.lo < truth * 0.4);
                covered += usize::from(ci.lo <= truth && truth <= ci.hi);
            }
            assert!((180..=198).contains(&covered), "q {q}: {covered}/200");
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

    /// The Beta shortcut and drawing `n` values give the same interval.
    #[test]
    fn shortcut_matches_drawing_every_value() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let exp = rand_distr::Exp::new(0.01f64).unwrap();
        let w = Weighted::from_values((0..3_000).map(|_| exp.sample(&mut rng).round()));
        let n = w.len();
        for q in [0.5, 0.99] {
            let fast = percentile_ci(w.quantile(q), &w.bootstrap(&[q], 1000, 9)[0]);
            let slow: Vec<f64> = (0..300)
                .map(|_| {
                    let r = (0..n).map(|_| {
                        w.at(rand_distr::Uniform::new(0.0, 1.0).unwrap().sample(&mut rng))
                    });
                    Weighted::from_values(r).quantile(q)
                })
                .collect();
            let slow = percentile_ci(w.quantile(q), &slow);
            let tol = 0.25 * (slow.hi - slow.lo) + 1.0;
            assert!(
                (fast.lo - slow.lo).abs() <= tol && (fast.hi - slow.hi).abs() <= tol,
                "q {q}: {fast:?} vs {slow:?}"
            );
        }
    }

    #[test]
    fn same_seed_same_replicates() {
        let w = Weighted::from_values((0..1000).map(f64::from));
        assert_eq!(w.bootstrap(&[0.9], 20, 5), w.bootstrap(&[0.9], 20, 5));
        let e = Weighted::default().bootstrap(&[0.5], 3, 0);
        assert!(e[0].len() == 3 && e[0][0].is_nan());
    }
}
