//! `cargo xtask`: everything that is not `cargo test`.
//!
//! - `cargo xtask test`: host tests, then the guest suite on a kernel with
//!   the slice extension, twice (the crate registers / glibc's legacy area).
//!   The host part also smoke-runs the `locks` benchmark binary.
//! - `cargo xtask probe`: the probe example on the host and in the guest.
//! - `cargo xtask bench-guard`: the guard overhead benches (bare, and inside
//!   glommio tasks), host and guest.
//! - `cargo xtask bench-tokio`: what the tokio adapter's policies cost a
//!   busy runtime, host and guest.
//! - `cargo xtask bench-locks`: the lock-holder-preemption benchmark at 1,
//!   2 and 4 vCPUs and `slice_ext_nsec` 5 and 50 µs (and natively where the
//!   host kernel has the feature); `--repro` checks two boots agree.
//! - `cargo xtask study`: the tail-latency study (natively when this kernel
//!   has the feature, else in a 1-vCPU guest).
//! - `cargo xtask guest -- CMD`: any command in the guest.
//! - `cargo xtask kernel`: find (or build and cache) the guest kernel.

mod bench_locks;
mod debian_root;
mod guest;

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, Parser, Subcommand};

use guest::Boot;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(about = "rseq-slice tasks: guest kernel, guest tests, benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Host tests and a smoke run of the locks benchmark, then the guest
    /// suite: three boots (the feature on: the crate's area and glibc 2.36's
    /// legacy one; the feature off at boot; glibc 2.41's area, adopted).
    Test {
        /// Only the host tests.
        #[arg(long, conflicts_with = "guest_only")]
        host_only: bool,
        /// Only the guest suite.
        #[arg(long)]
        guest_only: bool,
        /// The guest boots to run (repeat or comma-separate; default: all).
        #[arg(long = "pass", value_enum, value_delimiter = ',')]
        passes: Vec<Pass>,
        #[command(flatten)]
        boot: BootArgs,
    },
    /// The probe example, on the host and in the guest (glibc 2.36 default
    /// and off, then glibc 2.41 in the Debian root).
    Probe {
        #[command(flatten)]
        boot: BootArgs,
    },
    /// Guard overhead (criterion; bare and inside glommio tasks): on the host, then in the guest.
    BenchGuard {
        #[command(flatten)]
        boot: BootArgs,
        #[command(flatten)]
        place: Place,
    },
    /// The tokio adapter's policies vs a plain runtime (criterion, built with
    /// `--cfg tokio_unstable`): on the host, then in the guest.
    BenchTokio {
        #[command(flatten)]
        boot: BootArgs,
        #[command(flatten)]
        place: Place,
    },
    /// The lock-holder-preemption benchmark (`benches/`, binary `locks`):
    /// one virtual-time guest boot per vCPU count and `slice_ext_nsec`, and
    /// natively when the host kernel has the feature. Writes
    /// out/locks/guest/cpus{N}-slice{NS}/locks.{csv,png}.
    BenchLocks(bench_locks::Args),
    /// The tail-latency study: service + noise + open-loop load, variants
    /// off / sched / locks, x noise levels x rates. Runs natively when this
    /// kernel has the slice extension, else in the guest (2 vCPUs unless --cpus).
    Study {
        #[command(flatten)]
        boot: BootArgs,
        /// The full matrix: each noise kind, hot lock, hold time and worker
        /// count in turn, loads 0.5-0.95, variants off,sched,polls,locks.
        #[arg(long)]
        full: bool,
        /// A smoke run on the host (fallback where the kernel lacks the
        /// feature): one rate, one repeat, 1.5 s per run.
        #[arg(long, conflicts_with = "full")]
        smoke: bool,
        /// More `study` flags (after `--`), e.g. `-- --rates 200,400`.
        #[arg(trailing_var_arg = true)]
        extra: Vec<String>,
    },
    /// Run a shell command in the guest, from the workspace root.
    Guest {
        #[command(flatten)]
        boot: BootArgs,
        /// The command (POSIX shell).
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// Print the guest kernel's path, building and caching one if needed.
    Kernel,
}

/// Where a criterion bench runs: both by default.
#[derive(Args, Clone, Copy)]
struct Place {
    /// Only on the host (its numbers want an idle host).
    #[arg(long, conflicts_with = "guest_only")]
    host_only: bool,
    /// Only in the guest (virtual time: host load does not matter).
    #[arg(long)]
    guest_only: bool,
}

#[derive(Args, Clone)]
pub(crate) struct BootArgs {
    /// vCPUs (1-8). In virtual time they take turns on one host thread, so
    /// a run costs about N times the wall time of one vCPU.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub(crate) cpus: Option<u32>,
    /// `rseq/slice_ext_nsec` in the guest (5000..=50000; default 50000,
    /// bench-locks: 5000 and 50000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(5000..=50000))]
    pub(crate) slice_ext_nsec: Option<u32>,
    /// Extra kernel command line words (e.g. `rseq_slice_ext=off`).
    #[arg(long)]
    append: Vec<String>,
    /// Boot without `rseq_debug=1` (the kernel's protocol checks), e.g.
    /// for measurements.
    #[arg(long)]
    no_rseq_debug: bool,
    /// bench-locks: keep `rseq_debug=1` (it boots without by default).
    #[arg(long)]
    pub(crate) rseq_debug_in_bench: bool,
    /// Guest memory.
    #[arg(long, default_value = "2G")]
    memory: String,
    /// Time limit for one boot, wall-clock seconds.
    #[arg(long, default_value_t = 2400)]
    timeout: u64,
    /// Boot the Debian trixie root (glibc 2.41, which registers an
    /// optimized rseq area itself) instead of the host's root; built into
    /// the cache the first time (`$RSEQ_SLICE_DEBIAN_ROOT` overrides). Only
    /// the workspace is visible there, read-only.
    #[arg(long)]
    pub(crate) debian_root: bool,
    /// Run the guest on the host's wall clock instead of virtual time
    /// (results then swing with host load).
    #[arg(long)]
    real_time: bool,
    /// Virtual time: each guest instruction takes 2^SHIFT ns (0 = 1 GIPS).
    #[arg(long, default_value_t = guest::DEFAULT_SHIFT, value_parser = clap::value_parser!(u8).range(0..=4), conflicts_with = "real_time")]
    shift: u8,
}

impl BootArgs {
    pub(crate) fn boot(&self, default_cpus: u32) -> Result<Boot> {
        let mut append = Vec::new();
        if !self.no_rseq_debug {
            append.push("rseq_debug=1".to_string());
        }
        append.extend(self.append.iter().cloned());
        Ok(Boot {
            cpus: self.cpus.unwrap_or(default_cpus),
            memory: self.memory.clone(),
            slice_ext_nsec: self.slice_ext_nsec.unwrap_or(50_000),
            append,
            timeout_secs: self.timeout,
            rw_dirs: Vec::new(),
            clock: if self.real_time {
                guest::Clock::Real
            } else {
                guest::Clock::Virtual { shift: self.shift }
            },
            root: if self.debian_root {
                guest::Root::Debian(debian_root::root()?)
            } else {
                guest::Root::Host
            },
        })
    }
}

/// glibc's tunable that stops it registering rseq, so the crate registers.
pub(crate) const NO_LIBC_RSEQ: &str = "GLIBC_TUNABLES=glibc.pthread.rseq=0";

fn main() {
    let cli = Cli::parse();
    let outcome = match cli.cmd {
        Cmd::Test {
            host_only,
            guest_only,
            passes,
            boot,
        } => {
            let passes = if passes.is_empty() {
                vec![Pass::FeatureOn, Pass::Off, Pass::Glibc241]
            } else {
                passes
            };
            test(!guest_only, !host_only, &boot, &passes)
        }
        Cmd::Probe { boot } => probe(&boot),
        Cmd::BenchGuard { boot, place } => bench(&boot, &place, Bench::GUARD),
        Cmd::BenchTokio { boot, place } => bench(&boot, &place, Bench::TOKIO),
        Cmd::BenchLocks(args) => bench_locks::run(&args),
        Cmd::Study {
            boot,
            full,
            smoke,
            extra,
        } => study(&boot, full, smoke, &extra),
        Cmd::Guest { boot, command } => boot.boot(2).and_then(|mut b| {
            b.rw_dirs.push(workspace_root().join("out"));
            guest::run(&b, &command.join(" ")).map(|c| c == 0)
        }),
        Cmd::Kernel => guest::kernel(true).map(|k| {
            println!("{}", k.display());
            true
        }),
    };
    match outcome {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("xtask: error: {e}");
            std::process::exit(2);
        }
    }
}

/// One boot of the guest suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Pass {
    /// The host's root (glibc 2.36): every test binary with the crate's own
    /// area, then the kernel tests with glibc's legacy area.
    FeatureOn,
    /// The host's root, `rseq_slice_ext=off`: the kernel tests.
    Off,
    /// The Debian root (glibc 2.41): the library crates' test binaries
    /// with glibc's own optimized area, adopted.
    Glibc241,
}

/// A test executable and whether it belongs to one of the library crates.
struct TestBin {
    exe: PathBuf,
    library: bool,
}

impl TestBin {
    /// The test target's name (`kernel` for `kernel-0123abcd`).
    fn name(&self) -> &str {
        let stem = self.exe.file_name().and_then(|n| n.to_str()).unwrap_or("");
        stem.rsplit_once('-').map_or(stem, |(n, _)| n)
    }
    /// Holds tests that need the kernel's feature.
    fn kernel(&self) -> bool {
        matches!(
            self.name(),
            "kernel" | "locks_kernel" | "tracing" | "grant_events" | "null_page" | "runtime"
        )
    }
}

/// One run of test binaries: a label, the environment, the binaries.
struct Run<'a> {
    label: &'a str,
    env: Vec<String>,
    bins: Vec<&'a TestBin>,
}

/// The guest script for `runs` on `boot`: every binary runs, the status
/// says whether all passed.
fn suite_script(boot: &guest::Boot, runs: &[Run<'_>]) -> Result<String> {
    let mut script = String::from("rc=0\n");
    for run in runs {
        for bin in &run.bins {
            let name = bin
                .exe
                .strip_prefix(workspace_root().join("target"))
                .unwrap_or(&bin.exe)
                .display()
                .to_string();
            let env: Vec<String> = run.env.iter().map(|e| guest::sh_quote(e)).collect();
            script += &format!(
                "echo {header}\nenv {env} {exe} --test-threads=1 || rc=1\n",
                header = guest::sh_quote(&format!("== guest [{}] {name}", run.label)),
                env = env.join(" "),
                exe = boot.path(&bin.exe)?,
            );
        }
    }
    Ok(script + "exit $rc\n")
}

/// The guest suite: the passes asked for, each one boot.
fn guest_suite(boot: &BootArgs, passes: &[Pass]) -> Result<bool> {
    let mut bins =
        test_binaries(cargo().args(["test", "--workspace", "--all-features", "--no-run"]))?;
    if bins.is_empty() {
        return Err("cargo built no test binary: nothing to run in the guest".into());
    }
    bins.extend(test_binaries(unstable_cargo().args([
        "test",
        "-p",
        "rseq-slice-tokio",
        "--no-run",
    ]))?);
    let all: Vec<&TestBin> = bins.iter().collect();
    // Binaries with tests that need the kernel: the only ones worth a run
    // where the feature is off (legacy glibc, switched off at boot).
    let kernel: Vec<&TestBin> = bins.iter().filter(|b| b.kernel()).collect();
    let libraries: Vec<&TestBin> = bins.iter().filter(|b| b.library).collect();
    // Every run demands the kernel (a test that would skip fails) and says
    // which area the tests must find.
    let env = |area: &str, more: &[&str]| {
        let mut v = vec![
            "RSEQ_SLICE_REQUIRE_KERNEL=1".to_string(),
            format!("RSEQ_SLICE_EXPECT_AREA={area}"),
        ];
        v.extend(more.iter().map(|s| s.to_string()));
        v
    };
    eprintln!(
        "xtask: guest suite: one test binary after another, each with --test-threads=1 \
         (tests compare the kernel's global rseq/stats counters, so they run one at a time)"
    );
    let mut ok = true;
    for pass in passes {
        let (b, runs, what) = match pass {
            Pass::FeatureOn => (
                boot.boot(2)?,
                vec![
                    Run {
                        label: "crate",
                        env: env("crate", &[NO_LIBC_RSEQ]),
                        bins: all.clone(),
                    },
                    Run {
                        label: "libc-legacy",
                        env: env("libc-legacy", &[]),
                        bins: kernel.clone(),
                    },
                ],
                "the crate's own area, then glibc 2.36's legacy area",
            ),
            Pass::Off => {
                let mut off = boot.clone();
                off.append.push("rseq_slice_ext=off".into());
                (
                    off.boot(2)?,
                    vec![Run {
                        label: "crate",
                        env: env(
                            "crate",
                            &[NO_LIBC_RSEQ, "RSEQ_SLICE_EXPECT_REASON=disabled-at-boot"],
                        ),
                        bins: kernel.clone(),
                    }],
                    "rseq_slice_ext=off",
                )
            }
            Pass::Glibc241 => {
                let mut debian = boot.clone();
                debian.debian_root = true;
                (
                    debian.boot(2)?,
                    vec![Run {
                        label: "libc-v2",
                        env: env("libc-v2", &[]),
                        bins: libraries.clone(),
                    }],
                    "Debian trixie, glibc 2.41's own area adopted",
                )
            }
        };
        let code = guest::run(&b, &suite_script(&b, &runs)?)?;
        eprintln!(
            "xtask: guest suite ({what}) {}",
            if code == 0 { "passed" } else { "FAILED" }
        );
        ok &= code == 0;
    }
    Ok(ok)
}

fn test(host: bool, in_guest: bool, boot: &BootArgs, passes: &[Pass]) -> Result<bool> {
    let mut ok = true;
    if host {
        eprintln!("xtask: host tests (tests that need the kernel feature skip, saying why)");
        ok &= cargo()
            .args(["test", "--workspace", "--all-features"])
            .status()?
            .success();
        ok &= locks_smoke()?;
        eprintln!("xtask: latency study smoke run on the host");
        let smoke = study(boot, false, true, &[])?;
        let dir = workspace_root().join("out/smoke");
        let files = [
            "results.csv",
            "runs.csv",
            "results.json",
            "latency.png",
            "p999_vs_load.png",
        ];
        let missing: Vec<_> = files
            .iter()
            .filter(|f| std::fs::metadata(dir.join(f)).map_or(true, |m| m.len() == 0))
            .collect();
        if !missing.is_empty() {
            eprintln!("xtask: study smoke run did not write {missing:?}");
        }
        ok &= smoke && missing.is_empty();
    }
    if in_guest {
        ok &= guest_suite(boot, passes)?;
    }
    Ok(ok)
}

/// Build the study's binaries (release, `--cfg tokio_unstable` for the
/// scheduler sections) and return their directory.
fn build_study(release: bool) -> Result<PathBuf> {
    let mut c = unstable_cargo();
    c.args(["build", "-p", "rseq-slice-examples", "--bins"]);
    if release {
        c.arg("--release");
    }
    let exes = artifacts(&mut c, |a| a["target"]["name"] == "study")?;
    let study = one(exes)?;
    Ok(study
        .parent()
        .ok_or("no directory for study")?
        .to_path_buf())
}

fn study(boot: &BootArgs, full: bool, smoke: bool, extra: &[String]) -> Result<bool> {
    let bins = build_study(!smoke)?;
    let exe = bins.join("study");
    let mut flags: Vec<String> = Vec::new();
    if full {
        flags.push("--full".into());
    }
    if smoke {
        flags.extend(["--smoke".into(), "--out".into(), "out/smoke".into()]);
    }
    flags.extend(extra.iter().cloned());
    let native = rseq_slice_core::kernel_support();
    if smoke || native.is_ok() {
        let conditions = match &native {
            Ok(()) => "native, the host kernel has the feature".to_string(),
            Err(_) => "native smoke run on the host (fallback)".to_string(),
        };
        eprintln!("xtask: study runs natively: {conditions}");
        let ok = Command::new(&exe)
            .current_dir(workspace_root())
            .env("GLIBC_TUNABLES", "glibc.pthread.rseq=0")
            .arg("--conditions")
            .arg(&conditions)
            .args(&flags)
            .status()?
            .success();
        return Ok(ok);
    }
    let mut b = boot.boot(2)?;
    // Measure without the debug checks (they add work to every kernel exit).
    b.append.retain(|w| w != "rseq_debug=1");
    let out = workspace_root().join("out");
    std::fs::create_dir_all(&out)?;
    b.rw_dirs.push(out);
    let conditions = "emulated guest (qemu TCG)".to_string();
    eprintln!(
        "xtask: this kernel lacks the slice extension ({}): the study runs in the guest ({conditions})",
        native.err().map(|e| e.to_string()).unwrap_or_default()
    );
    let quoted: Vec<String> = flags.iter().map(|f| guest::sh_quote(f)).collect();
    let script = format!(
        "env {NO_LIBC_RSEQ} {exe} --conditions {cond} {flags}
",
        exe = b.path(&exe)?,
        cond = guest::sh_quote(&conditions),
        flags = quoted.join(" "),
    );
    let code = guest::run(&b, &script)?;
    eprintln!(
        "xtask: study results in {}",
        workspace_root().join("out/study").display()
    );
    Ok(code == 0)
}

fn probe(boot: &BootArgs) -> Result<bool> {
    let ok = cargo()
        .args(["run", "-q", "--example", "probe"])
        .status()?
        .success();
    let exe = build_example("probe")?;
    // Each run says which area it must find: the probe fails otherwise.
    let host = boot.boot(1)?;
    let script = format!(
        "rc=0\n\
         echo '== guest, glibc 2.36 default'; {exe} --expect libc-legacy || rc=1\n\
         echo '== guest, {NO_LIBC_RSEQ}'; env {NO_LIBC_RSEQ} {exe} --expect crate || rc=1\n\
         exit $rc\n",
        exe = host.path(&exe)?,
    );
    let ok = ok && guest::run(&host, &script)? == 0;
    let mut debian = boot.clone();
    debian.debian_root = true;
    let debian = debian.boot(1)?;
    let script = format!(
        "echo '== guest, Debian trixie, glibc 2.41 default'\n{exe} --expect libc-v2\n",
        exe = debian.path(&exe)?,
    );
    Ok(ok && guest::run(&debian, &script)? == 0)
}

/// Criterion benches run on the host, then in a 1-vCPU guest.
struct Bench {
    /// `(package, bench)` pairs.
    benches: &'static [(&'static str, &'static str)],
    /// Built with `--cfg tokio_unstable`.
    unstable: bool,
}

impl Bench {
    /// The bare guard, and the guard inside glommio tasks.
    const GUARD: Bench = Bench {
        benches: &[
            ("rseq-slice-core", "guard"),
            ("rseq-slice-glommio", "guard"),
        ],
        unstable: false,
    };
    /// The tokio adapter's policies against a plain runtime.
    const TOKIO: Bench = Bench {
        benches: &[("rseq-slice-tokio", "sections")],
        unstable: true,
    };
}

fn bench(boot: &BootArgs, place: &Place, b: Bench) -> Result<bool> {
    let cargo = || {
        if b.unstable {
            unstable_cargo()
        } else {
            cargo()
        }
    };
    if !place.guest_only {
        eprintln!(
            "xtask: benches on the host ({})",
            match rseq_slice_core::kernel_support() {
                Ok(()) => "the kernel has the feature".to_string(),
                Err(why) => format!("fallback: {why}"),
            }
        );
    }
    let mut host = true;
    let guest_boot = boot.boot(1)?;
    // criterion writes under its target directory: a fresh one in the
    // guest's /tmp (the shared root is read-only).
    let mut script =
        String::from("CARGO_TARGET_DIR=\"$(mktemp -d)\"\nexport CARGO_TARGET_DIR\nrc=0\n");
    for (package, bench) in b.benches {
        if !place.guest_only {
            host &= cargo()
                .args(["bench", "-p", package, "--bench", bench])
                .status()?
                .success();
        }
        let exe = guest_boot.path(&one(artifacts(
            cargo().args(["bench", "-p", package, "--no-run", "--bench", bench]),
            |a| a["target"]["name"] == *bench,
        )?)?)?;
        script += &format!(
            "echo '== guest {package}, {NO_LIBC_RSEQ} (feature on)'; env {NO_LIBC_RSEQ} {exe} --bench || rc=1\n\
             echo '== guest {package}, glibc default (legacy area: fallback)'; {exe} --bench || rc=1\n"
        );
    }
    script += "exit $rc\n";
    if place.host_only {
        return Ok(host);
    }
    Ok(host && guest::run(&guest_boot, &script)? == 0)
}

/// A short run of the `locks` benchmark on the host (fallback there): a
/// fraction of a second a cell, outputs to a temporary directory.
fn locks_smoke() -> Result<bool> {
    eprintln!("xtask: smoke run of the locks benchmark (host)");
    let exe = build_locks()?;
    let tmp = tempfile::Builder::new()
        .prefix("rseq-slice-locks-smoke-")
        .tempdir()?;
    let dir = tmp.path().join("out");
    let ok = Command::new(&exe)
        .args([
            "--threads=1,2",
            "--cell-ms=60",
            "--repeats=1",
            "--quiet",
            "--out",
        ])
        .arg(&dir)
        .status()?
        .success();
    let files = ["locks.csv", "locks.png"]
        .iter()
        .all(|f| std::fs::metadata(dir.join(f)).is_ok_and(|m| m.len() > 0));
    drop(tmp);
    if !files {
        eprintln!("xtask: the locks smoke run wrote no CSV/PNG");
    }
    Ok(ok && files)
}

pub(crate) fn build_locks() -> Result<PathBuf> {
    one(artifacts(
        cargo().args([
            "build",
            "--release",
            "-p",
            "rseq-slice-benches",
            "--bin",
            "locks",
        ]),
        |a| a["target"]["name"] == "locks",
    )?)
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

/// cargo building with `--cfg tokio_unstable` (its own target directory, so
/// the two builds do not evict each other).
fn unstable_cargo() -> Command {
    let mut c = cargo();
    c.env("RUSTFLAGS", "--cfg tokio_unstable").env(
        "CARGO_TARGET_DIR",
        workspace_root().join("target/tokio-unstable"),
    );
    c
}

/// The test executables `cmd` (`cargo test --no-run ...`) builds.
fn test_binaries(cmd: &mut Command) -> Result<Vec<TestBin>> {
    let libraries = ["rseq-slice-core", "rseq-slice-tokio", "rseq-slice-glommio"]
        .map(|c| workspace_root().join(c));
    let mut bins = Vec::new();
    for (exe, a) in artifacts_json(cmd, |a| a["profile"]["test"].as_bool() == Some(true))? {
        let src = PathBuf::from(a["target"]["src_path"].as_str().unwrap_or(""));
        bins.push(TestBin {
            exe,
            library: libraries.iter().any(|l| src.starts_with(l)),
        });
    }
    Ok(bins)
}

fn build_example(name: &str) -> Result<PathBuf> {
    one(artifacts(
        cargo().args(["build", "--release", "--example", name]),
        |a| a["target"]["name"] == name,
    )?)
}

pub(crate) fn build_bench(name: &str) -> Result<PathBuf> {
    one(artifacts(
        cargo().args(["bench", "--no-run", "--all-features", "--bench", name]),
        |a| a["target"]["name"] == name,
    )?)
}

fn one(v: Vec<PathBuf>) -> Result<PathBuf> {
    v.into_iter()
        .next()
        .ok_or_else(|| "cargo built no executable".into())
}

fn artifacts(cmd: &mut Command, keep: impl Fn(&serde_json::Value) -> bool) -> Result<Vec<PathBuf>> {
    Ok(artifacts_json(cmd, keep)?
        .into_iter()
        .map(|(exe, _)| exe)
        .collect())
}

/// The executables `cmd` builds that `keep` accepts, with cargo's message.
fn artifacts_json(
    cmd: &mut Command,
    keep: impl Fn(&serde_json::Value) -> bool,
) -> Result<Vec<(PathBuf, serde_json::Value)>> {
    let out = cmd
        .arg("--message-format=json")
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err("cargo build failed".into());
    }
    let mut exes = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] == "compiler-artifact"
            && keep(&v)
            && let Some(exe) = v["executable"].as_str()
        {
            exes.push((PathBuf::from(exe), v.clone()));
        }
    }
    Ok(exes)
}

/// Run a command, failing on a non-zero status.
fn run_checked(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}").into())
    }
}

pub(crate) fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
}
