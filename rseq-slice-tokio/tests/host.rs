//! The adapter on any kernel: the builder, hook composition and replacement,
//! `slice_critical` semantics, metrics, and the tracing it emits.

mod common;

use common::two_workers;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rseq_slice_tokio::{BuilderExt, SliceConfig, slice_critical};
use tokio::runtime::Builder;

#[test]
fn the_one_liner_builds_and_every_thread_reports_its_state() {
    let cfg = SliceConfig::new();
    let metrics = cfg.metrics();
    let rt = two_workers(cfg);
    let sum = rt.block_on(async {
        let tasks: Vec<_> = (0..100u64)
            .map(|i| tokio::spawn(slice_critical(async move { i })))
            .collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, 4950);
    drop(rt);
    let threads = metrics.threads();
    assert!(threads.len() >= 2, "{threads:?}");
    let verdict = rseq_slice_core::diagnostics::kernel_support();
    for t in &threads {
        assert!(!t.alive, "thread {} still alive after shutdown", t.index);
        match verdict {
            Err(why) => assert_eq!(t.state, Err(why)),
            Ok(()) => assert!(
                t.state.is_ok()
                    || matches!(
                        t.state,
                        Err(rseq_slice_tokio::Unavailable::LibcLegacy { .. })
                    )
            ),
        }
    }
    // Guards are inert where the extension is off.
    if metrics.threads().iter().all(|t| t.state.is_ok()) {
        assert!(
            metrics.cumulative().stats.requested >= 100,
            "{:?}",
            metrics.cumulative().stats
        );
    } else {
        assert_eq!(
            metrics.cumulative().stats.requested,
            0,
            "{:?}",
            metrics.cumulative().stats
        );
    }
}

#[test]
fn a_start_hook_set_on_the_builder_afterwards_leaves_workers_joining_at_park() {
    // tokio cannot say whether a hook is set: this one silently replaces the
    // adapter's start hook. The workers still report, from their first park
    // or unpark, and still stop (the stop hook is the adapter's).
    let cfg = SliceConfig::new();
    let metrics = cfg.metrics();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .with_slice_config(cfg)
        .on_thread_start(move || {
            s.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    rt.block_on(async {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    drop(rt);
    let threads = metrics.threads();
    assert!(started.load(Ordering::Relaxed) >= 2);
    assert!(threads.len() >= 2, "{threads:?}");
    assert!(threads.iter().all(|t| !t.alive), "{threads:?}");
}

#[test]
fn a_runtime_reports_to_metrics_given_to_the_config_and_its_intervals() {
    let shared = rseq_slice_tokio::SliceMetrics::default();
    let mut intervals = shared.intervals();
    for _ in 0..2 {
        let rt = two_workers(SliceConfig::new().with_metrics(shared.clone()));
        rt.block_on(async { tokio::spawn(slice_critical(async {})).await.unwrap() });
        drop(rt);
    }
    let first = intervals.next().unwrap();
    assert!(first.threads_started >= 4, "{first:?}");
    assert_eq!(first.threads_stopped, first.threads_started, "{first:?}");
    assert_eq!(
        (first.threads_alive, first.stats),
        (0, shared.cumulative().stats)
    );
    assert_eq!(
        intervals.next().unwrap(),
        rseq_slice_tokio::RuntimeMetrics::default()
    );
}

#[test]
fn user_hooks_given_to_the_config_all_run() {
    let [s, t, p, u]: [Arc<AtomicUsize>; 4] = Default::default();
    let count = |c: &Arc<AtomicUsize>| {
        let c = c.clone();
        move || {
            c.fetch_add(1, Ordering::Relaxed);
        }
    };
    let cfg = SliceConfig::new()
        .on_thread_start(count(&s))
        .on_thread_stop(count(&t))
        .on_thread_park(count(&p))
        .on_thread_unpark(count(&u));
    let rt = two_workers(cfg);
    rt.block_on(async {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            tokio::spawn(async {}).await.unwrap();
        }
    });
    drop(rt);
    assert!(s.load(Ordering::Relaxed) >= 2);
    assert_eq!(s.load(Ordering::Relaxed), t.load(Ordering::Relaxed));
    assert!(p.load(Ordering::Relaxed) > 0 && u.load(Ordering::Relaxed) > 0);
}

#[test]
fn slice_critical_passes_outputs_panics_and_cancellation() {
    let rt = Builder::new_current_thread()
        .enable_all()
        .with_slice_extension()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(slice_critical(async { "out" }).await, "out");
        let j = tokio::spawn(slice_critical(async { panic!("inside a section") }));
        assert!(j.await.unwrap_err().is_panic());
        // Cancelled mid-await: the guard lives for one poll only, so nothing
        // stays open and the next section is outermost again.
        let pending = slice_critical(tokio::time::sleep(Duration::from_secs(60)));
        assert!(
            tokio::time::timeout(Duration::from_millis(5), pending)
                .await
                .is_err()
        );
        let before = rseq_slice_core::stats().requested;
        rseq_slice_core::critical(|| rseq_slice_core::critical(|| ()));
        let on = u64::from(rseq_slice_core::state().is_ok());
        assert_eq!(rseq_slice_core::stats().requested - before, on);
        if let Some((request, _)) = rseq_slice_core::diagnostics::slice_ctrl() {
            assert_eq!(request, 0);
        }
    });
}

#[test]
fn a_current_thread_runtime_starts_its_thread_at_the_first_park() {
    let cfg = SliceConfig::new().scheduler_sections(true);
    let metrics = cfg.metrics();
    let rt = Builder::new_current_thread()
        .enable_all()
        .with_slice_config(cfg)
        .build()
        .unwrap();
    let n = rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        tokio::spawn(slice_critical(async { 7 })).await.unwrap()
    });
    assert_eq!(n, 7);
    let me = std::thread::current().name().map(str::to_owned);
    let threads = metrics.threads();
    let driver = threads
        .iter()
        .find(|t| t.name == me)
        .unwrap_or_else(|| panic!("the driving thread {me:?} is not in {threads:?}"));
    assert!(
        driver.alive,
        "the driving thread outlives the runtime's hooks"
    );
    match rseq_slice_core::diagnostics::kernel_support() {
        Err(why) => assert_eq!(driver.state, Err(why)),
        Ok(()) => assert!(
            driver.state != Err(rseq_slice_tokio::Unavailable::NotInitialized),
            "{driver:?}"
        ),
    }
    // A second runtime on the same thread gets its own entry; the first one's
    // entry is marked stopped.
    drop(rt);
    let cfg2 = SliceConfig::new();
    let metrics2 = cfg2.metrics();
    let rt2 = Builder::new_current_thread()
        .enable_all()
        .with_slice_config(cfg2)
        .build()
        .unwrap();
    rt2.block_on(async { tokio::time::sleep(Duration::from_millis(1)).await });
    assert!(metrics2.threads().iter().any(|t| t.name == me && t.alive));
    assert!(metrics.threads().iter().all(|t| t.name != me || !t.alive));
}
