//! The study's flags. Every number goes through a value parser (finite, in
//! range): bad input is a one-line clap error before anything starts.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use rseq_slice_study::state::LockKind;
use rseq_slice_study::{cli, tokio_locks};

/// CPU noise next to the service (hogs and wakers: as many as the CPUs the
/// study is pinned to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Noise {
    /// No noise.
    Quiet,
    /// Co-located batch work: one CPU hog per CPU, at the service's
    /// priority (nice 0).
    Batch,
    /// The same hogs at `nice 19` (weight 15 against the service's 1024).
    BatchNice19,
    /// The same hogs under `SCHED_IDLE`.
    BatchIdle,
    /// The same hogs at nice 0 in a cgroup with `cpu.weight` 1, the service
    /// in a sibling with `cpu.weight` 100.
    BatchWeight1,
    /// Bursty wakers (2 µs busy / 50 µs asleep), one per CPU.
    Wakers,
    /// Both.
    Both,
    /// `--noise-cmd`, your own.
    Command,
    /// A neighbour of the same kind: a second copy of the service, as the
    /// same variant, on the same CPUs at the same priority, under an
    /// open-loop load of `--neighbour-rate` from the client's CPU.
    Service,
}

impl Noise {
    /// `(wakers, hogs)` on `cpus` CPUs.
    pub(crate) fn threads(self, cpus: usize) -> (usize, usize) {
        match self {
            Noise::Quiet => (0, 0),
            Noise::Batch | Noise::BatchNice19 | Noise::BatchIdle | Noise::BatchWeight1 => (0, cpus),
            Noise::Wakers => (cpus, 0),
            Noise::Both => (cpus, cpus),
            Noise::Command | Noise::Service => (0, 0),
        }
    }

    /// The noise binary's `--policy`.
    pub(crate) fn policy(self) -> &'static str {
        match self {
            Noise::BatchNice19 => "nice19",
            Noise::BatchIdle => "idle",
            _ => "nice0",
        }
    }

    /// Whether the noise and the service run in sibling cgroups of
    /// `cpu.weight` 1 and 100.
    pub(crate) fn weighted(self) -> bool {
        self == Noise::BatchWeight1
    }
}

/// glibc's rseq registration in the service's process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LibcRseq {
    /// `GLIBC_TUNABLES=glibc.pthread.rseq=0`.
    Off,
    /// The environment as it is.
    Keep,
}

/// The bundled service's variants (see the `service` binary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Variant {
    /// A plain tokio runtime.
    Off,
    /// `off` again under another label: the A/A control, whose differences
    /// from `off` are the method's false positives.
    Control,
    /// `with_slice_extension()` with its defaults, and no other change.
    Oneliner,
    /// Scheduler sections.
    Sched,
    /// Scheduler sections and whole task polls.
    Polls,
    /// What ships: `with_slice_extension()` with its defaults, plus
    /// slice-aware lock holds.
    Locks,
    /// `with_slice_extension()` with its defaults, plus sections at tokio's
    /// own lock holds: needs the study built by `cargo xtask study --tokio
    /// lock-hooks`.
    TokioLocks,
}

/// A variant's name: letters, digits, `-` and `_` (it goes into file
/// names and into the `--service` command).
fn variant_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?}: a variant is 1-64 letters, digits, '-' or '_'"
        ))
    }
}

impl Args {
    /// What clap cannot check: variants the bundled service has, a
    /// baseline among the variants, a noise command where one is named.
    pub(crate) fn check(&self, variants: &[String]) -> Result<(), String> {
        if self.service.is_none() {
            for v in variants.iter().chain([&self.baseline]) {
                if <Variant as ValueEnum>::from_str(v, false).is_err() {
                    return Err(format!(
                        "--variants: the bundled service has no variant {v:?} (it has off, control, oneliner, sched, polls, locks, tokio-locks; name your own with --service)"
                    ));
                }
            }
            let hooks = name(Variant::TokioLocks);
            if !tokio_locks::AVAILABLE && variants.contains(&hooks) {
                return Err(format!("--variants: {}", tokio_locks::UNAVAILABLE));
            }
        }
        if self.baseline == CONTROL {
            return Err(format!("--baseline cannot be {CONTROL:?}, the A/A control"));
        }
        if !variants.contains(&self.baseline) {
            return Err(format!(
                "--baseline {:?} is not among the variants {variants:?}",
                self.baseline
            ));
        }
        let named = self
            .noise
            .as_ref()
            .is_some_and(|n| n.contains(&Noise::Command));
        if named && self.noise_cmd.is_none() {
            return Err("--noise command needs --noise-cmd".into());
        }
        Ok(())
    }
}

/// The A/A control's name: the baseline, run again under this label.
pub(crate) const CONTROL: &str = "control";

/// Parse a name the way clap does, for values read back from runs.jsonl.
pub(crate) fn name<T: ValueEnum>(v: T) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}

#[derive(Parser, Debug, Clone)]
#[command(
    about = "The tail-latency study: variants x loads (fractions of a calibrated capacity) x configurations, repeated"
)]
pub(crate) struct Args {
    /// Every axis: each noise kind, lock, hold time and worker count in turn
    /// (the others at their defaults), variants off,sched,polls,locks.
    #[arg(long, conflicts_with = "smoke")]
    pub(crate) full: bool,
    /// Smoke run: quiet and both noise, load 0.5, one short repeat.
    #[arg(long)]
    pub(crate) smoke: bool,
    /// Offered loads as fractions of the calibrated capacity [default:
    /// 0.5,0.8; --full: 0.3,0.5,0.7,0.8,0.9; --smoke: 0.5].
    #[arg(long, value_delimiter = ',', value_parser = cli::load)]
    pub(crate) loads: Option<Vec<f64>>,
    /// Absolute rates (req/s) instead of --loads: no calibration.
    #[arg(long, value_delimiter = ',', value_parser = cli::rate, conflicts_with = "loads")]
    pub(crate) rates: Option<Vec<f64>>,
    /// Noise kinds [default: batch; --smoke: quiet,both; --full: each]. The
    /// batch-* kinds are the operator's alternatives to the extension: the
    /// same hogs at a lower priority.
    #[arg(long, value_delimiter = ',', value_enum)]
    pub(crate) noise: Option<Vec<Noise>>,
    /// Variants [default: off,control,locks; --smoke: off,locks; --full:
    /// off,control,oneliner,sched,polls,locks]. The bundled service's are
    /// those of [`Variant`]; a `--service` names its own. `control` is the
    /// A/A control: the baseline again, under another label.
    #[arg(long, value_delimiter = ',', value_parser = variant_name)]
    pub(crate) variants: Option<Vec<String>>,
    /// The variant every other is compared with, and calibrated with.
    #[arg(long, default_value = "off", value_parser = variant_name)]
    pub(crate) baseline: String,
    /// The bundled service's hot lock kinds [default: parking; --full: each].
    #[arg(long, value_delimiter = ',', value_enum)]
    pub(crate) locks: Option<Vec<LockKind>>,
    /// Hold times of the hot lock, µs; 0: the LRU update alone, a real
    /// structure's hold [default: 5; --full: 0, 1, 5, 20].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub(crate) hold_us: Option<Vec<u64>>,
    /// Service workers per CPU the study runs on (1: workers = vCPUs)
    /// [default: 1; --full: 1, 2].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) workers_per_cpu: Option<Vec<u16>>,
    /// The service in a cgroup with `cpu.max` at these percentages of its
    /// CPUs (100 ms period); 0: no limit [default: 0]. Needs a kernel with
    /// CFS bandwidth control (CONFIG_CFS_BANDWIDTH; the shared guest kernel
    /// has none).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(0..=100))]
    pub(crate) cpu_max: Option<Vec<u32>>,
    /// Repeats of each cell in this boot [default: 5, so that two boots
    /// give 10 a cell; --smoke: 1].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) repeats: Option<u32>,
    /// Requests recorded per run after the warm-up (sets the run's length:
    /// max(--min-secs, samples / rate + warm-up)) [default: 5000; --full:
    /// 8000; --smoke: 2000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub(crate) samples: Option<u64>,
    /// Shortest run, seconds (warm-up included) [default: 1; --smoke: 1.5].
    #[arg(long, alias = "duration", value_parser = cli::secs)]
    pub(crate) min_secs: Option<f64>,
    /// Seconds at the start of each run not recorded.
    #[arg(long, default_value_t = 0.5, value_parser = cli::secs0)]
    pub(crate) warmup: f64,
    /// Capacity from the closed loop alone (no open-loop check at that rate).
    #[arg(long)]
    pub(crate) closed_only: bool,
    /// Seconds of each calibration load (closed loop, then the open-loop
    /// check) [default: 2; --full: 3; --smoke: 1].
    #[arg(long, value_parser = cli::secs)]
    pub(crate) calibrate_secs: Option<f64>,
    /// Calibrations of each configuration in this boot; the capacity is
    /// the median of every calibration runs.jsonl holds, every boot's
    /// [default: 1; --full: 2].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) calibrations: Option<u32>,
    /// Calibrate, then stop (the xtask calibrates every boot first, then
    /// gives each boot all the calibrations).
    #[arg(long)]
    pub(crate) calibrate_only: bool,
    /// This boot's label, stored with every run (runs of several boots
    /// merge into one runs.jsonl).
    #[arg(long, default_value = "")]
    pub(crate) boot: String,
    /// The latency target of "capacity at the SLO": p99.9 under this, µs.
    #[arg(long, default_value_t = 2000.0, value_parser = cli::rate)]
    pub(crate) slo_us: f64,
    /// Cache shards of the bundled service.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) shards: u16,
    /// Rounds of hashing in each request's task-level section.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub(crate) work: u32,
    /// A hot-lock hold longer than this counts as preempted, µs.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub(crate) preempted_us: u64,
    /// Load generator connections, each with one request in flight: enough
    /// to carry rate x worst latency (open and closed loop).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub(crate) connections: u16,
    /// Pin everything to the first N CPUs the study may use; 0: all of them.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=4096))]
    pub(crate) cpus: u16,
    /// The last of those CPUs is the client's alone: loadgen runs there,
    /// the service and the noise on the others (a remote client in
    /// miniature).
    #[arg(long)]
    pub(crate) client_cpu: bool,
    /// Output directory.
    #[arg(long, default_value = "out/study")]
    pub(crate) out: PathBuf,
    /// Directory of the service, loadgen and noise binaries (default: this one's).
    #[arg(long)]
    pub(crate) bin_dir: Option<PathBuf>,
    /// Where this runs, for the report (the xtask passes the guest's conditions).
    #[arg(long)]
    pub(crate) conditions: Option<String>,
    /// Rebuild every table, CSV, JSON and plot from `--out`'s runs.jsonl (no runs).
    #[arg(long, conflicts_with = "resume")]
    pub(crate) replot: bool,
    /// Continue an interrupted matrix: skip runs runs.jsonl already holds.
    #[arg(long)]
    pub(crate) resume: bool,
    /// Your service's command (run with `sh -c`) instead of the bundled one:
    /// `{variant}` and `{port}` (and `{workers}`, `{lock}`, `{hold_us}`) are
    /// substituted, and the environment has RSEQ_SLICE_STUDY_VARIANT and
    /// PORT. It listens on PORT on 127.0.0.1 or prints `listening <port>`.
    #[arg(long)]
    pub(crate) service: Option<String>,
    /// What loadgen requests (`{key}` becomes a key): a GET of this path,
    /// unless `--request` gives a mix.
    #[arg(long, default_value = "/item/{key}")]
    pub(crate) path: String,
    /// A kind of request in loadgen's mix, `WEIGHT METHOD PATH [BODY]`
    /// (`{key}` becomes a key); repeat for a mix.
    #[arg(long = "request")]
    pub(crate) requests: Vec<String>,
    /// Distinct keys.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) keys: u64,
    /// Keys Zipf-distributed with this exponent (0: uniform).
    #[arg(long, default_value_t = 0.0, value_parser = cli::secs0)]
    pub(crate) zipf: f64,
    /// Your noise's command (run with `sh -c` on the service's CPUs, fresh
    /// for every run, killed with its process group at the run's end)
    /// instead of the bundled noise; `--noise` then names it in tables
    /// (`command`).
    #[arg(long)]
    pub(crate) noise_cmd: Option<String>,
    /// `--noise service`: the neighbour's offered load, req/s (fixed, so the
    /// calibration measures the capacity that is left beside it).
    #[arg(long, default_value_t = 3000.0, value_parser = cli::rate)]
    pub(crate) neighbour_rate: f64,
    /// glibc's own rseq registration in the service: `off` sets
    /// `GLIBC_TUNABLES=glibc.pthread.rseq=0`, so the crate registers the
    /// area (glibc before 2.41 registers one without the extension); `keep`
    /// leaves the environment alone [default: off for the bundled service,
    /// keep for `--service`].
    #[arg(long, value_enum)]
    pub(crate) libc_rseq: Option<LibcRseq>,
    /// Your service's name in tables and plots [default: the bundled
    /// service's lock and hold time; with `--service`: "service"].
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// The service's JSON counters (fetched after each run; may be absent).
    #[arg(long, default_value = "/metrics")]
    pub(crate) metrics_path: String,
}
