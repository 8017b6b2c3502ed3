//! `cargo xtask bench-locks`: the lock-holder-preemption benchmark over vCPU
//! counts and `slice_ext_nsec` values, one virtual-time guest boot each, and
//! `--repro`, which runs one configuration in two boots (the second beside
//! two host CPU hogs) and compares ops/s cell by cell.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::build::{build_bench, build_lock_holder_preemption};
use crate::guest;
use crate::{BootArgs, NO_LIBC_RSEQ, Result, workspace_root};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    boot: BootArgs,
    /// vCPU counts, one boot each (`--cpus N` picks one). Threads per cell:
    /// 1, N, 4N and 16N unless `-- --threads` says otherwise.
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set, default_values_t = [1, 2, 4], value_parser = clap::value_parser!(u32).range(1..=8))]
    vcpus: Vec<u32>,
    /// `slice_ext_nsec` values, one boot each (`--slice-ext-nsec` picks one).
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set, default_values_t = [5000, 50_000], value_parser = clap::value_parser!(u32).range(5000..=50000))]
    slices: Vec<u32>,
    /// Virtual time of one cell, ms (150: at least 20 000 acquisitions
    /// pooled over two repeats in every default cell).
    #[arg(long, default_value_t = 150, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    cell_ms: u64,
    /// Repetitions of each grid (variants alternate cell by cell).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=100))]
    repeats: u16,
    /// Run the first configuration in two boots, the second beside two host
    /// CPU hogs, with at least 3 repeats: a cell whose repeats agree within
    /// 3 % in each boot must agree within 3 % across boots; one whose
    /// repeats differ more must not differ more between boots than its
    /// repeats explain (Welch's t).
    #[arg(long)]
    repro: bool,
    /// Only compare two finished runs' locks.csv, as `--repro` does (no boot).
    #[arg(long, num_args = 2, value_names = ["A_CSV", "B_CSV"], conflicts_with = "repro")]
    compare: Option<Vec<std::path::PathBuf>>,
    /// Also run the criterion bench `lock_overhead` (uncontended) in the guest.
    #[arg(long)]
    criterion: bool,
    /// More arguments for the `lock_holder_preemption` binary (e.g.
    /// `--threads 1,8 --kinds spin`); they come last and override these.
    #[arg(last = true)]
    extra: Vec<String>,
}

/// The most two boots of one steady cell may differ (and what makes a cell
/// steady: its repeats in one boot within this of each other).
const REPRO_TOLERANCE: f64 = 0.03;

pub(crate) fn run(args: &Args) -> Result<bool> {
    if let Some([a, b]) = args.compare.as_deref() {
        return compare(a, b);
    }
    let exe = build_lock_holder_preemption()?;
    let vcpus = args.boot.cpus.map_or(args.vcpus.clone(), |c| vec![c]);
    let slices = args
        .boot
        .slice_ext_nsec
        .map_or(args.slices.clone(), |s| vec![s]);
    let out = workspace_root().join("out/locks");
    let mut ok = true;
    let host_has_it = Command::new(&exe)
        .arg("--probe")
        .env("GLIBC_TUNABLES", "glibc.pthread.rseq=0")
        .status()?
        .success();
    if host_has_it {
        eprintln!("xtask: the host kernel has the feature: native run first");
        ok &= Command::new(&exe)
            .arg(format!("--out={}", out.join("host").display()))
            .args(preemption_args(args, 0))
            .env("GLIBC_TUNABLES", "glibc.pthread.rseq=0")
            .status()?
            .success();
    } else {
        eprintln!("xtask: the host kernel lacks the feature (see the line above): guest only");
    }
    if args.repro {
        let (cpus, slice) = (vcpus[0], slices[0]);
        let a = out.join(format!("repro/cpus{cpus}-slice{slice}-a"));
        let b = out.join(format!("repro/cpus{cpus}-slice{slice}-b"));
        ok &= boot_once(args, &exe, cpus, slice, &a)?;
        eprintln!("xtask: the same cells again, beside two host CPU hogs");
        let hogs = Hogs::start(2);
        ok &= boot_once(args, &exe, cpus, slice, &b)?;
        drop(hogs);
        return Ok(ok && compare(&a.join("locks.csv"), &b.join("locks.csv"))?);
    }
    // The platform beside the vCPUs: `-qemu7.2-q5000` for bounded turns,
    // `-full` under `preempt=full`; nothing for the defaults.
    let boot = args.boot.boot(1)?;
    let mut platform = String::new();
    if boot.qemu.slug() != crate::qemu::Emulator::host().slug() {
        platform += &format!("-{}", boot.qemu.slug());
    }
    if boot.preempt == crate::guest::Preempt::Full {
        platform += "-full";
    }
    for &cpus in &vcpus {
        for &slice in &slices {
            let dir = out.join(format!("guest/cpus{cpus}-slice{slice}{platform}"));
            ok &= boot_once(args, &exe, cpus, slice, &dir)?;
        }
    }
    Ok(ok)
}

/// The `lock_holder_preemption` arguments for `cpus` vCPUs (0: this host's).
fn preemption_args(args: &Args, cpus: u32) -> Vec<String> {
    let n = if cpus == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
    } else {
        cpus
    };
    let mut threads: Vec<u32> = vec![1, n, 4 * n, 16 * n];
    threads.dedup();
    let threads: Vec<String> = threads.iter().map(u32::to_string).collect();
    let mut v = vec![
        format!("--cell-ms={}", args.cell_ms),
        format!(
            "--repeats={}",
            if args.repro {
                args.repeats.max(3)
            } else {
                args.repeats
            }
        ),
        format!("--threads={}", threads.join(",")),
        "--quiet".to_string(),
    ];
    v.extend(args.extra.iter().cloned());
    v
}

fn boot_once(args: &Args, exe: &Path, cpus: u32, slice: u32, dir: &Path) -> Result<bool> {
    std::fs::create_dir_all(dir)?;
    let quoted: Vec<String> = preemption_args(args, cpus)
        .iter()
        .map(|a| guest::sh_quote(a))
        .collect();
    let mut b = args.boot.boot(cpus)?;
    let mut script = format!(
        "env {NO_LIBC_RSEQ} {exe} --out={dir} {args}\n",
        exe = b.path(exe)?,
        args = quoted.join(" "),
        dir = b.path(dir)?,
    );
    if args.criterion {
        let bench = build_bench("lock_overhead")?;
        // criterion writes under its target directory: a fresh one in the
        // guest's /tmp (the shared root is read-only).
        script += &format!(
            "CARGO_TARGET_DIR=\"$(mktemp -d)\"\nexport CARGO_TARGET_DIR\n\
             echo '== guest, criterion lock_overhead ({NO_LIBC_RSEQ}: feature on)'; env {NO_LIBC_RSEQ} {b} --bench\n",
            b = b.path(&bench)?
        );
    }
    b.cpus = cpus;
    b.slice_ext_nsec = slice;
    // Measured without the kernel's protocol checks unless asked: under
    // rseq_debug=1 the kernel revokes most grants made at a slice-expiry
    // preemption before the section ends.
    if !args.boot.rseq_debug_in_bench {
        b.append.retain(|w| w != "rseq_debug=1");
    }
    b.rw_dirs.push(dir.to_path_buf());
    eprintln!(
        "xtask: bench-locks: {cpus} vCPU, slice_ext_nsec {slice}, {} time, kernel command line extras {:?} -> {}",
        b.clock.describe(),
        b.append,
        dir.display()
    );
    Ok(guest::run(&b, &script)? == 0)
}

/// Busy threads on the host, stopped on drop: the load the reproducibility
/// check must shrug off.
struct Hogs {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hogs {
    fn start(n: usize) -> Hogs {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Hogs { stop, threads }
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A cell without its repeat: kind, variant, threads.
type CellKey = (String, String, u32);

/// Each cell's ops/s, one value a repeat.
fn ops_by_cell(csv: &Path) -> Result<BTreeMap<CellKey, Vec<f64>>> {
    let mut r = csv::Reader::from_path(csv).map_err(|e| format!("{}: {e}", csv.display()))?;
    let h = r.headers()?.clone();
    let col = |name: &str| {
        h.iter()
            .position(|c| c == name)
            .ok_or_else(|| format!("{}: no column {name}", csv.display()))
    };
    let (k, v, t, ops) = (
        col("kind")?,
        col("variant")?,
        col("threads")?,
        col("ops_per_s")?,
    );
    let mut m: BTreeMap<CellKey, Vec<f64>> = BTreeMap::new();
    for row in r.records() {
        let row = row?;
        let num = |i: usize| row.get(i).unwrap_or("").parse::<f64>();
        let key = (
            row.get(k).unwrap_or("").to_string(),
            row.get(v).unwrap_or("").to_string(),
            num(t)? as u32,
        );
        m.entry(key).or_default().push(num(ops)?);
    }
    Ok(m)
}

/// One boot's repeats of a cell: mean, least, most, variance.
#[derive(Clone, Copy, Debug)]
struct Spread {
    n: usize,
    mean: f64,
    min: f64,
    max: f64,
    /// Sample variance (n - 1).
    var: f64,
}

impl Spread {
    fn of(xs: &[f64]) -> Spread {
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n.max(1) as f64;
        let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let var =
            xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n.saturating_sub(1).max(1) as f64;
        Spread {
            n,
            mean,
            min,
            max,
            var,
        }
    }

    /// (most - least) / mean over the repeats.
    fn width(&self) -> f64 {
        (self.max - self.min) / self.mean
    }
}

/// Welch's t for the difference of two boots' means.
fn welch_t(a: Spread, b: Spread) -> f64 {
    let se = (a.var / a.n as f64 + b.var / b.n as f64).sqrt();
    if se == 0.0 {
        if a.mean == b.mean { 0.0 } else { f64::INFINITY }
    } else {
        (b.mean - a.mean) / se
    }
}

/// Student's t, 97.5 % point, at 2 degrees of freedom: the fewest Welch's
/// test has with 3 repeats a side, so with more repeats this is stricter
/// than needed, never looser.
const T_CRIT: f64 = 4.303;

/// How two boots' repeats of one cell compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Steady in both boots (repeats within the tolerance) and the means agree.
    Agree,
    /// Repeats in one boot already differ by more than the tolerance, and
    /// the boots' means differ no more than the repeats explain (Welch's
    /// |t| under [`T_CRIT`]): the cell is as reproducible as it is
    /// repeatable, no more (a contended cell whose few lock-holder
    /// preemptions or handoff regime decide its throughput).
    Noisy,
    /// The boots differ beyond what the repeats explain.
    Differ,
}

fn verdict(a: Spread, b: Spread) -> Verdict {
    let steady = a.width() <= REPRO_TOLERANCE && b.width() <= REPRO_TOLERANCE;
    if steady {
        if (b.mean / a.mean - 1.0).abs() <= REPRO_TOLERANCE {
            Verdict::Agree
        } else {
            Verdict::Differ
        }
    } else if a.n >= 3 && b.n >= 3 && welch_t(a, b).abs() < T_CRIT {
        Verdict::Noisy
    } else {
        Verdict::Differ
    }
}

/// Print both boots' ops/s per cell (mean and range over the repeats) and
/// a verdict; true when no cell differs and at least one is steady.
fn compare(a: &Path, b: &Path) -> Result<bool> {
    let (a, b) = (ops_by_cell(a)?, ops_by_cell(b)?);
    println!(
        "\n{:<12} {:<8} {:>4} {:>24} {:>24} {:>7} {:>6}  verdict",
        "kind", "variant", "thr", "boot 1 mean [range]", "boot 2 (hogs)", "b2/b1", "t"
    );
    let show = |s: Spread| format!("{:.0} [{:.0}-{:.0}]", s.mean, s.min, s.max);
    let (mut agree, mut worst, mut noisy, mut differ) = (0, 0.0f64, 0, 0);
    for (key, xs) in &a {
        let Some(ys) = b.get(key) else {
            println!("{key:?}: missing from the second boot");
            return Ok(false);
        };
        let (x, y) = (Spread::of(xs), Spread::of(ys));
        let v = verdict(x, y);
        match v {
            Verdict::Agree => {
                agree += 1;
                worst = worst.max((y.mean / x.mean - 1.0).abs());
            }
            Verdict::Noisy => noisy += 1,
            Verdict::Differ => differ += 1,
        }
        println!(
            "{:<12} {:<8} {:>4} {:>24} {:>24} {:>7.4} {:>6.2}  {v:?}",
            key.0,
            key.1,
            key.2,
            show(x),
            show(y),
            y.mean / x.mean,
            welch_t(x, y),
        );
    }
    let ok = differ == 0 && agree > 0 && a.len() == b.len();
    println!(
        "xtask: reproducibility ({:.0} % tolerance): {agree} steady cells agree (largest difference {:.2} %), \
         {noisy} noisy cells (repeats alone differ by more, and the boots differ no more than that: Welch |t| < {T_CRIT}), {differ} differ: {}",
        REPRO_TOLERANCE * 100.0,
        worst * 100.0,
        if ok { "ok" } else { "FAILED" }
    );
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(xs: &[f64]) -> Spread {
        Spread::of(xs)
    }

    #[test]
    fn steady_cells_must_agree_and_noisy_ones_must_overlap() {
        let steady = s(&[100.0, 101.0, 100.5]);
        assert_eq!(verdict(steady, s(&[102.0, 102.5, 102.0])), Verdict::Agree);
        assert_eq!(verdict(steady, s(&[105.0, 105.5, 105.0])), Verdict::Differ);
        let noisy = s(&[80.0, 120.0, 100.0]);
        assert_eq!(verdict(noisy, s(&[90.0, 130.0, 110.0])), Verdict::Noisy);
        // Disjoint ranges alone are no evidence: three draws a side often are.
        assert_eq!(verdict(noisy, s(&[121.0, 122.0, 121.5])), Verdict::Noisy);
        assert_eq!(verdict(noisy, s(&[150.0, 160.0, 155.0])), Verdict::Differ);
        // Too few repeats to judge a noisy cell: it differs.
        assert_eq!(verdict(steady, s(&[95.0, 110.0])), Verdict::Differ);
    }
}
