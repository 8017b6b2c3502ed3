//! What the service's hot lock saw: how long each acquisition waited and
//! each hold lasted (HDR histograms per thread, merged when read), how many
//! holds there were, and how many lasted longer than a threshold (a holder
//! preempted, most likely: the hold's own work is a few µs).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::perthread::{PerThread, quantiles};

/// Every thread's wait histogram (nanoseconds).
static WAITS: PerThread = PerThread::new(60_000_000_000);
/// Every thread's hold histogram (nanoseconds).
static HELD: PerThread = PerThread::new(60_000_000_000);
static HOLDS: AtomicU64 = AtomicU64::new(0);
static PREEMPTED: AtomicU64 = AtomicU64::new(0);

/// Record one hold: it waited `wait` for the lock and held it `held`; a
/// hold over `preempted` counts as preempted.
pub fn record(wait: Duration, held: Duration, preempted: Duration) {
    WAITS.record(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX));
    HELD.record(u64::try_from(held.as_nanos()).unwrap_or(u64::MAX));
    HOLDS.fetch_add(1, Relaxed);
    if held > preempted {
        PREEMPTED.fetch_add(1, Relaxed);
    }
}

/// The counters so far, as JSON: `lock_wait_ns` and `lock_hold_ns`
/// (`count`, `p50`, `p99`, `p999`, `max`), `holds`, `preempted_holds`.
pub fn snapshot() -> serde_json::Value {
    serde_json::json!({
        "lock_wait_ns": quantiles(&WAITS.merged()),
        "lock_hold_ns": quantiles(&HELD.merged()),
        "holds": HOLDS.load(Relaxed),
        "preempted_holds": PREEMPTED.load(Relaxed),
    })
}
