//! `cargo xtask bench-locks`: the lock-holder-preemption benchmark over vCPU
//! counts and `slice_ext_nsec` values, one virtual-time guest boot each, and
//! `--repro`, which runs one configuration in two boots (the second beside
//! two host CPU hogs) and compares ops/s cell by cell.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::guest;
use crate::{BootArgs, NO_LIBC_RSEQ, Result, build_bench, build_locks, workspace_root};

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
    /// CPU hogs, and fail if any cell's ops/s differ by more than 3 %.
    #[arg(long)]
    repro: bool,
    /// Also run the criterion bench `locks` (uncontended overhead) in the guest.
    #[arg(long)]
    criterion: bool,
    /// More arguments for the `locks` binary (e.g. `--threads 1,8 --kinds spin`);
    /// they come last and override these.
    #[arg(last = true)]
    extra: Vec<String>,
}

/// The most two boots of one configuration may differ, cell by cell.
const REPRO_TOLERANCE: f64 = 0.03;

pub(crate) fn run(args: &Args) -> Result<bool> {
    let exe = build_locks()?;
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
            .args(locks_args(args, 0))
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
    for &cpus in &vcpus {
        for &slice in &slices {
            let dir = out.join(format!("guest/cpus{cpus}-slice{slice}"));
            ok &= boot_once(args, &exe, cpus, slice, &dir)?;
        }
    }
    Ok(ok)
}

/// The `locks` arguments for `cpus` vCPUs (0: this host's).
fn locks_args(args: &Args, cpus: u32) -> Vec<String> {
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
        format!("--repeats={}", args.repeats),
        format!("--threads={}", threads.join(",")),
        "--quiet".to_string(),
    ];
    v.extend(args.extra.iter().cloned());
    v
}

fn boot_once(args: &Args, exe: &Path, cpus: u32, slice: u32, dir: &Path) -> Result<bool> {
    std::fs::create_dir_all(dir)?;
    let quoted: Vec<String> = locks_args(args, cpus)
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
        let bench = build_bench("locks")?;
        // criterion writes under its target directory: a fresh one in the
        // guest's /tmp (the shared root is read-only).
        script += &format!(
            "CARGO_TARGET_DIR=\"$(mktemp -d)\"\nexport CARGO_TARGET_DIR\n\
             echo '== guest, criterion locks ({NO_LIBC_RSEQ}: feature on)'; env {NO_LIBC_RSEQ} {b} --bench\n",
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

type CellKey = (String, String, u32, u32);

fn ops_by_cell(csv: &Path) -> Result<BTreeMap<CellKey, f64>> {
    let mut r = csv::Reader::from_path(csv).map_err(|e| format!("{}: {e}", csv.display()))?;
    let h = r.headers()?.clone();
    let col = |name: &str| {
        h.iter()
            .position(|c| c == name)
            .ok_or_else(|| format!("{}: no column {name}", csv.display()))
    };
    let (k, v, t, rep, ops) = (
        col("kind")?,
        col("variant")?,
        col("threads")?,
        col("rep")?,
        col("ops_per_s")?,
    );
    let mut m = BTreeMap::new();
    for row in r.records() {
        let row = row?;
        let num = |i: usize| row.get(i).unwrap_or("").parse::<f64>();
        m.insert(
            (
                row.get(k).unwrap_or("").to_string(),
                row.get(v).unwrap_or("").to_string(),
                num(t)? as u32,
                num(rep)? as u32,
            ),
            num(ops)?,
        );
    }
    Ok(m)
}

/// Print both boots' ops/s per cell and their ratio; true when every cell
/// agrees within [`REPRO_TOLERANCE`].
fn compare(a: &Path, b: &Path) -> Result<bool> {
    let (a, b) = (ops_by_cell(a)?, ops_by_cell(b)?);
    println!(
        "\n{:<12} {:<8} {:>4} {:>3} {:>12} {:>12} {:>8}",
        "kind", "variant", "thr", "rep", "boot 1", "boot 2 (hogs)", "b2/b1"
    );
    let mut worst = 0.0f64;
    for (key, x) in &a {
        let Some(y) = b.get(key) else {
            println!("{key:?}: missing from the second boot");
            return Ok(false);
        };
        let r = y / x;
        worst = worst.max((r - 1.0).abs());
        println!(
            "{:<12} {:<8} {:>4} {:>3} {:>12.0} {:>12.0} {:>8.4}",
            key.0, key.1, key.2, key.3, x, y, r
        );
    }
    let ok = worst <= REPRO_TOLERANCE && a.len() == b.len() && !a.is_empty();
    println!(
        "xtask: reproducibility: {} cells, largest difference {:.2} % (tolerance {:.0} %): {}",
        a.len(),
        worst * 100.0,
        REPRO_TOLERANCE * 100.0,
        if ok { "ok" } else { "FAILED" }
    );
    Ok(ok)
}
