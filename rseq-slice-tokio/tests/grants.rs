//! Grants to the adapter's threads on the real kernel: workers' grants
//! match the kernel's counters and the `tracing` events by section kind; a
//! current-thread runtime's driving thread and the README example's
//! `block_on` thread get grants too.
//!
//! `cargo xtask test` runs this in the guest, built with and without
//! `--cfg tokio_unstable`; on a kernel without the feature every test skips,
//! saying why.

mod common;
use rseq_slice_testkit as core_common;

use common::two_workers;
use core_common::{Recorded, Recorder, kernel_mode, say, spin};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rseq_slice_core::diagnostics::KernelStats;
use rseq_slice_tokio::{BuilderExt, SliceConfig, SliceStats, slice_critical};
use rustix::thread::{CpuSet, sched_setaffinity};

/// Same-CPU noise on every CPU: 2 µs busy, 50 µs asleep (the kernel's slice_test).
fn noise(stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    (0..std::thread::available_parallelism().map_or(1, |n| n.get()))
        .map(|cpu| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut set = CpuSet::new();
                set.set(cpu);
                // Noise that cannot be pinned still runs, on any CPU.
                let _ = sched_setaffinity(None, &set);
                while !stop.load(Ordering::Relaxed) {
                    spin(Duration::from_micros(2));
                    std::thread::sleep(Duration::from_micros(50));
                }
            })
        })
        .collect()
}

/// Grants by section kind among `records`: one per adapter event (`kind`),
/// and the `granted` of the core's reports (`any guard`).
fn by_kind(records: &[Recorded]) -> HashMap<String, u64> {
    let mut k = HashMap::new();
    for r in records
        .iter()
        .filter(|r| r.span.is_none() && r.target == "rseq_slice")
    {
        match r.field("kind") {
            Some(kind) if r.field("yielded").is_some() => *k.entry(kind.into()).or_default() += 1,
            _ => {
                let grants = r.field("granted").and_then(|g| g.parse::<u64>().ok());
                *k.entry("any guard".into()).or_default() += grants.unwrap_or(0)
            }
        }
    }
    k
}

/// Four tasks running 2 µs `slice_critical` sections for `d`, yielding
/// between them.
async fn critical_tasks(d: Duration) {
    let deadline = Instant::now() + d;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    slice_critical(async { spin(Duration::from_micros(2)) }).await;
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[test]
fn workers_get_grants_that_match_the_kernel_stats() {
    let Some(mode) = kernel_mode("workers_get_grants_that_match_the_kernel_stats") else {
        return;
    };
    let rec = Recorder::global();
    let start = rec.recorded().len();
    let stop = Arc::new(AtomicBool::new(false));
    let noise = noise(stop.clone());
    let k0 = KernelStats::read().expect("debugfs rseq/stats");
    // Scheduler sections take effect in the `tokio_unstable` build only.
    let cfg = SliceConfig::new().scheduler_sections(true);
    let metrics = cfg.metrics();
    let rt = two_workers(cfg);
    rt.block_on(async {
        critical_tasks(Duration::from_secs(3)).await;
    });
    drop(rt);
    // Dropping the runtime can return before every worker has run its stop
    // hook (which publishes its last counters): wait for all of them.
    let t = Instant::now();
    while metrics.threads().iter().any(|t| t.alive) && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let k = KernelStats::read().unwrap().since(k0);
    stop.store(true, Ordering::Relaxed);
    noise.into_iter().for_each(|h| h.join().unwrap());
    let total: SliceStats = metrics.cumulative().stats;
    let by_kind = by_kind(&rec.recorded()[start..]);
    say(format_args!(
        "tokio grants [unstable={}, {mode:?}]: total {total:?}; events by kind {by_kind:?}; \
         kernel sgrant {} syield {} srevok {} sexpir {}",
        cfg!(tokio_unstable),
        k.granted,
        k.yielded,
        k.revoked,
        k.expired
    ));
    let threads = metrics.threads();
    let Ok(registrar) = mode.registrar() else {
        assert!(threads.iter().all(|t| matches!(
            t.state,
            Err(rseq_slice_tokio::Unavailable::LibcLegacy { .. })
        )));
        assert_eq!(total.granted, 0);
        return;
    };
    assert!(
        threads.iter().all(|t| t.state == Ok(registrar)),
        "{threads:?}"
    );
    assert!(total.granted > 0 && total.yielded > 0, "{total:?}");
    assert_eq!(
        k.yielded, total.yielded,
        "kernel syield vs the adapter's metrics"
    );
    // Every kernel grant is seen: as granted, or (revoked before the section
    // ended) as cleared.
    let (sgrant, seen) = (k.granted, total.granted + total.cleared);
    assert!(
        sgrant >= total.granted && sgrant <= seen,
        "kernel sgrant {sgrant} outside [{}, {seen}]",
        total.granted
    );
    // Every grant is reported by the core (in batches, outside the guards);
    // scheduler-section grants add one event with their kind.
    assert_eq!(
        by_kind.get("any guard").copied().unwrap_or(0),
        total.granted
    );
    if cfg!(tokio_unstable) {
        let sched = by_kind.get("scheduler").copied().unwrap_or(0)
            + by_kind.get("unpark").copied().unwrap_or(0);
        assert!(sched > 0, "no grant in a scheduler section: {by_kind:?}");
        // The rest were granted inside the tasks' `slice_critical` polls.
        assert!(
            total.granted > sched,
            "no grant in a slice_critical section: {by_kind:?}"
        );
    }
}

#[test]
fn a_current_thread_runtime_gets_grants_on_its_driving_thread() {
    let Some(mode) = kernel_mode("a_current_thread_runtime_gets_grants_on_its_driving_thread")
    else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let noise = noise(stop.clone());
    let cfg = SliceConfig::new().scheduler_sections(true);
    let metrics = cfg.metrics();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .with_slice_config(cfg)
        .build()
        .unwrap();
    rt.block_on(async {
        // The first park starts the driving thread.
        tokio::time::sleep(Duration::from_millis(1)).await;
        critical_tasks(Duration::from_secs(2)).await;
        tokio::time::sleep(Duration::from_millis(1)).await; // publish at park
    });
    stop.store(true, Ordering::Relaxed);
    noise.into_iter().for_each(|h| h.join().unwrap());
    let me = std::thread::current().name().map(str::to_owned);
    let threads = metrics.threads();
    let driver = threads
        .iter()
        .find(|t| t.name == me)
        .expect("driving thread");
    say(format_args!("tokio current-thread driver: {driver:?}"));
    match mode.registrar() {
        Err(_) => assert!(matches!(
            driver.state,
            Err(rseq_slice_tokio::Unavailable::LibcLegacy { .. })
        )),
        Ok(r) => {
            assert_eq!(driver.state, Ok(r));
            assert!(driver.stats.granted > 0, "{driver:?}");
        }
    }
}

/// The README's example as written (`with_slice_extension()`, then
/// `slice_critical` inside `rt.block_on`): the calling thread, which no
/// runtime hook initialises, gets grants, in both flavours.
#[test]
fn the_readme_example_gets_grants_on_the_block_on_thread() {
    let Some(mode) = kernel_mode("the_readme_example_gets_grants_on_the_block_on_thread") else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let noise = noise(stop.clone());
    for flavour in ["multi_thread", "current_thread"] {
        let (state, stats) = core_common::on_thread(move || {
            let mut b = if flavour == "multi_thread" {
                tokio::runtime::Builder::new_multi_thread()
            } else {
                tokio::runtime::Builder::new_current_thread()
            };
            let rt = b.enable_all().with_slice_extension().build().unwrap();
            rt.block_on(async {
                let deadline = Instant::now() + Duration::from_secs(1);
                while Instant::now() < deadline {
                    slice_critical(async { spin(Duration::from_micros(20)) }).await;
                    tokio::task::yield_now().await;
                }
            });
            (rseq_slice_core::state(), rseq_slice_core::stats())
        });
        say(format_args!(
            "README example, {flavour}, block_on thread: {state:?} {stats:?}"
        ));
        core_common::expect_init(mode, state);
        if mode.on() {
            assert!(
                stats.granted > 0,
                "{flavour}: no grant on the block_on thread: {stats:?}"
            );
        } else {
            assert_eq!(stats.requested, 0, "{flavour}: {stats:?}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    noise.into_iter().for_each(|h| h.join().unwrap());
}
