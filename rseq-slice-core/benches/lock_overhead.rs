//! Uncontended lock overhead: each lock with the extension wrapper (every
//! policy) against the same lock without it, in one run, on whatever this
//! thread's state is (the fallback on kernels without the feature).
//! `cargo xtask bench-locks --criterion` also runs it in the guest.

use std::hint::black_box;

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use rseq_slice_core::lock::{Policy, RawSpin, SpinMutex, StdMutexExt, WithSlice};
use rseq_slice_core::{SliceGuard, init, lock};

fn pl(policy: Policy) -> lock::Mutex<parking_lot::RawMutex, u64> {
    lock::Mutex::from_raw(
        WithSlice::new(<parking_lot::RawMutex as lock_api::RawMutex>::INIT, policy),
        0,
    )
}

fn sp04(policy: Policy) -> lock::v0_4::Mutex<spin::Mutex<()>, u64> {
    lock::v0_4::Mutex::from_raw(WithSlice::new(spin::Mutex::new(()), policy), 0)
}

const POLICIES: [(&str, Policy); 3] = [
    ("never", Policy::Never),
    ("adaptive", Policy::ADAPTIVE),
    ("always", Policy::Always),
];

fn spin(g: &mut BenchmarkGroup<'_, WallTime>) {
    // The plain lock is RawSpin under Policy::Never: the same code without requests.
    for (name, policy) in POLICIES {
        let m = SpinMutex::from_raw(RawSpin::new(policy), 0u64);
        g.bench_function(format!("RawSpin {name}"), |b| {
            b.iter(|| *black_box(&m).lock() += 1)
        });
    }
}

fn parking_lot(g: &mut BenchmarkGroup<'_, WallTime>) {
    let m = parking_lot::Mutex::new(0u64);
    g.bench_function("parking_lot plain", |b| {
        b.iter(|| *black_box(&m).lock() += 1)
    });
    for (name, policy) in POLICIES {
        let m = pl(policy);
        g.bench_function(format!("parking_lot WithSlice {name}"), |b| {
            b.iter(|| *black_box(&m).lock() += 1)
        });
    }
}

fn spin_crate(g: &mut BenchmarkGroup<'_, WallTime>) {
    let m = spin::Mutex::new(0u64);
    g.bench_function("spin plain", |b| b.iter(|| *black_box(&m).lock() += 1));
    for (name, policy) in POLICIES {
        let m = sp04(policy);
        g.bench_function(format!("spin WithSlice(0.4) {name}"), |b| {
            b.iter(|| *black_box(&m).lock() += 1)
        });
    }
}

fn std_mutex(g: &mut BenchmarkGroup<'_, WallTime>) {
    let m = std::sync::Mutex::new(0u64);
    g.bench_function("std plain", |b| {
        b.iter(|| *black_box(&m).lock().unwrap() += 1)
    });
    g.bench_function("std lock_slice", |b| {
        b.iter(|| *black_box(&m).lock_slice().unwrap() += 1)
    });
}

fn guard(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.bench_function("SliceGuard alone", |b| {
        b.iter(|| drop(black_box(SliceGuard::new())))
    });
}

fn locks(c: &mut Criterion) {
    let state = init();
    eprintln!("rseq-slice state on the bench thread: {state:?}");
    let label = if state.is_ok() {
        "feature-on"
    } else {
        "fallback"
    };
    let mut g = c.benchmark_group(format!("locks/{label}"));
    guard(&mut g);
    spin(&mut g);
    parking_lot(&mut g);
    spin_crate(&mut g);
    std_mutex(&mut g);
    g.finish();
    eprintln!("stats after the bench: {:?}", rseq_slice_core::stats());
}

criterion_group!(benches, locks);
criterion_main!(benches);
