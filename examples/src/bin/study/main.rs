//! The tail-latency study: {off, sched, locks} x noise levels x request rates,
//! each cell repeated with the variants alternated, every run a fresh
//! service + noise + open-loop load generator on loopback.
//!
//! Writes `results.csv` (one row per cell and variant: median and min-max),
//! `runs.csv` (every run), `results.json`, `latency.png` and
//! `p999_vs_load.png` under `--out`, and prints a table.

mod plot;

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use rseq_slice_examples::report::LoadReport;
use serde::{Deserialize, Serialize};

#[derive(Parser, Debug, Clone)]
#[command(about = "The tail-latency study: variants x noise x rates, repeated")]
struct Args {
    /// Full matrix: noise 0,1,2; rates 100,200,300,500; 5 repeats of 10 s
    /// (default: noise 0,2; rates 150,300; 3 repeats of 5 s).
    #[arg(long, conflicts_with = "smoke")]
    full: bool,
    /// Smoke run: one rate, noise 0 and 2, one repeat of 1.5 s.
    #[arg(long)]
    smoke: bool,
    /// Request rates (req/s), comma-separated.
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<f64>>,
    /// Noise levels (see the `noise` binary), comma-separated.
    #[arg(long, value_delimiter = ',')]
    noise: Option<Vec<u32>>,
    /// Variants, comma-separated (off, sched, locks).
    #[arg(long, value_delimiter = ',', default_value = "off,sched,locks")]
    variants: Vec<String>,
    /// Repeats of each cell.
    #[arg(long)]
    repeats: Option<u32>,
    /// Seconds of load per run (warm-up included).
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds at the start of each run not recorded.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Service worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Rounds of hashing while a shard lock is held.
    #[arg(long, default_value_t = 400)]
    work: u32,
    /// Cache shards.
    #[arg(long, default_value_t = 4)]
    shards: usize,
    /// Load generator connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Pin everything to this many CPUs (the first the study may use), so
    /// noise and workers contend; 0 leaves affinity alone.
    #[arg(long, default_value_t = 1)]
    cpus: usize,
    /// Output directory.
    #[arg(long, default_value = "out/study")]
    out: PathBuf,
    /// Directory of the service, loadgen and noise binaries (default: this one's).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Where this runs, for the report (the xtask passes the guest's conditions).
    #[arg(long)]
    conditions: Option<String>,
    /// Only redraw the plots from `--out`'s results.json (no runs).
    #[arg(long)]
    replot: bool,
}

/// The matrix after defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Plan {
    rates: Vec<f64>,
    noise: Vec<u32>,
    variants: Vec<String>,
    repeats: u32,
    duration: f64,
    warmup: f64,
    workers: usize,
    work: u32,
    shards: usize,
    connections: usize,
    cpus: usize,
}

impl Plan {
    fn from(a: &Args) -> Plan {
        let (rates, noise, repeats, duration) = if a.smoke {
            (vec![300.0], vec![0, 2], 1, 1.5)
        } else if a.full {
            (vec![100.0, 200.0, 300.0, 500.0], vec![0, 1, 2], 5, 10.0)
        } else {
            (vec![150.0, 300.0], vec![0, 2], 3, 5.0)
        };
        Plan {
            rates: a.rates.clone().unwrap_or(rates),
            noise: a.noise.clone().unwrap_or(noise),
            variants: a.variants.clone(),
            repeats: a.repeats.unwrap_or(repeats).max(1),
            duration: a.duration.unwrap_or(duration),
            warmup: a.warmup,
            workers: a.workers,
            work: a.work,
            shards: a.shards,
            connections: a.connections,
            cpus: a.cpus,
        }
    }
}

/// One run's outcome.
#[derive(Debug, Clone, Serialize)]
struct Run {
    repeat: u32,
    noise: u32,
    rate: f64,
    variant: String,
    report: LoadReport,
}

/// Median, min and max of one metric over a cell's repeats.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Spread {
    med: f64,
    min: f64,
    max: f64,
}

fn spread(mut v: Vec<f64>) -> Spread {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return Spread {
            med: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
        };
    }
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Spread {
        med,
        min: v[0],
        max: v[n - 1],
    }
}

/// One cell and variant, aggregated over the repeats.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cell {
    noise: u32,
    rate: f64,
    variant: String,
    runs: usize,
    throughput: Spread,
    p50: Spread,
    p90: Spread,
    p99: Spread,
    p999: Spread,
    max: Spread,
    /// Median latency at each percentile of the curve.
    curve: Vec<(f64, f64)>,
    slice_granted: Spread,
    errors: u64,
    missing: u64,
}

/// A variant against `off` in one cell (medians).
#[derive(Debug, Clone, Serialize)]
struct Ratio {
    noise: u32,
    rate: f64,
    variant: String,
    p50_ratio: f64,
    p999_ratio: f64,
    throughput_ratio: f64,
}

/// A child that is killed when dropped.
struct Kid(Child, &'static str);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command, what: &'static str) -> Result<Kid> {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; the closure touches nothing else
    // between fork and exec. It makes the child die with the study.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    Ok(Kid(
        cmd.spawn().with_context(|| format!("spawning {what}"))?,
        what,
    ))
}

/// Pin this process (and so its children) to the first `n` CPUs it may use.
fn pin(n: usize) -> Result<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the pointers are to locals.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            bail!("sched_getaffinity: {}", std::io::Error::last_os_error());
        }
        let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect();
        if n == 0 || n >= allowed.len() {
            return Ok(allowed);
        }
        let mut new: libc::cpu_set_t = std::mem::zeroed();
        for &c in &allowed[..n] {
            libc::CPU_SET(c, &mut new);
        }
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &new) != 0 {
            bail!("sched_setaffinity: {}", std::io::Error::last_os_error());
        }
        Ok(allowed[..n].to_vec())
    }
}

fn one_run(
    plan: &Plan,
    bins: &Path,
    logs: &Path,
    tag: &str,
    noise: u32,
    rate: f64,
    variant: &str,
) -> Result<LoadReport> {
    let log = |name: &str| -> Result<std::fs::File> {
        Ok(std::fs::File::create(
            logs.join(format!("{tag}.{name}.log")),
        )?)
    };
    let budget = plan.duration + 30.0;
    let _noise = if noise > 0 {
        Some(spawn(
            Command::new(bins.join("noise"))
                .args([
                    "--level",
                    &noise.to_string(),
                    "--secs",
                    &format!("{budget}"),
                ])
                .stdout(Stdio::null())
                .stderr(log("noise")?),
            "noise",
        )?)
    } else {
        None
    };
    let mut service = spawn(
        Command::new(bins.join("service"))
            .args(["--variant", variant])
            .args(["--workers", &plan.workers.to_string()])
            .args(["--work", &plan.work.to_string()])
            .args(["--shards", &plan.shards.to_string()])
            .args(["--max-secs", &format!("{}", budget.ceil() as u64 + 30)])
            .env("GLIBC_TUNABLES", "glibc.pthread.rseq=0")
            .stdout(Stdio::piped())
            .stderr(log("service")?),
        "service",
    )?;
    let out = service.0.stdout.take().context("service stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .context("the service did not start within 60 s")?;
    let port = line
        .strip_prefix("listening ")
        .and_then(|p| p.trim().parse::<u16>().ok())
        .with_context(|| format!("service said {line:?}, see {}", logs.display()))?;
    let json = logs.join(format!("{tag}.json"));
    let mut lg = spawn(
        Command::new(bins.join("loadgen"))
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .args(["--rate", &rate.to_string()])
            .args(["--duration", &plan.duration.to_string()])
            .args(["--warmup", &plan.warmup.to_string()])
            .args(["--connections", &plan.connections.to_string()])
            .arg("--out")
            .arg(&json)
            .stdout(Stdio::null())
            .stderr(log("loadgen")?),
        "loadgen",
    )?;
    let limit = Instant::now() + Duration::from_secs_f64(budget);
    let status = loop {
        if let Some(s) = lg.0.try_wait()? {
            break s;
        }
        if Instant::now() > limit {
            bail!("{} did not finish in {budget} s", lg.1);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !status.success() {
        bail!("loadgen failed ({status}); see {}", logs.display());
    }
    let text =
        std::fs::read_to_string(&json).with_context(|| format!("reading {}", json.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn aggregate(plan: &Plan, runs: &[Run]) -> Vec<Cell> {
    let mut cells = Vec::new();
    for &noise in &plan.noise {
        for &rate in &plan.rates {
            for v in &plan.variants {
                let rs: Vec<&LoadReport> = runs
                    .iter()
                    .filter(|r| r.noise == noise && r.rate == rate && &r.variant == v)
                    .map(|r| &r.report)
                    .collect();
                if rs.is_empty() {
                    continue;
                }
                let s = |f: &dyn Fn(&LoadReport) -> f64| spread(rs.iter().map(|r| f(r)).collect());
                let curve = rs[0]
                    .curve
                    .iter()
                    .enumerate()
                    .map(|(i, &(p, _))| {
                        (
                            p,
                            s(&|r: &LoadReport| r.curve.get(i).map_or(f64::NAN, |c| c.1 as f64))
                                .med,
                        )
                    })
                    .collect();
                cells.push(Cell {
                    noise,
                    rate,
                    variant: v.clone(),
                    runs: rs.len(),
                    throughput: s(&|r| r.throughput),
                    p50: s(&|r| r.p50 as f64),
                    p90: s(&|r| r.p90 as f64),
                    p99: s(&|r| r.p99 as f64),
                    p999: s(&|r| r.p999 as f64),
                    max: s(&|r| r.max as f64),
                    curve,
                    slice_granted: s(&|r| r.service["slice_granted"].as_f64().unwrap_or(0.0)),
                    errors: rs.iter().map(|r| r.errors).sum(),
                    missing: rs.iter().map(|r| r.missing).sum(),
                });
            }
        }
    }
    cells
}

fn ratios(cells: &[Cell]) -> Vec<Ratio> {
    let mut out = Vec::new();
    for c in cells.iter().filter(|c| c.variant != "off") {
        if let Some(base) = cells
            .iter()
            .find(|b| b.variant == "off" && b.noise == c.noise && b.rate == c.rate)
        {
            out.push(Ratio {
                noise: c.noise,
                rate: c.rate,
                variant: c.variant.clone(),
                p50_ratio: c.p50.med / base.p50.med,
                p999_ratio: c.p999.med / base.p999.med,
                throughput_ratio: c.throughput.med / base.throughput.med,
            });
        }
    }
    out
}

fn fmt_us(s: Spread) -> String {
    let f = |x: f64| {
        if x >= 10_000.0 {
            format!("{:.0}ms", x / 1000.0)
        } else if x >= 1000.0 {
            format!("{:.1}ms", x / 1000.0)
        } else {
            format!("{x:.0}")
        }
    };
    format!("{} [{}–{}]", f(s.med), f(s.min), f(s.max))
}

fn table(cells: &[Cell], ratios: &[Ratio]) -> String {
    let mut t = String::new();
    t += "| noise | rate | variant | throughput req/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | grants | p50 ratio | p99.9 ratio |\n";
    t += "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for c in cells {
        let r = ratios
            .iter()
            .find(|r| r.noise == c.noise && r.rate == c.rate && r.variant == c.variant);
        let (p50r, p999r) = r.map_or(("1".into(), "1".into()), |r| {
            (
                format!("{:.2}", r.p50_ratio),
                format!("{:.2}", r.p999_ratio),
            )
        });
        t += &format!(
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {:.0} | {} | {} |\n",
            c.noise,
            c.rate,
            c.variant,
            c.throughput.med,
            fmt_us(c.p50),
            fmt_us(c.p90),
            fmt_us(c.p99),
            fmt_us(c.p999),
            fmt_us(c.max),
            c.slice_granted.med,
            p50r,
            p999r
        );
    }
    t
}

fn write_csv(path: &Path, cells: &[Cell], runs: &[Run]) -> Result<()> {
    let mut f = std::fs::File::create(path)?;
    writeln!(
        f,
        "noise,rate,variant,runs,throughput_med,throughput_min,throughput_max,p50_med,p50_min,p50_max,p90_med,p90_min,p90_max,p99_med,p99_min,p99_max,p999_med,p999_min,p999_max,max_med,max_min,max_max,slice_granted_med,errors,missing"
    )?;
    for c in cells {
        write!(f, "{},{},{},{}", c.noise, c.rate, c.variant, c.runs)?;
        for s in [c.throughput, c.p50, c.p90, c.p99, c.p999, c.max] {
            write!(f, ",{},{},{}", s.med, s.min, s.max)?;
        }
        writeln!(f, ",{},{},{}", c.slice_granted.med, c.errors, c.missing)?;
    }
    let runs_path = path.with_file_name("runs.csv");
    let mut f = std::fs::File::create(runs_path)?;
    writeln!(
        f,
        "repeat,noise,rate,variant,throughput,p50,p90,p99,p999,max,mean,errors,missing,slice_granted"
    )?;
    for r in runs {
        let p = &r.report;
        writeln!(
            f,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.repeat,
            r.noise,
            r.rate,
            r.variant,
            p.throughput,
            p.p50,
            p.p90,
            p.p99,
            p.p999,
            p.max,
            p.mean,
            p.errors,
            p.missing,
            p.service["slice_granted"].as_u64().unwrap_or(0)
        )?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.replot {
        let path = args.out.join("results.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        let plan: Plan = serde_json::from_value(v["plan"].clone())?;
        let cells: Vec<Cell> = serde_json::from_value(v["cells"].clone())?;
        let title = format!(
            "{}, {} workers",
            v["conditions"].as_str().unwrap_or("?"),
            plan.workers
        );
        plot::latency(&args.out.join("latency.png"), &plan, &cells, &title)?;
        plot::p999_vs_load(&args.out.join("p999_vs_load.png"), &plan, &cells, &title)?;
        eprintln!("study: redrew the plots in {}", args.out.display());
        return Ok(());
    }
    let plan = Plan::from(&args);
    for v in &plan.variants {
        if !["off", "sched", "locks"].contains(&v.as_str()) {
            bail!("unknown variant {v:?} (off, sched, locks)");
        }
    }
    let bins = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory for this executable")?
            .to_path_buf(),
    };
    for b in ["service", "loadgen", "noise"] {
        if !bins.join(b).is_file() {
            bail!(
                "{} missing: build the examples (cargo build --release -p rseq-slice-examples)",
                bins.join(b).display()
            );
        }
    }
    let kernel = match rseq_slice_core::kernel_support() {
        Ok(()) => "the slice extension is available here".to_string(),
        Err(e) => format!(
            "the slice extension is NOT available here ({e}): every variant runs the fallback"
        ),
    };
    let cpus = pin(plan.cpus)?;
    let detected = rseq_slice_lab::Conditions::detect();
    let conditions = match &args.conditions {
        Some(note) => format!("{note}; {detected}"),
        None => detected.to_string(),
    };
    eprintln!("study: {conditions}; {kernel}; pinned to CPUs {cpus:?}");
    let logs = args.out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;

    let per_run = plan.duration + 1.0;
    let mut order = Vec::new();
    for rep in 0..plan.repeats {
        for &noise in &plan.noise {
            for &rate in &plan.rates {
                let n = plan.variants.len();
                // Alternate which variant goes first, cell by cell.
                let shift = (rep as usize + order.len() / n.max(1)) % n.max(1);
                for k in 0..n {
                    order.push((rep, noise, rate, plan.variants[(k + shift) % n].clone()));
                }
            }
        }
    }
    let bar = ProgressBar::new(order.len() as u64);
    let tty = std::io::stderr().is_terminal();
    if tty {
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} (left ~{eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = Instant::now();
    let mut runs = Vec::new();
    for (i, (rep, noise, rate, variant)) in order.iter().enumerate() {
        let cell = format!("noise {noise}, {rate} req/s, {variant}, repeat {}", rep + 1);
        bar.set_message(cell.clone());
        if !tty {
            let left = if i == 0 {
                order.len() as f64 * per_run
            } else {
                started.elapsed().as_secs_f64() / i as f64 * (order.len() - i) as f64
            };
            eprintln!(
                "study: [{}/{}] {cell} (left ~{left:.0} s)",
                i + 1,
                order.len()
            );
        }
        let tag = format!("n{noise}-r{rate}-{variant}-{rep}");
        let report = one_run(&plan, &bins, &logs, &tag, *noise, *rate, variant)
            .with_context(|| format!("run {cell}"))?;
        runs.push(Run {
            repeat: *rep,
            noise: *noise,
            rate: *rate,
            variant: variant.clone(),
            report,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let cells = aggregate(&plan, &runs);
    let ratios = ratios(&cells);
    let t = table(&cells, &ratios);
    println!("\n{conditions}; {kernel}\n");
    println!("{t}");
    write_csv(&args.out.join("results.csv"), &cells, &runs)?;
    let json = serde_json::json!({
        "conditions": conditions,
        "conditions_detail": detected,
        "kernel": kernel,
        "cpus": cpus,
        "plan": plan,
        "cells": cells,
        "ratios": ratios,
        "runs": runs,
        "elapsed_secs": started.elapsed().as_secs_f64(),
    });
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    std::fs::write(args.out.join("table.md"), &t)?;
    let title = format!("{conditions}, {} workers", plan.workers);
    plot::latency(&args.out.join("latency.png"), &plan, &cells, &title)?;
    plot::p999_vs_load(&args.out.join("p999_vs_load.png"), &plan, &cells, &title)?;
    eprintln!(
        "study: wrote {}/{{results.csv,runs.csv,results.json,table.md,latency.png,p999_vs_load.png}} in {:.0} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
