//! How long a spinning waiter on one CPU takes to see a store from another:
//! a cache-line ping-pong with no system call, the hand-off every contended
//! lock makes. About 0.1 µs on hardware; in a virtual-time guest, where the
//! vCPUs take turns, it is the rest of the storing vCPU's turn.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::sched::pin;

/// One-way hand-off latencies (ns) between a thread spinning on `a` and
/// one on `b`, for `d`: each side stores the time and the turn; the other,
/// spinning on the turn, records how long it took to see it.
pub(crate) fn handoff(a: usize, b: usize, d: Duration) -> Histogram<u64> {
    let base = Instant::now();
    // `turn` holds the side whose turn it is and `sent` when it was handed.
    let turn = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let side = |me: u64, cpu: usize| {
        let (turn, sent, done) = (turn.clone(), sent.clone(), done.clone());
        std::thread::spawn(move || {
            pin(cpu);
            let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
            let now = || base.elapsed().as_nanos() as u64;
            loop {
                while turn.load(Ordering::Acquire) != me {
                    if done.load(Ordering::Relaxed) {
                        return h;
                    }
                    std::hint::spin_loop();
                }
                let at = sent.load(Ordering::Relaxed);
                if at > 0 {
                    let _ = h.record(now().saturating_sub(at).max(1));
                }
                if base.elapsed() > d {
                    done.store(true, Ordering::Relaxed);
                    return h;
                }
                sent.store(now(), Ordering::Relaxed);
                turn.store(1 - me, Ordering::Release);
            }
        })
    };
    let (ha, hb) = (side(0, a), side(1, b));
    let mut h = ha
        .join()
        .unwrap_or_else(|_| Histogram::new(3).expect("valid"));
    if let Ok(other) = hb.join() {
        let _ = h.add(other);
    }
    h
}
