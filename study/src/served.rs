//! What the service itself saw of each request: the time from the moment
//! its handler got the parsed request to the moment the answer was handed
//! back for writing (an HDR histogram of µs per thread, merged when read).
//! Beside the client's latency it tells the service's own share from the
//! waits outside it (the socket, the client's CPU, the run queue before the
//! request was read).

use std::time::Duration;

use crate::perthread::{PerThread, quantiles};
use crate::report::encode_hist;

/// Every thread's histogram (µs).
static SERVED: PerThread = PerThread::new(60_000_000);

/// Record one request that took `d` inside the service.
pub fn record(d: Duration) {
    SERVED.record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
}

/// Every request so far, as JSON: `served_us` (`count`, `p50`, `p99`,
/// `p999`, `max`) and `served_hist` (the histogram, for differences
/// between two snapshots: [`crate::report::decode_hist`]).
pub fn snapshot() -> serde_json::Value {
    let all = SERVED.merged();
    serde_json::json!({
        "served_us": quantiles(&all),
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
