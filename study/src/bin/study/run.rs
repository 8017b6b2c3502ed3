//! One run: fresh noise, a fresh service (bundled or `--service`), loadgen,
//! and the kernel's counters around it. Every child dies with the study
//! ([`crate::procs`]).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rseq_slice_core::diagnostics::KernelStats;
use rseq_slice_study::report::LoadReport;

use crate::args::Noise;
use crate::cgroup::Group;
use crate::plan::{Config, Plan};
use crate::procs::{Kid, spawn, spawn_in};
use crate::store::Kernel;

/// What every run shares.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) plan: Plan,
    pub(crate) bins: PathBuf,
    pub(crate) logs: PathBuf,
    pub(crate) service: Option<String>,
    pub(crate) shards: u16,
    pub(crate) work: u32,
    pub(crate) preempted_us: u64,
    pub(crate) connections: u16,
    pub(crate) path: String,
    /// loadgen's `--request` mix, `--keys`, `--zipf`.
    pub(crate) requests: Vec<String>,
    pub(crate) keys: u64,
    pub(crate) zipf: f64,
    pub(crate) metrics_path: String,
    /// What the control is started as.
    pub(crate) baseline: String,
    /// `--noise-cmd`.
    pub(crate) noise_cmd: Option<String>,
    /// Whether the service runs with `GLIBC_TUNABLES=glibc.pthread.rseq=0`.
    pub(crate) libc_rseq_off: bool,
    /// `--noise service`: the neighbour's offered rate, req/s.
    pub(crate) neighbour_rate: f64,
    /// Where the service and the noise run (`plan.cpus` of them), and the
    /// client's own CPU (none: the client shares theirs).
    pub(crate) service_cpus: Vec<usize>,
    pub(crate) client_cpu: Option<usize>,
}

impl Ctx {
    /// The CPUs loadgen runs on.
    fn client_cpus(&self) -> Vec<usize> {
        self.client_cpu.map_or_else(Vec::new, |c| vec![c])
    }
}

fn log(logs: &Path, tag: &str, name: &str) -> Result<std::fs::File> {
    let p = logs.join(format!("{tag}.{name}.log"));
    std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))
}

/// Noise, a service and its port: what a load runs against.
#[derive(Debug)]
pub(crate) struct Stage {
    pub(crate) port: u16,
    /// The service's cgroup, if it has one (`cpu.weight`, `cpu.max`).
    pub(crate) group: Option<Group>,
    _service: Kid,
    _noise: Vec<Kid>,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Start the noise, then the service as `variant`, and wait until it listens.
pub(crate) fn stage(
    ctx: &Ctx,
    config: &Config,
    variant: &str,
    tag: &str,
    secs: f64,
) -> Result<Stage> {
    let kind: Noise = clap::ValueEnum::from_str(&config.noise, true)
        .map_err(|e| anyhow::anyhow!("noise {:?}: {e}", config.noise))?;
    let (wakers, hogs) = kind.threads(ctx.plan.cpus);
    let budget = secs + 30.0;
    let batch = if kind.weighted() {
        Some(Group::new("batch")?.weight(1)?)
    } else {
        None
    };
    let group = if kind.weighted() || config.cpu_max > 0 {
        let g = Group::new("service")?.weight(100)?;
        Some(g.max(config.cpu_max, ctx.service_cpus.len())?)
    } else {
        None
    };
    let noise = if let (Noise::Command, Some(line)) = (kind, &ctx.noise_cmd) {
        let mut c = Command::new("sh");
        c.args(["-c", line])
            .stdout(Stdio::null())
            .stderr(log(&ctx.logs, tag, "noise")?);
        Some(spawn_in(
            &mut c,
            "the noise command",
            true,
            &ctx.service_cpus,
            None,
        )?)
    } else if wakers + hogs > 0 {
        let mut c = Command::new(ctx.bins.join("noise"));
        c.args(["--wakers", &wakers.to_string(), "--hogs", &hogs.to_string()])
            .args(["--policy", kind.policy()])
            .args(["--secs", &format!("{budget}")])
            .stdout(Stdio::null())
            .stderr(log(&ctx.logs, tag, "noise")?);
        let into = batch.as_ref().map(Group::procs).transpose()?;
        Some(spawn_in(
            &mut c,
            "noise",
            false,
            &ctx.service_cpus,
            into.as_ref(),
        )?)
    } else {
        None
    };
    // The control is the baseline under another label.
    let variant = if variant == crate::stats::CONTROL {
        ctx.baseline.as_str()
    } else {
        variant
    };
    let mut noise: Vec<Kid> = noise.into_iter().collect();
    if kind == Noise::Service {
        // A second copy of the service, as the same variant, under its own
        // open-loop load from the client's CPU.
        let (kid, nport) = service(ctx, config, variant, tag, "neighbour", None, budget)?;
        noise.push(kid);
        let mut c = loadgen(
            ctx,
            nport,
            budget,
            0.0,
            &ctx.logs.join(format!("{tag}-neighbour.json")),
        );
        c.args(["--rate", &ctx.neighbour_rate.to_string()])
            .stderr(log(&ctx.logs, tag, "neighbour-loadgen")?);
        noise.push(spawn(
            &mut c,
            "the neighbour's loadgen",
            &ctx.client_cpus(),
        )?);
    }
    let into = group.as_ref().map(Group::procs).transpose()?;
    let (service, port) = service(ctx, config, variant, tag, "service", into.as_ref(), budget)?;
    Ok(Stage {
        port,
        group,
        _service: service,
        _noise: noise,
    })
}

/// Start the service (bundled or `--service`) as `variant` on a free port
/// and wait until it listens; its output goes to `<tag>-<name>` logs.
fn service(
    ctx: &Ctx,
    config: &Config,
    variant: &str,
    tag: &str,
    name: &str,
    into: Option<&std::fs::File>,
    budget: f64,
) -> Result<(Kid, u16)> {
    let port = free_port()?;
    let mut cmd = match &ctx.service {
        Some(template) => {
            let line = template
                .replace("{variant}", variant)
                .replace("{port}", &port.to_string())
                .replace("{workers}", &config.workers.to_string())
                .replace("{lock}", &config.lock)
                .replace("{hold_us}", &config.hold_us.to_string());
            let mut c = Command::new("sh");
            c.args(["-c", &line]);
            c
        }
        None => {
            let mut c = Command::new(ctx.bins.join("service"));
            c.args(["--variant", variant, "--port", &port.to_string()])
                .args(["--workers", &config.workers.to_string()])
                .args([
                    "--lock",
                    &config.lock,
                    "--hold-us",
                    &config.hold_us.to_string(),
                ])
                .args([
                    "--shards",
                    &ctx.shards.to_string(),
                    "--work",
                    &ctx.work.to_string(),
                ])
                .args(["--preempted-us", &ctx.preempted_us.to_string()])
                .args(["--max-secs", &format!("{}", budget.ceil() as u64 + 30)]);
            c
        }
    };
    cmd.env("RSEQ_SLICE_STUDY_VARIANT", variant)
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(log(&ctx.logs, tag, name)?);
    if ctx.libc_rseq_off {
        cmd.env("GLIBC_TUNABLES", "glibc.pthread.rseq=0");
    }
    let mut service = spawn_in(
        &mut cmd,
        "the service",
        ctx.service.is_some(),
        &ctx.service_cpus,
        into,
    )?;
    let out = service.0.stdout.take().context("service stdout")?;
    let mut copy = log(&ctx.logs, tag, &format!("{name}.out"))?;
    let (tx, rx) = mpsc::channel();
    // Drain its stdout (a full pipe would stall it), reporting `listening N`.
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = writeln!(copy, "{line}");
            if let Some(p) = line
                .strip_prefix("listening ")
                .and_then(|p| p.trim().parse::<u16>().ok())
            {
                let _ = tx.send(p);
            }
        }
    });
    let limit = Instant::now() + Duration::from_secs(60);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let port = loop {
        if let Ok(p) = rx.try_recv() {
            break p;
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(50)).is_ok() {
            break port;
        }
        if let Some(s) = service.0.try_wait()? {
            bail!(
                "the service exited ({s}) before it listened; see {}",
                ctx.logs.display()
            );
        }
        if Instant::now() > limit {
            bail!(
                "the service did not listen within 60 s (PORT {port}, or print `listening <port>`)"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok((service, port))
}

impl Stage {
    /// The service cgroup's bandwidth counters now (none without a cgroup).
    pub(crate) fn throttling(&self) -> Option<crate::cgroup::Throttling> {
        self.group.as_ref().and_then(Group::throttling)
    }
}

/// Run loadgen against `stage`: open loop at `rate`, or closed loop when
/// `rate` is none; `secs` of load, warm-up included.
pub(crate) fn load(
    ctx: &Ctx,
    stage: &Stage,
    tag: &str,
    rate: Option<f64>,
    secs: f64,
) -> Result<LoadReport> {
    let json = ctx.logs.join(format!("{tag}.json"));
    let warmup = ctx.plan.warmup.min(secs / 2.0);
    let mut c = loadgen(ctx, stage.port, secs, warmup, &json);
    c.stderr(log(&ctx.logs, tag, "loadgen")?);
    match rate {
        Some(r) => c.args(["--rate", &r.to_string()]),
        None => c.arg("--closed"),
    };
    let mut lg = spawn(&mut c, "loadgen", &ctx.client_cpus())?;
    let budget = secs + 30.0;
    let limit = Instant::now() + Duration::from_secs_f64(budget);
    let status = loop {
        if let Some(s) = lg.0.try_wait()? {
            break s;
        }
        if Instant::now() > limit {
            bail!("loadgen did not finish in {budget} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !status.success() {
        bail!("loadgen failed ({status}); see {}", ctx.logs.display());
    }
    let text =
        std::fs::read_to_string(&json).with_context(|| format!("reading {}", json.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// loadgen against `port` for `secs` (`warmup` of them unmeasured), its
/// report to `json`: the request mix and connections of the study, no rate.
fn loadgen(ctx: &Ctx, port: u16, secs: f64, warmup: f64, json: &Path) -> Command {
    let mut c = Command::new(ctx.bins.join("loadgen"));
    c.args(["--addr", &format!("127.0.0.1:{port}")])
        .args(["--duration", &secs.to_string()])
        .args(["--warmup", &warmup.to_string()])
        .args(["--connections", &ctx.connections.to_string()])
        .args(["--path", &ctx.path, "--metrics-path", &ctx.metrics_path])
        .args([
            "--keys",
            &ctx.keys.to_string(),
            "--zipf",
            &ctx.zipf.to_string(),
        ])
        .arg("--out")
        .arg(json)
        .stdout(Stdio::null());
    for r in &ctx.requests {
        c.args(["--request", r]);
    }
    c
}

/// The kernel counters' deltas over `f`, or why there are none.
pub(crate) fn with_kernel<T>(f: impl FnOnce() -> T) -> (T, Result<Kernel, String>) {
    let before = KernelStats::read();
    let out = f();
    let delta = match (before, KernelStats::read()) {
        (Ok(b), Ok(a)) => {
            let d = a.since(b);
            Ok(Kernel {
                sgrant: d.granted,
                sexpir: d.expired,
                srevok: d.revoked,
                syield: d.yielded,
                sabort: d.aborted,
            })
        }
        (Err(e), _) | (_, Err(e)) => Err(format!("rseq/stats: {e}")),
    };
    (out, delta)
}
