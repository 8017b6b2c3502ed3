//! The study's web service: axum on a tokio multi-thread runtime, handlers
//! taking short critical sections on shared state.
//!
//! Variants (`--variant`): `off` is a plain runtime; `sched` adds
//! `with_slice_config(SliceConfig::new().scheduler_sections(true))` (needs
//! `--cfg tokio_unstable`); `locks` is `sched` plus slice-aware lock holds
//! (see `rseq_slice_examples::state`). Prints `listening <port>` on stdout.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::routing::get;
use clap::{Parser, ValueEnum};
use rseq_slice_examples::state::{State, mix};
use rseq_slice_tokio::{BuilderExt, SliceConfig, SliceMetrics};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Variant {
    Off,
    Sched,
    Locks,
}

#[derive(Parser, Debug)]
#[command(about = "The latency study's service")]
struct Args {
    #[arg(long, value_enum, default_value = "off")]
    variant: Variant,
    /// tokio worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Port on 127.0.0.1 (0: any; the port is printed).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Cache shards (few shards: more contention).
    #[arg(long, default_value_t = 4)]
    shards: usize,
    /// Rounds of hashing while a shard lock is held.
    #[arg(long, default_value_t = 400)]
    work: u32,
    /// Exit after this many seconds whatever happens.
    #[arg(long, default_value_t = 600)]
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
    // Some task-level section too: one poll of this future is one section.
    let w = app.state.work / 4;
    let h = rseq_slice_tokio::slice_critical(async move { mix(v, w) }).await;
    format!("{:x}\n", h & 0xffff)
}

async fn metrics_handler(AxState(app): AxState<App>) -> String {
    let (granted, yielded, requested, state) = match &app.metrics {
        Some(m) => {
            let t = m.total();
            let state = m
                .threads()
                .first()
                .map(|t| format!("{:?}", t.state))
                .unwrap_or_default();
            (t.granted, t.yielded, t.requested, state)
        }
        None => (0, 0, 0, "off".into()),
    };
    serde_json::json!({
        "requests": app.state.requests(),
        "counters": app.state.counters(),
        "slice_requested": requested,
        "slice_granted": granted,
        "slice_yielded": yielded,
        "slice_state": state,
    })
    .to_string()
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.variant != Variant::Off && !cfg!(tokio_unstable) {
        eprintln!(
            "service: built without --cfg tokio_unstable: scheduler sections are not installed"
        );
    }
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(args.workers.max(1)).enable_all();
    let metrics = if args.variant == Variant::Off {
        None
    } else {
        let cfg = SliceConfig::new().scheduler_sections(true);
        let m = cfg.metrics();
        b.with_slice_config(cfg);
        Some(m)
    };
    let rt = b.build().context("building the runtime")?;
    let app = App {
        state: Arc::new(State::new(
            args.shards,
            args.work,
            args.variant == Variant::Locks,
        )),
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
            .route("/metrics", get(metrics_handler))
            .with_state(app);
        let serve = axum::serve(listener, router);
        match tokio::time::timeout(max, serve).await {
            Ok(r) => r.context("serving"),
            Err(_) => bail!("service: --max-secs reached, exiting"),
        }
    })
}
