//! The lock-holder-preemption benchmark: T threads on one lock, a short
//! critical section defined in wall time, each lock kind with and without
//! the time slice extension. Prints a table, writes `locks.csv` and
//! `locks.png` (ops/s and p99.9 acquire-to-release against threads).
//!
//! Sections spin on the TSC (calibrated against `Instant` before any cell),
//! so they mean the same wall time under emulation and make no system call
//! (a system call inside a grant would end it).

mod cell;
mod lock;
mod plot;
mod report;
mod summary;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rseq_slice_lab::Conditions;

use cell::{Clock, pin_to, run_cell};
use lock::make;
use report::{CsvOut, print_table, summarize};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser, Debug)]
#[command(
    about = "Lock-holder preemption: each lock with and without the rseq time slice extension",
    args_override_self = true
)]
struct Cli {
    /// Thread counts, one cell each (1-4096).
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set, default_values_t = [1, 2, 4, 8, 16], value_parser = clap::value_parser!(u16).range(1..=4096))]
    threads: Vec<u16>,
    /// Lock kinds.
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set, default_values_t = [Kind::Spin, Kind::ParkingLot, Kind::Std])]
    kinds: Vec<Kind>,
    /// Variants (a kind without one skips it: `std` has no adaptive).
    /// `off`, `always` and `adaptive` request while the lock is held (the
    /// spinlock: clear-and-recheck); `naive` requests from before locking
    /// to after unlocking, waiting included (the spinlock only, by default
    /// of `--naive-kinds`).
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set, default_values_t = [Variant::Off, Variant::Always, Variant::Naive])]
    variants: Vec<Variant>,
    /// The kinds that get the `naive` variant.
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set, default_values_t = [Kind::Spin])]
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
    /// Run nothing: condense these runs' `locks.csv` files into one markdown
    /// table and `summary.png` (speed-ups against threads, a panel per vCPU
    /// count and `slice_ext_nsec`) under `--out`.
    #[arg(long, num_args = 1.., value_name = "CSV")]
    summarize: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Kind {
    /// rseq-slice's clear-and-recheck spinlock (`RawSpin`).
    Spin,
    /// parking_lot 0.13 (lock_api 0.5) wrapped in `WithSlice`.
    ParkingLot,
    /// spin 0.12's mutex (lock_api 0.4) wrapped in `WithSlice`.
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

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("lock_holder_preemption: error: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    if !cli.summarize.is_empty() {
        std::fs::create_dir_all(&cli.out)?;
        return summary::run(&cli.summarize, &cli.out.join("summary.png"));
    }
    let on = rseq_slice_core::init();
    if cli.probe {
        match on {
            Ok(r) => println!("lock_holder_preemption: extension on ({r:?})"),
            Err(why) => println!("lock_holder_preemption: extension OFF: {why}"),
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
    println!("lock_holder_preemption: conditions: {conditions}");
    if let Some(w) = conditions.warning() {
        eprintln!("lock_holder_preemption: {w}");
    }
    println!(
        "lock_holder_preemption: TSC {:.1} ticks/µs; section {} ns, outside {} ns, cell {} ms x {} repeats; adaptive window {}",
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
    plot::plot(&png, &rows, &cli.kinds, &conditions)?;
    println!(
        "lock_holder_preemption: wrote {} and {}",
        csv.display(),
        png.display()
    );
    Ok(())
}
