//! Open-loop HTTP/1.1 load generator, free of coordinated omission.
//!
//! A pacing thread releases request `i` at its intended time
//! `start + i / rate`, whether or not earlier responses came back; a pool of
//! keep-alive connections takes released requests in order. Latency is the
//! completion time minus the *intended* send time, so a stalled server shows
//! up in full. Requests still unanswered at the deadline are recorded with
//! their age at the deadline. Prints (or writes) a JSON summary.
//!
//! `--closed` measures capacity instead: every connection sends its next
//! request as soon as the previous answer arrives, and the report's
//! `throughput` is the completed requests per second after the warm-up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod closed;
mod http;
mod mix;

use anyhow::{Context, Result, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use rseq_slice_study::cli;
use rseq_slice_study::report::{LoadReport, summarize};
use tokio::sync::mpsc;

use crate::http::{connect, exchange, fetch};
use crate::mix::{Kind, Mix, Planned};

#[derive(Parser, Debug)]
#[command(about = "Open-loop load generator (constant rate, HDR histogram)")]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
    /// Requests per second (open loop).
    #[arg(long, default_value_t = 500.0, value_parser = cli::rate)]
    rate: f64,
    /// Closed loop: each connection sends back-to-back; measures capacity
    /// (`--rate` is ignored).
    #[arg(long)]
    closed: bool,
    /// Seconds of load, warm-up included.
    #[arg(long, default_value_t = 5.0, value_parser = cli::secs)]
    duration: f64,
    /// Seconds at the start not recorded.
    #[arg(long, default_value_t = 0.5, value_parser = cli::secs0)]
    warmup: f64,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=4096))]
    connections: u16,
    /// Seconds to wait for the last responses.
    #[arg(long, default_value_t = 2.0, value_parser = cli::secs0)]
    grace: f64,
    /// Distinct keys requested.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    keys: u64,
    /// Keys Zipf-distributed with this exponent (key 0 the hottest); 0:
    /// uniform.
    #[arg(long, default_value_t = 0.0, value_parser = cli::secs0)]
    zipf: f64,
    /// A GET of this path when no `--request` is given; `{key}` becomes a
    /// key in `0..keys`.
    #[arg(long, default_value = "/item/{key}")]
    path: String,
    /// A kind of request in the mix, `WEIGHT METHOD PATH [BODY]` (`{key}`
    /// in the path and the body becomes the key); repeat for a mix.
    #[arg(long = "request", value_parser = mix::kind)]
    requests: Vec<Kind>,
    /// Seed of the request sequence (the same in every run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Path of the service's counters (JSON), fetched at the end; a failure
    /// leaves them null.
    #[arg(long, default_value = "/metrics")]
    metrics_path: String,
    /// Write the JSON summary here instead of stdout.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

type Hist = Arc<Mutex<Histogram<u64>>>;

/// Answers by status code.
type Statuses = Arc<Mutex<std::collections::BTreeMap<u16, u64>>>;

/// Count an answer's status; a 5xx is also an error.
fn count(statuses: &Statuses, errors: &AtomicU64, status: u16) {
    if let Ok(mut s) = statuses.lock() {
        *s.entry(status).or_default() += 1;
    }
    if status >= 500 {
        errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// loadgen's CPU time since `since` as a share of the wall time since.
fn cpu_share(since: (Option<Duration>, Instant)) -> Option<f64> {
    let used = rseq_slice_study::report::cpu_time()?.checked_sub(since.0?)?;
    let wall = since.1.elapsed().as_secs_f64();
    (wall > 0.0).then(|| used.as_secs_f64() / wall)
}

/// The request mix of `args`.
fn mix_of(args: &Args) -> Result<Mix> {
    let kinds = if args.requests.is_empty() {
        vec![mix::kind(&format!("1 GET {}", args.path)).map_err(anyhow::Error::msg)?]
    } else {
        args.requests.clone()
    };
    Mix::new(kinds, args.keys, args.zipf, args.seed)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.path.starts_with('/') {
        bail!("--path must start with '/': {:?}", args.path);
    }
    mix_of(&args)?;
    if args.rate * args.duration > 1e8 {
        bail!("--rate x --duration is over 1e8 requests");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = if args.closed {
        rt.block_on(closed::closed(&args))?
    } else {
        rt.block_on(run(&args))?
    };
    let json = serde_json::to_string_pretty(&report)?;
    match &args.out {
        Some(p) => std::fs::write(p, json).with_context(|| format!("writing {}", p.display()))?,
        None => println!("{json}"),
    }
    Ok(())
}

async fn service_metrics(args: &Args) -> serde_json::Value {
    json_of(fetch(&args.addr, &args.metrics_path).await)
}

/// A fetched body as JSON (null when the fetch failed or it is not JSON).
fn json_of(body: Result<String>) -> serde_json::Value {
    body.ok()
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or(serde_json::Value::Null)
}

async fn run(args: &Args) -> Result<LoadReport> {
    let total = (args.rate * args.duration).round() as u64;
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let warm = Duration::from_secs_f64(args.warmup.min(args.duration));
    let mix = Arc::new(mix_of(args)?);
    let plan: Arc<Vec<Planned>> = Arc::new(mix.plan(total)?);
    let cpu0 = (rseq_slice_study::report::cpu_time(), Instant::now());
    let mut conns = Vec::new();
    for _ in 0..args.connections {
        conns.push(connect(&args.addr).await?);
    }
    let statuses = Statuses::default();
    let hist: Hist = Arc::new(Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?));
    // The requests scheduled in the second half of the measured window.
    let late: Hist = Arc::new(Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?));
    let done: Arc<Vec<AtomicBool>> = Arc::new((0..total).map(|_| AtomicBool::new(false)).collect());
    let errors = Arc::new(AtomicU64::new(0));
    let last_done = Arc::new(Mutex::new(Instant::now()));
    let (tx, rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let start = Instant::now() + Duration::from_millis(20);
    let mid = start + warm + (Duration::from_secs_f64(args.duration).saturating_sub(warm)) / 2;
    // The pacer: a plain thread, so pacing has the kernel timer's precision.
    let pacer = std::thread::spawn(move || {
        for i in 0..total {
            let at = start + period.mul_f64(i as f64);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if tx.send((i, at)).is_err() {
                break;
            }
        }
    });
    let mut tasks = tokio::task::JoinSet::new();
    for mut c in conns {
        let (rx, hist, done, errors) = (rx.clone(), hist.clone(), done.clone(), errors.clone());
        let late = late.clone();
        let last_done = last_done.clone();
        let addr = args.addr.clone();
        let (mix, plan, statuses) = (mix.clone(), plan.clone(), statuses.clone());
        tasks.spawn(async move {
            loop {
                let job = rx.lock().await.recv().await;
                let Some((i, at)) = job else { break };
                let req = match mix.request(plan[i as usize], at >= start + warm) {
                    Ok(r) => r,
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                match exchange(&mut c, req).await {
                    Ok(status) => {
                        let lat = at.elapsed();
                        count(&statuses, &errors, status);
                        done[i as usize].store(true, Ordering::Relaxed);
                        if at >= start + warm {
                            let us = (lat.as_micros() as u64).max(1);
                            if let Ok(mut h) = hist.lock() {
                                h.saturating_record(us);
                            }
                            if at >= mid
                                && let Ok(mut h) = late.lock()
                            {
                                h.saturating_record(us);
                            }
                            if let Ok(mut l) = last_done.lock() {
                                *l = (*l).max(Instant::now());
                            }
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        match connect(&addr).await {
                            Ok(n) => c = n,
                            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                }
            }
        });
    }
    let deadline = start + Duration::from_secs_f64(args.duration + args.grace);
    let all = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout_at(deadline.into(), all).await;
    let finished = Instant::now();
    tasks.abort_all();
    drop(rx);
    let _ = pacer.join();
    let service = service_metrics(args).await;
    // Unanswered requests count, with their age at the deadline.
    let mut missing = 0u64;
    let mut h = hist
        .lock()
        .map_err(|_| anyhow::anyhow!("histogram lock poisoned"))?;
    let mut late = late
        .lock()
        .map_err(|_| anyhow::anyhow!("histogram lock poisoned"))?;
    let ok_measured = h.len();
    for i in 0..total {
        let at = start + period.mul_f64(i as f64);
        if !done[i as usize].load(Ordering::Relaxed) {
            missing += 1;
            let age = (finished.saturating_duration_since(at).as_micros() as u64).max(1);
            if at >= start + warm {
                h.saturating_record(age);
            }
            if at >= mid {
                late.saturating_record(age);
            }
        }
    }
    let mut early = h.clone();
    let halves_p50 = match early.subtract(&*late) {
        Ok(()) if !early.is_empty() && !late.is_empty() => {
            [early.value_at_quantile(0.5), late.value_at_quantile(0.5)]
        }
        _ => [0, 0],
    };
    // Answers per second from the end of the warm-up until the last answer
    // (or the deadline): a service that falls behind shows a throughput
    // under the offered rate even when the grace period lets it catch up.
    let last = *last_done.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let measured = last
        .saturating_duration_since(start + warm)
        .as_secs_f64()
        .max(args.duration - warm.as_secs_f64())
        .max(1e-3);
    let mut report = summarize(
        &h,
        args.rate,
        args.duration,
        total,
        ok_measured,
        errors.load(Ordering::Relaxed),
        missing,
        measured,
        service,
    );
    report.halves_p50 = halves_p50;
    report.statuses = statuses.lock().map(|s| s.clone()).unwrap_or_default();
    report.client_cpu = cpu_share(cpu0);
    Ok(report)
}
