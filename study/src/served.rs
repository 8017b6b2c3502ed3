//! What the service itself saw of each request: the time from the moment
//! its handler got the parsed request to the moment the answer was handed
//! back for writing (an HDR histogram of µs per thread, merged when read).
//! Beside the client's latency it tells the service's own share from the
//! waits outside it (the socket, the client's CPU, the run queue before the
//! request was read).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::report::encode_hist;

type Hist = Arc<parking_lot::Mutex<Histogram<u64>>>;

/// Every thread's histogram, registered on first use.
static THREADS: Mutex<Vec<Hist>> = Mutex::new(Vec::new());

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid")
}

thread_local! {
    static MINE: Hist = {
        let h: Hist = Arc::new(parking_lot::Mutex::new(new_hist()));
        THREADS.lock().unwrap_or_else(|p| p.into_inner()).push(h.clone());
        h
    };
}

/// Record one request that took `d` inside the service.
pub fn record(d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
    MINE.with(|h| h.lock().saturating_record(us));
}

/// Every request so far, as JSON: `served_us` (`count`, `p50`, `p99`,
/// `p999`, `max`) and `served_hist` (the histogram, for differences
/// between two snapshots: [`crate::report::decode_hist`]).
pub fn snapshot() -> serde_json::Value {
    let mut all = new_hist();
    for h in THREADS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = all.add(&*h.lock());
    }
    let q = |p: f64| all.value_at_quantile(p);
    serde_json::json!({
        "served_us": {
            "count": all.len(),
            "p50": q(0.5),
            "p99": q(0.99),
            "p999": q(0.999),
            "max": all.max(),
        },
        "served_hist": encode_hist(&all),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_merge_threads_and_round_trip() {
        record(Duration::from_micros(100));
        std::thread::spawn(|| record(Duration::from_micros(300)))
            .join()
            .unwrap();
        let s = snapshot();
        assert!(s["served_us"]["count"].as_u64().unwrap() >= 2);
        let h = crate::report::decode_hist(s["served_hist"].as_str().unwrap()).unwrap();
        assert!(h.max() >= 300 && h.min() <= 100);
    }
}
