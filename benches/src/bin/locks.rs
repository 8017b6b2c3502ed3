//! The lock-holder-preemption benchmark: T threads on one lock, a short
//! critical section defined in wall time, each lock kind with and without
//! the time slice extension. Prints a table, writes `locks.csv` and
//! `locks.png` (ops/s and p99.9 acquire-to-release against threads).
//!
//! Sections spin on the TSC (calibrated against `Instant` before any cell),
//! so they mean the same wall time under emulation and make no system call
//! (a system call inside a grant would end it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rseq_slice_core::{
    KernelStats, Policy, RawSlice, RawSpin, SliceMutex, SliceMutex04, SliceStats, SpinMutex,
    StdMutexExt,
};
use rseq_slice_lab::{Conditions, median};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser, Debug)]
#[command(
    about = "Lock-holder preemption: each lock with and without the rseq time slice extension",
    args_override_self = true
)]
struct Cli {
    /// Thread counts, one cell each (1-4096).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4, 8, 16], value_parser = clap::value_parser!(u16).range(1..=4096))]
    threads: Vec<u16>,
    /// Lock kinds.
    #[arg(long, value_delimiter = ',', default_values_t = [Kind::Spin, Kind::ParkingLot, Kind::Std])]
    kinds: Vec<Kind>,
    /// Variants (a kind without one skips it: `std` has no adaptive).
    /// `off`, `always` and `adaptive` request while the lock is held (the
    /// spinlock: clear-and-recheck); `naive` requests from before locking
    /// to after unlocking, waiting included (the spinlock only, by default
    /// of `--naive-kinds`).
    #[arg(long, value_delimiter = ',', default_values_t = [Variant::Off, Variant::Always, Variant::Naive])]
    variants: Vec<Variant>,
    /// The kinds that get the `naive` variant.
    #[arg(long, value_delimiter = ',', default_values_t = [Kind::Spin])]
    naive_kinds: Vec<Kind>,
    /// Time of one cell, milliseconds (1-600000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    cell_ms: u64,
    /// Repetitions of the whole grid (variants alternate cell by cell; 1-100).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=100))]
    repeats: u16,
    /// Critical section, nanoseconds (1-10000000).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    section_ns: u64,
    /// Work between sections, nanoseconds (0-10000000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    outside_ns: u64,
    /// A hold longer than this (µs) counts as a lock-holder preemption.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=60_000_000))]
    preempted_us: u64,
    /// The adaptive variant's window (acquisitions that keep requesting after
    /// a contended one).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    window: u32,
    /// Pin every thread to this CPU (default: no pinning).
    #[arg(long)]
    pin: Option<usize>,
    /// Output directory for locks.csv and locks.png.
    #[arg(long, default_value = "out/locks")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Only say whether this thread gets the extension: exit 0 if so, 3 if not.
    #[arg(long)]
    probe: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Kind {
    /// rseq-slice's clear-and-recheck spinlock (`RawSpin`).
    Spin,
    /// parking_lot 0.13 (lock_api 0.5) wrapped in `RawSlice`.
    ParkingLot,
    /// spin 0.12's mutex (lock_api 0.4) wrapped in `RawSlice`.
    SpinCrate,
    /// std::sync::Mutex with `lock_slice`.
    Std,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Variant {
    /// The lock without the extension.
    Off,
    /// Every acquisition requests.
    Always,
    /// Policy::ADAPTIVE.
    Adaptive,
    /// The published "naive" protocol: the request spans lock, section and
    /// unlock, waiting included (the lock itself requests nothing).
    Naive,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_possible_value() {
            Some(v) => f.write_str(v.get_name()),
            None => f.write_str("?"),
        }
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_possible_value() {
            Some(v) => f.write_str(v.get_name()),
            None => f.write_str("?"),
        }
    }
}

/// One lock under test: run `f` while holding it.
trait Lock: Send + Sync {
    fn locked(&self, f: &mut dyn FnMut());
}

impl Lock for SpinMutex<()> {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _g = self.lock();
        f()
    }
}
impl Lock for parking_lot::Mutex<()> {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _g = self.lock();
        f()
    }
}
impl Lock for SliceMutex<parking_lot::RawMutex, ()> {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _g = self.lock();
        f()
    }
}
impl Lock for spin::Mutex<()> {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _g = self.lock();
        f()
    }
}
impl Lock for SliceMutex04<spin::Mutex<()>, ()> {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _g = self.lock();
        f()
    }
}
impl Lock for std::sync::Mutex<()> {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _g = self.lock().unwrap_or_else(|p| p.into_inner());
        f()
    }
}
/// Any lock under one `SliceGuard` from before locking to after unlocking.
struct Naive(Arc<dyn Lock>);
impl Lock for Naive {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _s = rseq_slice_core::SliceGuard::new();
        self.0.locked(f)
    }
}

/// std's mutex through `lock_slice`.
struct StdSlice(std::sync::Mutex<()>);
impl Lock for StdSlice {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _g = self.0.lock_slice().unwrap_or_else(|p| p.into_inner());
        f()
    }
}

/// The lock for a cell; `None` for a combination that does not exist.
fn make(kind: Kind, variant: Variant, window: u32) -> Option<Arc<dyn Lock>> {
    let policy = match variant {
        Variant::Off => Policy::Never,
        Variant::Always => Policy::Always,
        Variant::Adaptive => Policy::Adaptive { window },
        Variant::Naive => return Some(Arc::new(Naive(make(kind, Variant::Off, window)?))),
    };
    let pl = || <parking_lot::RawMutex as lock_api::RawMutex>::INIT;
    // spin's `Mutex<()>` is its own raw lock for lock_api 0.4.
    let sp = || spin::Mutex::new(());
    Some(match (kind, variant) {
        (Kind::Spin, _) => Arc::new(SpinMutex::from_raw(RawSpin::new(policy), ())),
        (Kind::ParkingLot, Variant::Off) => Arc::new(parking_lot::Mutex::new(())),
        (Kind::ParkingLot, _) => Arc::new(SliceMutex::from_raw(RawSlice::new(pl(), policy), ())),
        (Kind::SpinCrate, Variant::Off) => Arc::new(spin::Mutex::new(())),
        (Kind::SpinCrate, _) => Arc::new(SliceMutex04::from_raw(RawSlice::new(sp(), policy), ())),
        (Kind::Std, Variant::Off) => Arc::new(std::sync::Mutex::new(())),
        (Kind::Std, Variant::Always) => Arc::new(StdSlice(std::sync::Mutex::new(()))),
        (Kind::Std, Variant::Adaptive | Variant::Naive) => return None,
    })
}

/// The time-stamp counter, calibrated against `Instant`.
#[derive(Clone, Copy, Debug)]
struct Clock {
    ticks_per_us: f64,
}

impl Clock {
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn now() -> u64 {
        // SAFETY: rdtsc has no preconditions on x86_64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    fn now() -> u64 {
        use std::sync::OnceLock;
        static BASE: OnceLock<Instant> = OnceLock::new();
        BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    /// Ticks per µs, measured over 100 ms (outside every section).
    fn calibrate() -> Clock {
        let (t0, c0) = (Instant::now(), Clock::now());
        std::thread::sleep(Duration::from_millis(100));
        let (c1, dt) = (Clock::now(), t0.elapsed());
        Clock {
            ticks_per_us: (c1 - c0) as f64 / (dt.as_nanos() as f64 / 1000.0),
        }
    }

    fn ticks(&self, ns: u64) -> u64 {
        (ns as f64 * self.ticks_per_us / 1000.0) as u64
    }

    fn ns(&self, ticks: u64) -> u64 {
        (ticks as f64 * 1000.0 / self.ticks_per_us) as u64
    }

    #[inline(always)]
    fn spin_until(end: u64) {
        while Clock::now() < end {
            std::hint::spin_loop();
        }
    }
}

/// What one cell measured.
#[derive(Debug)]
struct Cell {
    kind: Kind,
    variant: Variant,
    threads: usize,
    rep: usize,
    secs: f64,
    ops: u64,
    hist: Histogram<u64>,
    preempted: u64,
    stats: SliceStats,
    kernel: Option<KernelStats>,
}

impl Cell {
    fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    fn q(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }
}

struct Worker {
    ops: u64,
    hist: Histogram<u64>,
    preempted: u64,
    stats: SliceStats,
}

fn run_cell(cli: &Cli, clock: Clock, lock: Arc<dyn Lock>, threads: usize) -> Result<Cell> {
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
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(cli.cell_ms));
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let (mut ops, mut preempted, mut stats) = (0, 0, SliceStats::default());
    let mut failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok(w)) => {
                ops += w.ops;
                preempted += w.preempted;
                stats = stats + w.stats;
                hist.add(&w.hist)?;
            }
            Ok(Err(e)) => failure = Some(e.to_string()),
            Err(_) => failure = Some("a worker panicked".into()),
        }
    }
    // The stop flag is seen within one section: the cell's time ends here.
    let secs = t0.elapsed().as_secs_f64();
    if let Some(e) = failure {
        return Err(e.into());
    }
    let kernel = KernelStats::read().ok().zip(k0).map(|(a, b)| a.since(b));
    Ok(Cell {
        kind: Kind::Spin,
        variant: Variant::Off,
        threads,
        rep: 0,
        secs,
        ops,
        hist,
        preempted,
        stats,
        kernel,
    })
}

fn pin_to(cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET is bounds-checked
    // by the caller's choice below CPU_SETSIZE.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(format!("CPU {cpu} out of range").into());
        }
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("pinning to CPU {cpu}: {}", std::io::Error::last_os_error()).into())
    }
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("locks: error: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let on = rseq_slice_core::init();
    if cli.probe {
        match on {
            Ok(r) => println!("locks: extension on ({r:?})"),
            Err(why) => println!("locks: extension OFF: {why}"),
        }
        std::process::exit(if on.is_ok() { 0 } else { 3 });
    }
    if let Some(cpu) = cli.pin {
        // A worker that cannot pin would leave the others at the start barrier.
        std::thread::spawn(move || pin_to(cpu))
            .join()
            .map_err(|_| "pin check panicked")??;
    }
    std::fs::create_dir_all(&cli.out)?;
    let conditions = Conditions::detect();
    let clock = Clock::calibrate();
    println!("locks: conditions: {conditions}");
    println!(
        "locks: TSC {:.1} ticks/µs; section {} ns, outside {} ns, cell {} ms x {} repeats; adaptive window {}",
        clock.ticks_per_us, cli.section_ns, cli.outside_ns, cli.cell_ms, cli.repeats, cli.window
    );
    let mut plan = Vec::new();
    for rep in 0..usize::from(cli.repeats) {
        for &t in &cli.threads {
            for &k in &cli.kinds {
                for &v in &cli.variants {
                    let wanted = v != Variant::Naive || cli.naive_kinds.contains(&k);
                    if wanted && make(k, v, cli.window).is_some() {
                        plan.push((rep, usize::from(t), k, v));
                    }
                }
            }
        }
    }
    let bar = if cli.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(plan.len() as u64).with_style(
            ProgressStyle::default_bar()
                .template("{elapsed_precise} [{bar:30}] {pos}/{len} cells, ETA {eta} {msg}")?,
        )
    };
    // Rows go to the CSV as cells finish: an interrupted run keeps them.
    let csv = cli.out.join("locks.csv");
    let mut rows_out = CsvOut::create(&csv, &conditions, &cli)?;
    let mut cells = Vec::new();
    for (rep, threads, kind, variant) in plan {
        bar.set_message(format!("{kind} {variant} x{threads}"));
        let lock = make(kind, variant, cli.window).ok_or("no such lock")?;
        let mut c = run_cell(&cli, clock, lock, threads)?;
        (c.kind, c.variant, c.rep) = (kind, variant, rep);
        rows_out.write(&c)?;
        cells.push(c);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let rows = summarize(&cells);
    print_table(&rows, &cli, &conditions);
    let png = cli.out.join("locks.png");
    plot(&png, &rows, &cli.kinds, &conditions)?;
    println!("locks: wrote {} and {}", csv.display(), png.display());
    Ok(())
}

/// `locks.csv`, one row a cell, flushed as each cell ends.
struct CsvOut {
    w: csv::Writer<std::fs::File>,
    fixed: Vec<String>,
}

impl CsvOut {
    fn create(path: &Path, conditions: &Conditions, cli: &Cli) -> Result<CsvOut> {
        let mut w = csv::Writer::from_path(path)?;
        let cols = conditions.columns();
        let mut header = vec![
            "kind",
            "variant",
            "threads",
            "rep",
            "secs",
            "ops",
            "ops_per_s",
            "p50_ns",
            "p99_ns",
            "p999_ns",
            "max_ns",
            "preempted_holds",
            "requested",
            "granted",
            "yielded",
            "revoked",
            "cleared",
            "k_sgrant",
            "k_syield",
            "k_srevok",
            "k_sexpir",
            "section_ns",
            "outside_ns",
        ];
        header.extend(cols.iter().map(|(name, _)| *name));
        w.write_record(&header)?;
        w.flush()?;
        let mut fixed = vec![cli.section_ns.to_string(), cli.outside_ns.to_string()];
        fixed.extend(cols.into_iter().map(|(_, v)| v));
        Ok(CsvOut { w, fixed })
    }

    fn write(&mut self, c: &Cell) -> Result<()> {
        let k = c
            .kernel
            .map(|k| [k.granted, k.yielded, k.revoked, k.expired]);
        let k = |i: usize| k.map_or(String::new(), |k| k[i].to_string());
        let mut row = vec![
            c.kind.to_string(),
            c.variant.to_string(),
            c.threads.to_string(),
            c.rep.to_string(),
            format!("{:.4}", c.secs),
            c.ops.to_string(),
            format!("{:.0}", c.ops_per_s()),
            c.q(0.5).to_string(),
            c.q(0.99).to_string(),
            c.q(0.999).to_string(),
            c.hist.max().to_string(),
            c.preempted.to_string(),
            c.stats.requested.to_string(),
            c.stats.granted.to_string(),
            c.stats.yielded.to_string(),
            c.stats.revoked.to_string(),
            c.stats.cleared.to_string(),
            k(0),
            k(1),
            k(2),
            k(3),
        ];
        row.extend(self.fixed.iter().cloned());
        self.w.write_record(&row)?;
        self.w.flush()?;
        Ok(())
    }
}

/// Medians over the repeats of one (kind, variant, threads), with the
/// repeats' range of ops/s.
#[derive(Debug, Clone, Copy)]
struct Row {
    ops_per_s: f64,
    ops_min: f64,
    ops_max: f64,
    /// p99.9 of every repeat's acquisitions pooled.
    p999_ns: f64,
    samples: u64,
    preempted: f64,
    granted: f64,
    k_revoked: f64,
    k_expired: f64,
    reps: usize,
}

type Key = (Kind, usize, Variant);

fn summarize(cells: &[Cell]) -> BTreeMap<Key, Row> {
    let mut groups: BTreeMap<Key, Vec<&Cell>> = BTreeMap::new();
    for c in cells {
        groups
            .entry((c.kind, c.threads, c.variant))
            .or_default()
            .push(c);
    }
    groups
        .into_iter()
        .map(|(k, cs)| {
            let m = |f: &dyn Fn(&Cell) -> f64| median(cs.iter().map(|c| f(c)).collect());
            let ops = cs.iter().map(|c| c.ops_per_s());
            let mut pooled = cs[0].hist.clone();
            for c in &cs[1..] {
                // Same bounds everywhere: adding cannot fail.
                let _ = pooled.add(&c.hist);
            }
            let row = Row {
                ops_per_s: m(&|c| c.ops_per_s()),
                ops_min: ops.clone().fold(f64::INFINITY, f64::min),
                ops_max: ops.fold(0.0, f64::max),
                p999_ns: pooled.value_at_quantile(0.999) as f64,
                samples: pooled.len(),
                preempted: m(&|c| c.preempted as f64),
                granted: m(&|c| c.stats.granted as f64),
                k_revoked: m(&|c| c.kernel.map_or(f64::NAN, |k| k.revoked as f64)),
                k_expired: m(&|c| c.kernel.map_or(f64::NAN, |k| k.expired as f64)),
                reps: cs.len(),
            };
            (k, row)
        })
        .collect()
}

/// A median count, or `-` where the kernel's counters were not readable.
fn count(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{x:.0}")
    }
}

fn print_table(rows: &BTreeMap<Key, Row>, cli: &Cli, conditions: &Conditions) {
    println!("\nconditions: {conditions}");
    println!(
        "{:<11} {:>4} {:<9} {:>10} {:>17} {:>7} {:>11} {:>8} {:>7} {:>8} {:>8} {:>7} {:>7}",
        "kind",
        "thr",
        "variant",
        "ops/s",
        "[min-max]",
        "x off",
        "p99.9 µs",
        "samples",
        "x off",
        "preempt",
        "grants",
        "srevok",
        "sexpir"
    );
    for &kind in &cli.kinds {
        for &t in &cli.threads {
            let t = usize::from(t);
            let off = rows.get(&(kind, t, Variant::Off)).copied();
            for &v in &cli.variants {
                let Some(r) = rows.get(&(kind, t, v)) else {
                    continue;
                };
                let ratio = |a: f64, b: Option<f64>| {
                    b.filter(|_| v != Variant::Off)
                        .map_or(String::from("-"), |b| format!("{:.2}", a / b))
                };
                println!(
                    "{:<11} {:>4} {:<9} {:>10.0} {:>17} {:>7} {:>11.1} {:>8} {:>7} {:>8.0} {:>8.0} {:>7} {:>7}",
                    kind.to_string(),
                    t,
                    v.to_string(),
                    r.ops_per_s,
                    format!("[{:.0}-{:.0}]", r.ops_min, r.ops_max),
                    ratio(r.ops_per_s, off.map(|o| o.ops_per_s)),
                    r.p999_ns / 1000.0,
                    r.samples,
                    ratio(r.p999_ns, off.map(|o| o.p999_ns)),
                    r.preempted,
                    r.granted,
                    count(r.k_revoked),
                    count(r.k_expired),
                );
            }
        }
    }
    println!(
        "(medians of {} repeats, ops/s range over them; p99.9 of their pooled acquisitions; preempt = holds over {} µs; grants = sections that found `granted`; srevok/sexpir = the kernel's counts in the cell)",
        rows.values().map(|r| r.reps).max().unwrap_or(0),
        cli.preempted_us
    );
}

fn plot(
    path: &Path,
    rows: &BTreeMap<Key, Row>,
    kinds: &[Kind],
    conditions: &Conditions,
) -> Result<()> {
    use plotters::prelude::*;
    let text = rseq_slice_lab::plot::text_ok();
    let (w, h) = (800u32, 220 * kinds.len().max(1) as u32 + 30);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let body = if text {
        root.titled(
            &format!(
                "one lock, T threads; {} vCPU, {}, slice_ext_nsec {}, rseq_debug {}; red off, blue always, green adaptive, black naive",
                conditions.cpus,
                conditions.clock,
                conditions.slice_ext_nsec,
                u8::from(conditions.rseq_debug)
            ),
            ("sans-serif", 13),
        )?
    } else {
        root.margin(30, 0, 0, 0)
    };
    let panels = body.split_evenly((kinds.len().max(1), 2));
    let colour = |v: Variant| match v {
        Variant::Off => RED,
        Variant::Always => BLUE,
        Variant::Adaptive => GREEN,
        Variant::Naive => BLACK,
    };
    for (i, &kind) in kinds.iter().enumerate() {
        for (j, metric) in ["ops/s", "p99.9 µs"].into_iter().enumerate() {
            let area = &panels[i * 2 + j];
            let series: Vec<(Variant, Vec<(f64, f64)>)> = [
                Variant::Off,
                Variant::Always,
                Variant::Adaptive,
                Variant::Naive,
            ]
            .into_iter()
            .map(|v| {
                let pts = rows
                    .iter()
                    .filter(|((k, _, vv), _)| *k == kind && *vv == v)
                    .map(|((_, t, _), r)| {
                        let y = if j == 0 {
                            r.ops_per_s
                        } else {
                            r.p999_ns / 1000.0
                        };
                        (*t as f64, y.max(1e-3))
                    })
                    .collect();
                (v, pts)
            })
            .filter(|(_, p): &(Variant, Vec<(f64, f64)>)| !p.is_empty())
            .collect();
            let all = series.iter().flat_map(|(_, p)| p.iter());
            let (mut xmax, mut ymin, mut ymax) = (2.0f64, f64::MAX, 0.0f64);
            for &(x, y) in all {
                xmax = xmax.max(x);
                ymin = ymin.min(y);
                ymax = ymax.max(y);
            }
            if ymax <= 0.0 {
                continue;
            }
            let mut b = ChartBuilder::on(area);
            b.margin(8);
            if text {
                b.caption(format!("{kind}: {metric}"), ("sans-serif", 14))
                    .x_label_area_size(22)
                    .y_label_area_size(55);
            }
            let mut chart = b.build_cartesian_2d(
                (1.0f64..xmax).log_scale(),
                (ymin.min(ymax / 4.0) * 0.8..ymax * 1.25).log_scale(),
            )?;
            let mut mesh = chart.configure_mesh();
            mesh.light_line_style(TRANSPARENT);
            if text {
                mesh.x_desc("threads")
                    .label_style(("sans-serif", 11))
                    .x_label_formatter(&|x| format!("{x:.0}"))
                    .y_label_formatter(&|y| {
                        if *y >= 1e4 {
                            format!("{:.0}k", y / 1e3)
                        } else {
                            format!("{y:.0}")
                        }
                    });
            } else {
                mesh.x_labels(0).y_labels(0);
            }
            mesh.draw()?;
            for (v, pts) in series {
                let c = colour(v);
                chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
                chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
            }
        }
    }
    root.present()?;
    Ok(())
}
