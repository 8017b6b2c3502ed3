//! Guard overhead: an empty closure under `critical` vs the closure alone,
//! and a ready future's poll under `slice_critical` vs alone, in one run, on
//! whatever this thread's state is (the fallback on kernels without the
//! feature; the real area, with no grant, where it is on). Build it with the
//! `tracing` feature and without to see what the grant events cost where no
//! subscriber wants them.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use std::future::{Future, ready};
use std::pin::pin;
use std::task::{Context, Waker};

use rseq_slice_core::{SliceGuard, critical, init, slice_critical};

fn guard(c: &mut Criterion) {
    let state = init();
    eprintln!("rseq-slice state on the bench thread: {state:?}");
    let label = if state.is_ok() {
        "feature-on"
    } else {
        "fallback"
    };
    let tracing = if cfg!(feature = "tracing") {
        "tracing"
    } else {
        "no-tracing"
    };
    let mut g = c.benchmark_group(format!("guard/{label}/{tracing}"));
    g.bench_function("empty closure", |b| {
        b.iter(|| black_box(|| black_box(1u64))())
    });
    g.bench_function("critical(empty closure)", |b| {
        b.iter(|| critical(|| black_box(1u64)))
    });
    g.bench_function("nested guard (inner only)", |b| {
        let _outer = SliceGuard::new();
        b.iter(|| critical(|| black_box(1u64)))
    });
    let mut cx = Context::from_waker(Waker::noop());
    g.bench_function("poll(ready)", |b| {
        b.iter(|| pin!(ready(black_box(1u64))).poll(&mut cx))
    });
    g.bench_function("poll(slice_critical(ready))", |b| {
        b.iter(|| pin!(slice_critical(ready(black_box(1u64)))).poll(&mut cx))
    });
    g.finish();
    let s = rseq_slice_core::stats();
    eprintln!("stats after the bench: {s:?}");
}

criterion_group!(benches, guard);
criterion_main!(benches);
