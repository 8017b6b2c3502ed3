//! What the adapter costs a busy runtime, in one run: 64 tasks × 200
//! `yield_now` polls (12 800 polls through the scheduler, about 60 ns each
//! natively: the worst case for per-poll hooks) on a one-worker multi-thread
//! runtime (one worker keeps cross-thread scheduling noise low; a
//! current-thread runtime gets no scheduler sections), for a plain runtime
//! and for the adapter's policies. Build with
//! `RUSTFLAGS="--cfg tokio_unstable"` for the scheduler-section and task-poll
//! policies (without it they cannot install and equal the bare adapter).
//!
//! On a kernel without the feature this measures the fallback; in the guest
//! (`cargo xtask bench-tokio`) the real protocol.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rseq_slice_tokio::{BuilderExt, SliceConfig};
use tokio::runtime::{Builder, Runtime};

const TASKS: usize = 64;
const YIELDS: usize = 200;

fn runtime(cfg: Option<SliceConfig>) -> Runtime {
    let mut b = Builder::new_multi_thread();
    b.worker_threads(1);
    match cfg {
        Some(cfg) => b.with_slice_config(cfg),
        None => &mut b,
    }
    .build()
    .expect("runtime")
}

fn workload(rt: &Runtime) {
    rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                tokio::spawn(async move {
                    for j in 0..YIELDS {
                        black_box(i + j);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
    })
}

fn sections(c: &mut Criterion) {
    let variants: [(&str, Option<SliceConfig>); 4] = [
        ("plain runtime", None),
        (
            "extension, no sections",
            Some(SliceConfig::new().scheduler_sections(false)),
        ),
        (
            "scheduler sections",
            Some(SliceConfig::new().scheduler_sections(true)),
        ),
        (
            "scheduler sections + task polls",
            Some(SliceConfig::new().scheduler_sections(true).task_polls(true)),
        ),
    ];
    let unstable = if cfg!(tokio_unstable) {
        "tokio_unstable"
    } else {
        "stable"
    };
    let mut g = c.benchmark_group(format!("tokio-1-worker-12800-polls/{unstable}"));
    g.sample_size(20);
    for (name, cfg) in variants {
        let metrics = cfg.as_ref().map(SliceConfig::metrics);
        let rt = runtime(cfg);
        g.bench_function(name, |b| b.iter(|| workload(&rt)));
        drop(rt);
        if let Some(m) = metrics {
            let t = m.threads();
            eprintln!(
                "{name}: {} threads, state {:?}, totals {:?}",
                t.len(),
                t.first().map(|t| t.state),
                m.cumulative().stats
            );
        }
    }
    g.finish();
}

criterion_group!(benches, sections);
criterion_main!(benches);
