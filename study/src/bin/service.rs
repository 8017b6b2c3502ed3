//! The study's web service: axum on a tokio multi-thread runtime, handlers
//! taking short critical sections on shared state.
//!
//! Variants (`--variant`): `off` is a plain runtime; `oneliner` is
//! `with_slice_extension()` with its defaults and no other change; `locks`
//! is that plus slice-aware lock holds and a `slice_critical` section (see
//! `rseq_slice_study::state`); `sched` is scheduler sections alone
//! (`SliceConfig::new().scheduler_sections(true)`, needs `--cfg
//! tokio_unstable`); `polls` is `sched` plus whole task polls as sections
//! (`task_polls(true)`); `tokio-locks` is `oneliner` plus a section at
//! each of tokio's own lock holds (inject queue, scheduler mutex, timer
//! wheel, steals), through the hooks of a patched tokio
//! ([`rseq_slice_study::tokio_locks`]; a stock build refuses it). Only
//! `locks` changes the handler's code. `--lock`
//! picks the hot lock,
//! `--hold-us` its hold time. Prints `listening <port>` on stdout; `GET
//! /metrics` answers the slice counters, the hot lock's statistics and the
//! service's own latency of every `/item` request (`served_us`).

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::routing::get;
use clap::{Parser, ValueEnum};
use rseq_slice_study::state::{LockKind, Setup, State, mix};
use rseq_slice_study::{lockstats, served, tokio_locks};
use rseq_slice_tokio::{BuilderExt, SliceConfig, SliceMetrics};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Variant {
    Off,
    Oneliner,
    Sched,
    Polls,
    Locks,
    TokioLocks,
}

#[derive(Parser, Debug)]
#[command(about = "The latency study's service")]
struct Args {
    #[arg(long, value_enum, default_value = "off")]
    variant: Variant,
    /// tokio worker threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: u16,
    /// Port on 127.0.0.1 (0: any; the port is printed).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Cache shards (few shards: more contention).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    shards: u16,
    /// The hot (shard) lock.
    #[arg(long, value_enum, default_value = "parking")]
    lock: LockKind,
    /// Busy time inside each shard lock hold, µs (read from the clock).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    hold_us: u64,
    /// A hold longer than this counts as preempted, µs.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    preempted_us: u64,
    /// Rounds of hashing in each request's task-level section (no lock held).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    work: u32,
    /// Exit after this many seconds whatever happens.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    max_secs: u64,
}

#[derive(Clone)]
struct App {
    state: Arc<State>,
    metrics: Option<SliceMetrics>,
}

async fn item(AxState(app): AxState<App>, Path(key): Path<u64>) -> String {
    let v = app.state.touch(key);
    app.state.count("item");
    // Some task-level work too; under `locks` one poll of it is a section.
    let w = app.state.setup.work;
    let work = async move { mix(v, w) };
    let h = if app.state.setup.slice_locks {
        rseq_slice_tokio::slice_critical(work).await
    } else {
        work.await
    };
    format!("{:x}\n", h & 0xffff)
}

/// Time each request of the measured window inside the service
/// ([`served`]): loadgen marks them with `x-measured`, so nothing needs to
/// ask the service for a snapshot while the load runs.
async fn timed(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let measured = req.headers().contains_key("x-measured");
    let t = std::time::Instant::now();
    let answer = next.run(req).await;
    if measured {
        served::record(t.elapsed());
    }
    answer
}

async fn metrics_handler(AxState(app): AxState<App>) -> String {
    let (t, state) = match &app.metrics {
        Some(m) => {
            let state = m
                .threads()
                .first()
                .map(|t| format!("{:?}", t.state))
                .unwrap_or_default();
            (m.cumulative().stats, state)
        }
        None => (Default::default(), "off".into()),
    };
    // SliceMetrics holds each worker's thread counters as of its last park:
    // every section on that thread (scheduler sections, task polls,
    // slice_critical, lock holds), not the runtime's sections only.
    let mut v = lockstats::snapshot();
    let extra = serde_json::json!({
        "requests": app.state.requests(),
        "counters": app.state.counters(),
        "lock": app.state.setup.lock,
        "hold_us": app.state.setup.hold.as_micros() as u64,
        "preempted_us": app.state.setup.preempted.as_micros() as u64,
        "slice_requested": t.requested,
        "slice_granted": t.granted,
        "slice_yielded": t.yielded,
        "slice_revoked": t.revoked,
        "slice_cleared": t.cleared,
        "slice_state": state,
    });
    for more in [extra, served::snapshot()] {
        if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), more) {
            o.extend(e);
        }
    }
    v.to_string()
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.variant == Variant::TokioLocks {
        tokio_locks::install().map_err(|e| anyhow::anyhow!("service: {e}"))?;
    }
    if args.variant != Variant::Off && !cfg!(tokio_unstable) {
        eprintln!(
            "service: built without --cfg tokio_unstable: scheduler sections are not installed"
        );
    }
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(usize::from(args.workers)).enable_all();
    let metrics = if args.variant == Variant::Off {
        None
    } else {
        // `oneliner`, `locks` and `tokio-locks`: the defaults
        // (`with_slice_extension()`).
        let cfg = SliceConfig::new()
            .scheduler_sections(matches!(args.variant, Variant::Sched | Variant::Polls))
            .task_polls(args.variant == Variant::Polls);
        let m = cfg.metrics();
        b.with_slice_config(cfg);
        Some(m)
    };
    let rt = b.build().context("building the runtime")?;
    let app = App {
        state: Arc::new(State::new(Setup {
            shards: usize::from(args.shards),
            lock: args.lock,
            hold: std::time::Duration::from_micros(args.hold_us),
            preempted: std::time::Duration::from_micros(args.preempted_us),
            work: args.work,
            slice_locks: args.variant == Variant::Locks,
        })),
        metrics,
    };
    let max = std::time::Duration::from_secs(args.max_secs);
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .context("binding 127.0.0.1")?;
        let port = listener.local_addr()?.port();
        println!("listening {port}");
        let router = Router::new()
            .route("/item/{key}", get(item))
            .route_layer(axum::middleware::from_fn(timed))
            .route("/metrics", get(metrics_handler))
            .with_state(app);
        let serve = axum::serve(listener, router);
        match tokio::time::timeout(max, serve).await {
            Ok(r) => r.context("serving"),
            Err(_) => bail!("service: --max-secs reached, exiting"),
        }
    })
}
