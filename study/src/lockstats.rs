//! What the service's hot lock saw: how long each acquisition waited (an
//! HDR histogram per thread, merged when read), how many holds there were,
//! and how many lasted longer than a threshold (a holder preempted, most
//! likely: the hold's own work is a few µs).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;

type Hist = Arc<parking_lot::Mutex<Histogram<u64>>>;

/// Every thread's wait histogram (nanoseconds), registered on first use.
static THREADS: Mutex<Vec<Hist>> = Mutex::new(Vec::new());
static HOLDS: AtomicU64 = AtomicU64::new(0);
static PREEMPTED: AtomicU64 = AtomicU64::new(0);

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("constant bounds are valid")
}

thread_local! {
    static MINE: Hist = {
        let h: Hist = Arc::new(parking_lot::Mutex::new(new_hist()));
        THREADS.lock().unwrap_or_else(|p| p.into_inner()).push(h.clone());
        h
    };
}

/// Record one hold: it waited `wait` for the lock and held it `held`; a
/// hold over `preempted` counts as preempted.
pub fn record(wait: Duration, held: Duration, preempted: Duration) {
    let ns = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX).max(1);
    MINE.with(|h| h.lock().saturating_record(ns));
    HOLDS.fetch_add(1, Relaxed);
    if held > preempted {
        PREEMPTED.fetch_add(1, Relaxed);
    }
}

/// The counters so far, as JSON: `lock_wait_ns` (`count`, `p50`, `p99`,
/// `p999`, `max`), `holds`, `preempted_holds`.
pub fn snapshot() -> serde_json::Value {
    let mut all = new_hist();
    for h in THREADS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = all.add(&*h.lock());
    }
    let q = |p: f64| all.value_at_quantile(p);
    serde_json::json!({
        "lock_wait_ns": {
            "count": all.len(),
            "p50": q(0.5),
            "p99": q(0.99),
            "p999": q(0.999),
            "max": all.max(),
        },
        "holds": HOLDS.load(Relaxed),
        "preempted_holds": PREEMPTED.load(Relaxed),
    })
}
