//! What rseq-slice's benchmarks and latency study share: the [`Conditions`]
//! every result carries, statistics ([`median`], [`bootstrap`] confidence
//! intervals, [`runs`]: two variants compared run by run), and small
//! helpers for their tables and plots.
//!
//! ```no_run
//! let c = rseq_slice_lab::Conditions::detect();
//! println!("conditions: {c}");
//! ```

pub mod bootstrap;
mod conditions;
pub mod plot;
pub mod runs;

pub use bootstrap::{Ci, Weighted};
pub use conditions::Conditions;

/// The median of `v` (NaN when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(super::median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(super::median(Vec::new()).is_nan());
    }
}
