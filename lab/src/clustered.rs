//! Bootstrap intervals for samples that come in clusters: the latencies of a
//! few runs, each run's requests correlated (a stall delays many at once).
//!
//! Resampling the pooled requests as if independent ignores that runs
//! differ from one another, and gives intervals too narrow to compare
//! variants by. A *two-stage* replicate first draws as many runs as there
//! are, with replacement, then the quantile of as many requests drawn from
//! those runs' pooled values (one Beta draw, as in [`crate::bootstrap`]).
//! With a single run it is the requests-only bootstrap.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::bootstrap::Weighted;

/// Runs' samples over one grid of values.
#[derive(Debug, Clone, Default)]
pub struct Clustered {
    /// Every distinct value of every run, sorted.
    values: Vec<f64>,
    /// Per run, its count at each of `values`.
    counts: Vec<Vec<u64>>,
}

impl Clustered {
    /// From each run's `(value, count)` pairs.
    pub fn new(runs: &[Vec<(f64, u64)>]) -> Clustered {
        let mut values: Vec<f64> = runs
            .iter()
            .flatten()
            .filter(|(x, n)| *n > 0 && x.is_finite())
            .map(|&(x, _)| x)
            .collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        let counts = runs
            .iter()
            .map(|r| {
                let mut c = vec![0u64; values.len()];
                for &(x, n) in r {
                    if let Ok(i) = values.binary_search_by(|v| v.total_cmp(&x)) {
                        c[i] += n;
                    }
                }
                c
            })
            .collect();
        Clustered { values, counts }
    }

    /// How many runs.
    pub fn runs(&self) -> usize {
        self.counts.len()
    }

    /// Every run's values together.
    pub fn pooled(&self) -> Weighted {
        self.sum(0..self.counts.len())
    }

    fn sum(&self, runs: impl Iterator<Item = usize>) -> Weighted {
        let mut cum = vec![0u64; self.values.len()];
        for r in runs {
            for (c, k) in cum.iter_mut().zip(&self.counts[r]) {
                *c += k;
            }
        }
        let mut t = 0;
        for c in &mut cum {
            t += *c;
            *c = t;
        }
        Weighted::from_cum(self.values.clone(), cum)
    }

    /// `resamples` two-stage replicates of each quantile in `qs`
    /// (`out[j][r]`, NaN when there are no values). Seeded.
    pub fn bootstrap(&self, qs: &[f64], resamples: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let m = self.runs() as u64;
        let mut out = vec![Vec::with_capacity(resamples); qs.len()];
        for _ in 0..resamples {
            // Runs with replacement (modulo bias is nil for a few runs).
            let pick: Vec<usize> = (0..m)
                .map(|_| (rng.next_u64() % m.max(1)) as usize)
                .collect();
            let w = self.sum(pick.into_iter());
            for (o, &q) in out.iter_mut().zip(qs) {
                o.push(w.draw_quantile(q, &mut rng));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::{percentile_ci, ratio_ci};

    fn run(offset: f64) -> Vec<(f64, u64)> {
        (0..2_000)
            .map(|i| (offset + f64::from(i % 500), 1))
            .collect()
    }

    #[test]
    fn one_run_is_the_requests_bootstrap_and_pools_agree() {
        let c = Clustered::new(&[run(0.0)]);
        let w = Weighted::from_counts(run(0.0));
        assert_eq!(c.pooled().quantile(0.9), w.quantile(0.9));
        let a = percentile_ci(0.0, &c.bootstrap(&[0.9], 500, 1)[0]);
        let b = percentile_ci(0.0, &w.bootstrap(&[0.9], 500, 1)[0]);
        assert!(
            (a.lo - b.lo).abs() <= 5.0 && (a.hi - b.hi).abs() <= 5.0,
            "{a:?} {b:?}"
        );
    }

    /// Runs that differ widen the interval beyond the requests-only one, so
    /// two variants whose runs overlap are not called different.
    #[test]
    fn differing_runs_widen_the_interval() {
        let runs = [run(0.0), run(300.0), run(150.0)];
        let c = Clustered::new(&runs);
        let pooled = c.pooled();
        let two = percentile_ci(pooled.quantile(0.5), &c.bootstrap(&[0.5], 500, 1)[0]);
        let one = percentile_ci(pooled.quantile(0.5), &pooled.bootstrap(&[0.5], 500, 1)[0]);
        assert!(
            two.hi - two.lo > 3.0 * (one.hi - one.lo),
            "{two:?} vs {one:?}"
        );
        let other = Clustered::new(&[run(100.0), run(200.0), run(50.0)]);
        let (a, b) = (c.bootstrap(&[0.5], 500, 2), other.bootstrap(&[0.5], 500, 3));
        let r = ratio_ci(
            pooled.quantile(0.5),
            &b[0],
            other.pooled().quantile(0.5),
            &a[0],
        );
        assert!(!r.excludes(1.0), "{r:?}");
    }
}
