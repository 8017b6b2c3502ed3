//! `cargo xtask`: everything that is not `cargo test`.
//!
//! - `cargo xtask test`: host tests, then the guest suite on a kernel with
//!   the slice extension in three boots: the feature on (the crate's area,
//!   glibc 2.36's legacy one), off at boot, and glibc 2.41's area adopted
//!   (a Debian trixie root). The host part also smoke-runs the
//!   `lock_holder_preemption` benchmark binary and the study (`suite`).
//! - `cargo xtask probe`: the probe example on the host and in the guest.
//! - `cargo xtask bench-guard`: the guard overhead benches (`guard_overhead`:
//!   bare, and inside glommio tasks), host and guest.
//! - `cargo xtask bench-tokio`: what the tokio adapter's policies cost a
//!   busy runtime (`section_overhead`), host and guest.
//! - `cargo xtask bench-locks`: the lock-holder-preemption benchmark at 1,
//!   2 and 4 vCPUs and `slice_ext_nsec` 5 and 50 µs (and natively where the
//!   host kernel has the feature); `--repro` checks two boots agree.
//! - `cargo xtask fidelity`: does the guest schedule like hardware? Checks
//!   with known answers at 1, 2 and 4 vCPUs, two boots each.
//! - `cargo xtask study`: the tail-latency study (natively when this kernel
//!   has the feature, else in guests side by side, 1 service vCPU + 1 client vCPU each; `study`;
//!   `--tokio lock-hooks` builds it against a patched tokio, `tokio_patched`).
//! - `cargo xtask guest -- CMD`: any command in the guest.
//! - `cargo xtask kernel`: find (or build and cache) the guest kernel.
//! - `cargo xtask packages`: `cargo test` inside each crate's `.crate`.
//!
//! Modules: `guest` (booting it), `kernel` (finding or building one),
//! `tools` (qemu and virtme-ng), `qemu` and `qemu_bounded` (which qemu,
//! and the bounded-turn one built from source), `debian_root` (the glibc 2.41 root),
//! `build` (cargo and its artifacts), `suite`, `bench`, `bench_locks`,
//! `fidelity`, `study`, `tokio_patched` (the study's tokio with lock hooks), `packages`.

mod bench;
mod bench_locks;
mod build;
mod debian_root;
mod fidelity;
mod guest;
mod kernel;
mod packages;
mod qemu;
mod qemu_bounded;
mod study;
mod suite;
mod tokio_patched;
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, Parser, Subcommand};

use build::{artifacts, build_example, cargo, one, run_checked, test_binaries, unstable_cargo};
use guest::Boot;
use suite::{Pass, TestBin};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(about = "rseq-slice tasks: guest kernel, guest tests, benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Host tests and a smoke run of the lock-holder-preemption benchmark,
    /// then the guest suite: four boots (the feature on: the crate's area and
    /// glibc 2.36's legacy one; the feature off at boot; glibc 2.41's area,
    /// adopted; the fidelity checks' short form on one vCPU).
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
    /// The lock-holder-preemption benchmark (`benches/`, binary
    /// `lock_holder_preemption`): one virtual-time guest boot per vCPU count
    /// and `slice_ext_nsec`, and natively when the host kernel has the
    /// feature. Writes out/locks/guest/cpus{N}-slice{NS}/locks.{csv,png}.
    BenchLocks(bench_locks::Args),
    /// The platform's fidelity checks (known answers from Linux on
    /// hardware) in one guest boot per vCPU count and repeat; writes
    /// out/fidelity/{virtual,real}-*.json and a summary table.
    Fidelity(fidelity::Args),
    /// The tail-latency study: service + noise + open-loop load, variants
    /// off / control / locks x rates. Runs natively when this kernel has the
    /// slice extension, else in guests side by side (1 vCPU for the service
    /// unless --cpus, and 1 for the client).
    Study {
        #[command(flatten)]
        boot: BootArgs,
        /// The full matrix: each noise kind, hot lock, hold time and worker
        /// count in turn, loads 0.3-0.9, variants off,control,oneliner,sched,polls,locks.
        #[arg(long)]
        full: bool,
        /// Guests side by side, each running its share of every cell
        /// [default: the host's cores, at least 2].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16))]
        boots: Option<u32>,
        /// A smoke run on the host (fallback where the kernel lacks the
        /// feature): one rate, one repeat, 1.5 s per run.
        #[arg(long, conflicts_with = "full")]
        smoke: bool,
        /// The tokio the study's binaries are built with: `lock-hooks` is
        /// tokio 1.54.1 with xtask/tokio/lock-hooks.patch (the service's
        /// `tokio-locks` variant), built in a copy of the workspace into
        /// target/tokio-lock-hooks; the published crates never see it.
        #[arg(long, value_enum, default_value_t = tokio_patched::Tokio::Stock)]
        tokio: tokio_patched::Tokio,
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
    Kernel {
        /// Build one into the cache even where another is found (the shared
        /// kernel lacks `CONFIG_CFS_BANDWIDTH`, which `--cpu-max` needs);
        /// use it with `RSEQ_SLICE_KERNEL=<the printed path>`.
        #[arg(long)]
        build: bool,
    },
    /// `cargo package` the three crates, unpack each, and run `cargo test
    /// --all-features` inside it, as a distribution packager would.
    Packages,
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
    /// The qemu that boots the guest: Debian 12's 7.2 (`host`), trixie's
    /// 10.0 (`trixie`, from a root built into the cache), whose round-robin
    /// splits each slice between the vCPUs, or 7.2 with bounded turns
    /// (`bounded`, built from source into the cache the first time, about
    /// 10 minutes), where no vCPU runs more than `--quantum` instructions
    /// at a turn.
    #[arg(long, value_enum, default_value_t = qemu::Qemu::Host)]
    pub(crate) qemu: qemu::Qemu,
    /// `--qemu bounded`: instructions per vCPU turn (ns of virtual time at
    /// `--shift 0`), at least 512 [default: 5000]. Results record it.
    #[arg(long, value_parser = clap::value_parser!(u32).range(qemu::MIN_QUANTUM as i64..))]
    pub(crate) quantum: Option<u32>,
    /// The kernel's preemption model, set at boot (`preempt=`): `lazy` (the
    /// shared kernel's default) or `full`. Results record it.
    #[arg(long, value_enum, default_value_t = guest::Preempt::Lazy)]
    pub(crate) preempt: guest::Preempt,
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
        append.push(format!("preempt={}", self.preempt.name()));
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
            qemu: qemu::Emulator::new(self.qemu, self.quantum)?,
            client_cpu: false,
            preempt: self.preempt,
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
                vec![
                    Pass::FeatureOn,
                    Pass::Off,
                    Pass::Glibc241,
                    Pass::Fidelity,
                    Pass::FidelityBounded,
                ]
            } else {
                passes
            };
            suite::test(!guest_only, !host_only, &boot, &passes)
        }
        Cmd::Probe { boot } => bench::probe(&boot),
        Cmd::BenchGuard { boot, place } => bench::bench(&boot, &place, bench::Bench::GUARD),
        Cmd::BenchTokio { boot, place } => bench::bench(&boot, &place, bench::Bench::TOKIO),
        Cmd::BenchLocks(args) => bench_locks::run(&args),
        Cmd::Fidelity(args) => fidelity::run(&args),
        Cmd::Study {
            boot,
            full,
            smoke,
            extra,
            boots,
            tokio,
        } => study::study(&boot, full, smoke, &extra, boots, tokio),
        Cmd::Guest { boot, command } => boot.boot(2).and_then(|mut b| {
            b.rw_dirs.push(workspace_root().join("out"));
            guest::run(&b, &command.join(" ")).map(|c| c == 0)
        }),
        Cmd::Packages => packages::check(),
        Cmd::Kernel { build } => if build {
            kernel::build()
        } else {
            kernel::kernel(true)
        }
        .map(|k| {
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

pub(crate) fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
}
