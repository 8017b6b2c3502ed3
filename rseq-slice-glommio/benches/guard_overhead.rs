//! The guard inside glommio tasks: a task doing N tiny awaited sections, with
//! `slice_critical` / `critical` and without, in one run, on one executor
//! made on the bench thread (the fallback on kernels without the feature;
//! the real area, with no grant, where it is on).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use glommio::LocalExecutorBuilder;
use rseq_slice_glommio::{BuilderExt, critical, slice_critical};

fn guard(c: &mut Criterion) {
    let builder = LocalExecutorBuilder::default().with_slice_extension();
    let metrics = builder.metrics();
    let ex = match builder.make() {
        Ok(ex) => ex,
        Err(e) => {
            eprintln!("SKIPPED glommio guard bench: {e}");
            return;
        }
    };
    let state = metrics.threads()[0].state;
    eprintln!("rseq-slice state on the executor thread: {state:?}");
    let label = if state.is_ok() {
        "feature-on"
    } else {
        "fallback"
    };
    // Each variant times `iters` sections inside one task.
    let ex = &ex;
    let time = |f: fn(u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = Duration>>>| {
        move |iters: u64| ex.run(f(iters))
    };
    let mut g = c.benchmark_group(format!("glommio-guard/{label}"));
    g.bench_function("async block", |b| {
        b.iter_custom(time(|iters| {
            Box::pin(async move {
                let t = Instant::now();
                for i in 0..iters {
                    black_box(async { black_box(i) }.await);
                }
                t.elapsed()
            })
        }))
    });
    g.bench_function("slice_critical(async block)", |b| {
        b.iter_custom(time(|iters| {
            Box::pin(async move {
                let t = Instant::now();
                for i in 0..iters {
                    black_box(slice_critical(async { black_box(i) }).await);
                }
                t.elapsed()
            })
        }))
    });
    g.bench_function("critical(closure) in a task", |b| {
        b.iter_custom(time(|iters| {
            Box::pin(async move {
                let t = Instant::now();
                for i in 0..iters {
                    black_box(critical(|| black_box(i)));
                }
                t.elapsed()
            })
        }))
    });
    g.finish();
    eprintln!("stats after the bench: {:?}", rseq_slice_core::stats());
}

criterion_group!(benches, guard);
criterion_main!(benches);
