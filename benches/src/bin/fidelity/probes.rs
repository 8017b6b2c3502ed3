//! The measurements behind the checks: a cross-CPU ping-pong, a small
//! open-loop service, each vCPU's speed, and how equal hogs share a CPU.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::sched::{Batch, Hogs, pin, pin_set};

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// A ping-pong's shared state.
struct Court {
    base: Instant,
    /// Whose turn it is (0 or 1).
    turn: AtomicU64,
    /// When the turn was handed over, ns after `base` (0: not yet).
    sent_ns: AtomicU64,
    done: AtomicBool,
}

/// One-way wake-up latencies (ns) of a ping-pong between a thread on `a`
/// and one on `b`, for `d`: each side parks until the other unparks it.
pub(crate) fn ping_pong(a: usize, b: usize, d: Duration) -> Histogram<u64> {
    let court = Arc::new(Court {
        base: Instant::now(),
        turn: AtomicU64::new(0),
        sent_ns: AtomicU64::new(0),
        done: AtomicBool::new(false),
    });
    let (tx, rx) = std::sync::mpsc::channel::<std::thread::Thread>();
    let cb = court.clone();
    let hb = std::thread::spawn(move || match rx.recv() {
        Ok(peer) => play(1, b, &cb, &peer, d),
        Err(_) => histogram(),
    });
    let b_thread = hb.thread().clone();
    let ha = std::thread::spawn(move || play(0, a, &court, &b_thread, d));
    let _ = tx.send(ha.thread().clone());
    let mut h = ha.join().unwrap_or_else(|_| histogram());
    if let Ok(other) = hb.join() {
        let _ = h.add(other);
    }
    h
}

/// One side of the ping-pong: `me` (0 or 1) on `cpu`, `peer` the other side.
fn play(me: u64, cpu: usize, c: &Court, peer: &std::thread::Thread, d: Duration) -> Histogram<u64> {
    pin(cpu);
    let now_ns = || c.base.elapsed().as_nanos() as u64;
    let mut h = histogram();
    loop {
        while c.turn.load(Ordering::Acquire) != me {
            if c.done.load(Ordering::Acquire) {
                return h;
            }
            std::thread::park_timeout(Duration::from_millis(100));
        }
        let sent = c.sent_ns.load(Ordering::Relaxed);
        if sent > 0 {
            let _ = h.record(now_ns().saturating_sub(sent).max(1));
        }
        if me == 0 && c.base.elapsed() > d {
            c.done.store(true, Ordering::Release);
            peer.unpark();
            return h;
        }
        c.sent_ns.store(now_ns(), Ordering::Relaxed);
        c.turn.store(1 - me, Ordering::Release);
        peer.unpark();
    }
}

/// What one service run measured.
pub(crate) struct Served {
    /// From each request's scheduled arrival to its answer, ns.
    pub(crate) latency: Histogram<u64>,
    pub(crate) offered: u64,
    /// Requests answered by the end of the offered load (plus 10 ms): a run
    /// that answers fewer than it was offered fell behind and measures its
    /// queue. Later answers (the drain) still count in `latency`.
    pub(crate) answered: u64,
}

/// The service's queue: requests by their scheduled arrival.
type Queue = Arc<(Mutex<VecDeque<Instant>>, Condvar)>;

/// `workers` nice-0 threads (on `cpus`; empty: the creator's) that take requests from `queue` and
/// spin `work` on each, until `stop` and an empty queue. Each returns the
/// latencies (from the scheduled arrival) of requests due from `warm` on,
/// and how many of those it answered by `end`.
fn spawn_workers(
    queue: &Queue,
    stop: &Arc<AtomicBool>,
    work: Duration,
    (workers, cpus): (usize, &[usize]),
    (warm, end): (Instant, Instant),
) -> Vec<std::thread::JoinHandle<(Histogram<u64>, u64)>> {
    (0..workers)
        .map(|_| {
            let (queue, stop, cpus) = (queue.clone(), stop.clone(), cpus.to_vec());
            std::thread::spawn(move || {
                pin_set(&cpus);
                let mut h = histogram();
                let mut answered = 0u64;
                loop {
                    let next = {
                        let (q, cv) = &*queue;
                        let mut q = q.lock().unwrap_or_else(|p| p.into_inner());
                        loop {
                            if let Some(t) = q.pop_front() {
                                break Some(t);
                            }
                            if stop.load(Ordering::Relaxed) {
                                break None;
                            }
                            q = cv
                                .wait_timeout(q, Duration::from_millis(50))
                                .unwrap_or_else(|p| p.into_inner())
                                .0;
                        }
                    };
                    let Some(due) = next else {
                        return (h, answered);
                    };
                    let t = Instant::now();
                    while t.elapsed() < work {
                        std::hint::spin_loop();
                    }
                    if due >= warm {
                        let _ = h.record(due.elapsed().as_nanos().max(1) as u64);
                        answered += u64::from(Instant::now() <= end);
                    }
                }
            })
        })
        .collect()
}

/// An open-loop service: a generator schedules `rate` requests a second
/// and `workers` threads answer them ([`spawn_workers`]); latency counts
/// from the scheduled arrival, so a late generator counts too. `d` long,
/// the first tenth discarded. The generator runs on `client` (none: where
/// the caller runs), the workers on `cpus` (empty: the caller's CPUs).
pub(crate) fn service(
    rate: f64,
    work: Duration,
    (workers, cpus): (usize, &[usize]),
    client: Option<usize>,
    d: Duration,
) -> Served {
    let queue: Queue = Arc::new((Mutex::new(VecDeque::new()), Condvar::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let warm = start + d / 10;
    let end = start + d + Duration::from_millis(10);
    let pool = spawn_workers(&queue, &stop, work, (workers, cpus), (warm, end));
    if let Some(c) = client {
        pin(c);
    }
    let gap = Duration::from_secs_f64(1.0 / rate);
    let mut offered = 0u64;
    let mut due = start;
    while due < start + d {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let (q, cv) = &*queue;
        q.lock().unwrap_or_else(|p| p.into_inner()).push_back(due);
        cv.notify_one();
        if due >= warm {
            offered += 1;
        }
        due += gap;
    }
    // Let the queue drain (at most `d` more), then stop the workers.
    let drain = Instant::now();
    while !queue.0.lock().unwrap_or_else(|p| p.into_inner()).is_empty() && drain.elapsed() < d {
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    queue.1.notify_all();
    let mut latency = histogram();
    let mut answered = 0;
    for w in pool {
        if let Ok((h, n)) = w.join() {
            let _ = latency.add(h);
            answered += n;
        }
    }
    Served {
        latency,
        offered,
        answered,
    }
}

/// Requests a second the service's workers answer flat out, on this
/// platform with its own per-request cost: a queue filled in advance with
/// about `d` of nominal work, drained.
pub(crate) fn capacity(work: Duration, (workers, cpus): (usize, &[usize]), d: Duration) -> f64 {
    let n = (d.as_secs_f64() * workers as f64 / work.as_secs_f64()) as usize;
    let now = Instant::now();
    let queue: Queue = Arc::new((Mutex::new(vec![now; n].into()), Condvar::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let far = now + Duration::from_secs(3600);
    let pool = spawn_workers(&queue, &stop, work, (workers, cpus), (far, far));
    let t = Instant::now();
    queue.1.notify_all();
    while !queue.0.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    queue.1.notify_all();
    for w in pool {
        let _ = w.join();
    }
    n as f64 / secs
}

/// Work units a second that one thread pinned to each CPU in `cpus` does,
/// all of them at once, for `d`.
pub(crate) fn speed(cpus: &[usize], d: Duration) -> Vec<f64> {
    let go = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = cpus
        .iter()
        .map(|&c| {
            let go = go.clone();
            std::thread::spawn(move || {
                pin(c);
                while !go.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                let t = Instant::now();
                let mut units = 0u64;
                let mut x = 1u64;
                while t.elapsed() < d {
                    for _ in 0..1000 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                    units += 1;
                }
                units as f64 / t.elapsed().as_secs_f64()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    go.store(true, Ordering::Release);
    threads
        .into_iter()
        .map(|h| h.join().unwrap_or(0.0))
        .collect()
}

/// Two nice-0 hogs pinned to each CPU for `d`: the smaller one's CPU time
/// over the larger's, the worst CPU's.
pub(crate) fn equal_share(cpus: usize, d: Duration) -> f64 {
    let pairs: Vec<Hogs> = (0..cpus)
        .map(|c| Hogs::start(2, Batch::Nice0, &[c]))
        .collect();
    std::thread::sleep(d);
    pairs
        .into_iter()
        .map(|p| {
            let t = p.stop();
            let (a, b) = (t[0].as_secs_f64(), t[1].as_secs_f64());
            if a.max(b) > 0.0 {
                a.min(b) / a.max(b)
            } else {
                0.0
            }
        })
        .fold(1.0, f64::min)
}
