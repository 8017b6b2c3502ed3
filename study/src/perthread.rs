//! An HDR histogram per thread, recorded without contention and merged
//! when read: what [`crate::lockstats`] and [`crate::served`] keep.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;

type Hist = Arc<parking_lot::Mutex<Histogram<u64>>>;

/// Histograms of values in `1..=high`, one per thread that records.
#[derive(Debug)]
pub struct PerThread {
    high: u64,
    threads: Mutex<Vec<Hist>>,
}

thread_local! {
    /// This thread's histogram of each `PerThread` it recorded into, by address.
    static MINE: RefCell<Vec<(usize, Hist)>> = const { RefCell::new(Vec::new()) };
}

impl PerThread {
    /// No histogram yet.
    pub const fn new(high: u64) -> PerThread {
        PerThread {
            high,
            threads: Mutex::new(Vec::new()),
        }
    }

    fn fresh(&self) -> Histogram<u64> {
        Histogram::new_with_bounds(1, self.high, 3).expect("bounds of 1 and more are valid")
    }

    /// Record `v` into the calling thread's histogram.
    pub fn record(&'static self, v: u64) {
        let me = self as *const PerThread as usize;
        MINE.with(|m| {
            let mut m = m.borrow_mut();
            let h = match m.iter().find(|(k, _)| *k == me) {
                Some((_, h)) => h.clone(),
                None => {
                    let h: Hist = Arc::new(parking_lot::Mutex::new(self.fresh()));
                    self.threads
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(h.clone());
                    m.push((me, h.clone()));
                    h
                }
            };
            h.lock().saturating_record(v.max(1));
        });
    }

    /// Every thread's histogram merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = self.fresh();
        for h in self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = all.add(&*h.lock());
        }
        all
    }
}

/// `count`, `p50`, `p99`, `p999` and `max` of `h`, as JSON.
pub fn quantiles(h: &Histogram<u64>) -> serde_json::Value {
    let q = |p: f64| h.value_at_quantile(p);
    serde_json::json!({
        "count": h.len(),
        "p50": q(0.5),
        "p99": q(0.99),
        "p999": q(0.999),
        "max": h.max(),
    })
}
