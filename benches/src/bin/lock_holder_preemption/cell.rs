//! One cell: T threads on one lock for a while, and what they measured.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rseq_slice_core::SliceStats;
use rseq_slice_core::diagnostics::KernelStats;
use rustix::thread::{CpuSet, sched_setaffinity};

use crate::lock::Lock;
use crate::{Cli, Kind, Result, Variant};

/// The time-stamp counter, calibrated against `Instant`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub(crate) ticks_per_us: f64,
}

impl Clock {
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(crate) fn now() -> u64 {
        // SAFETY: rdtsc has no preconditions on x86_64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    pub(crate) fn now() -> u64 {
        use std::sync::OnceLock;
        static BASE: OnceLock<Instant> = OnceLock::new();
        BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    /// Ticks per µs, measured over 100 ms (outside every section).
    pub(crate) fn calibrate() -> Clock {
        let (t0, c0) = (Instant::now(), Clock::now());
        std::thread::sleep(Duration::from_millis(100));
        let (c1, dt) = (Clock::now(), t0.elapsed());
        Clock {
            ticks_per_us: (c1 - c0) as f64 / (dt.as_nanos() as f64 / 1000.0),
        }
    }

    pub(crate) fn ticks(&self, ns: u64) -> u64 {
        (ns as f64 * self.ticks_per_us / 1000.0) as u64
    }

    pub(crate) fn ns(&self, ticks: u64) -> u64 {
        (ticks as f64 * 1000.0 / self.ticks_per_us) as u64
    }

    #[inline(always)]
    pub(crate) fn spin_until(end: u64) {
        while Clock::now() < end {
            std::hint::spin_loop();
        }
    }
}

/// What one cell measured.
#[derive(Debug)]
pub(crate) struct Cell {
    pub(crate) kind: Kind,
    pub(crate) variant: Variant,
    pub(crate) threads: usize,
    pub(crate) rep: usize,
    pub(crate) secs: f64,
    /// From the last operation to the last join: thread exit, and any delay in
    /// waking the joiner.
    pub(crate) join_ms: f64,
    pub(crate) ops: u64,
    pub(crate) hist: Histogram<u64>,
    pub(crate) preempted: u64,
    pub(crate) stats: SliceStats,
    pub(crate) kernel: Option<KernelStats>,
}

impl Cell {
    pub(crate) fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    pub(crate) fn q(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }
}

struct Worker {
    /// When it left the start barrier, before its first operation.
    start: Instant,
    /// When it saw `stop`, after its last operation.
    end: Instant,
    ops: u64,
    hist: Histogram<u64>,
    preempted: u64,
    stats: SliceStats,
}

pub(crate) fn run_cell(
    cli: &Cli,
    clock: Clock,
    lock: Arc<dyn Lock>,
    threads: usize,
) -> Result<Cell> {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(threads + 1));
    let section = clock.ticks(cli.section_ns);
    let outside = clock.ticks(cli.outside_ns);
    let preempted_after = clock.ticks(cli.preempted_us * 1000);
    let pin = cli.pin;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (lock, stop, start) = (lock.clone(), stop.clone(), start.clone());
            std::thread::spawn(move || -> Result<Worker> {
                if let Some(cpu) = pin {
                    pin_to(cpu)?;
                }
                // Off or on, every variant runs registered: only requests differ.
                let _ = rseq_slice_core::init();
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
                let (mut ops, mut preempted) = (0u64, 0u64);
                start.wait();
                let first = Instant::now();
                let before = rseq_slice_core::stats();
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Clock::now();
                    let mut held = 0;
                    lock.locked(&mut || {
                        let ta = Clock::now();
                        Clock::spin_until(ta + section);
                        held = Clock::now() - ta;
                    });
                    let t1 = Clock::now();
                    hist.saturating_record(clock.ns(t1 - t0).max(1));
                    preempted += u64::from(held > preempted_after);
                    ops += 1;
                    Clock::spin_until(t1 + outside);
                }
                Ok(Worker {
                    start: first,
                    end: Instant::now(),
                    ops,
                    hist,
                    preempted,
                    stats: rseq_slice_core::stats() - before,
                })
            })
        })
        .collect();
    let k0 = KernelStats::read().ok();
    start.wait();
    std::thread::sleep(Duration::from_millis(cli.cell_ms));
    stop.store(true, Ordering::Relaxed);
    // The cell spans the workers' own clocks: from the first one's start to
    // the last one's last operation. Not the main thread's: among 16N
    // spinning threads it can run milliseconds after the barrier released
    // them (one cell counted 855k ops/s, over the 500k a 2 µs section
    // allows), and its join has once woken seconds late in virtual time
    // (`join_ms` records that gap).
    let mut t0: Option<Instant> = None;
    let mut end: Option<Instant> = None;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let (mut ops, mut preempted, mut stats) = (0, 0, SliceStats::default());
    let mut failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok(w)) => {
                t0 = Some(t0.map_or(w.start, |t| t.min(w.start)));
                end = Some(end.map_or(w.end, |t| t.max(w.end)));
                ops += w.ops;
                preempted += w.preempted;
                stats = stats + w.stats;
                hist.add(&w.hist)?;
            }
            Ok(Err(e)) => failure = Some(e.to_string()),
            Err(_) => failure = Some("a worker panicked".into()),
        }
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    let (Some(t0), Some(end)) = (t0, end) else {
        return Err("a cell needs at least one thread".into());
    };
    let secs = (end - t0).as_secs_f64();
    let join_ms = end.elapsed().as_secs_f64() * 1000.0;
    let kernel = KernelStats::read().ok().zip(k0).map(|(a, b)| a.since(b));
    Ok(Cell {
        kind: Kind::Spin,
        variant: Variant::Off,
        threads,
        rep: 0,
        secs,
        join_ms,
        ops,
        hist,
        preempted,
        stats,
        kernel,
    })
}

pub(crate) fn pin_to(cpu: usize) -> Result<()> {
    if cpu >= CpuSet::MAX_CPU {
        return Err(format!("CPU {cpu} out of range").into());
    }
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set).map_err(|e| format!("pinning to CPU {cpu}: {e}").into())
}
