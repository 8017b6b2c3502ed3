//! Guard overhead: an empty closure under `critical` vs the closure alone, in
//! one run, on whatever this thread's state is (the fallback on kernels
//! without the feature; the real area, with no grant, where it is on).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rseq_slice_core::{SliceGuard, critical, init};

fn guard(c: &mut Criterion) {
    let state = init();
    eprintln!("rseq-slice state on the bench thread: {state:?}");
    let label = if state.is_ok() {
        "feature-on"
    } else {
        "fallback"
    };
    let mut g = c.benchmark_group(format!("guard/{label}"));
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
    g.finish();
    let s = rseq_slice_core::stats();
    eprintln!("stats after the bench: {s:?}");
}

criterion_group!(benches, guard);
criterion_main!(benches);
