//! The adapter's threads leave nothing behind: a soak of a million task
//! polls ends with no section open and no `request` set, and runtimes built
//! and shut down repeatedly leave no thread alive.
//!
//! Both run everywhere; in the guest (`cargo xtask test`, built with and
//! without `--cfg tokio_unstable`) the sections request extensions, and every
//! thread must have used the area the boot promises.

mod common;
use rseq_slice_testkit as core_common;

use common::two_workers;
use core_common::{kernel_mode, say};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rseq_slice_tokio::{SliceConfig, slice_critical};

/// Whether the calling thread is inside a section: the adapter's open
/// section, or `request` set in its rseq area.
fn in_section() -> bool {
    let request =
        rseq_slice_core::diagnostics::slice_ctrl().is_some_and(|(request, _)| request != 0);
    rseq_slice_tokio::current_section().is_some() || request
}

#[test]
fn a_soak_of_a_million_polls_leaves_no_request_behind() {
    let stopped_dirty = Arc::new(AtomicUsize::new(0));
    let d = stopped_dirty.clone();
    let cfg = SliceConfig::new()
        .scheduler_sections(true)
        .on_thread_stop(move || {
            if rseq_slice_core::diagnostics::slice_ctrl().is_some_and(|ctrl| ctrl != (0, 0)) {
                d.fetch_add(1, Ordering::Relaxed);
            }
        });
    let metrics = cfg.metrics();
    // Checked where no section may be open: at the start of every task poll
    // (outside `slice_critical`), and inside `spawn_blocking` closures right
    // after a `block_in_place` (whose thread leaves for the blocking pool).
    let [polls, in_poll, blocking, in_blocking]: [Arc<AtomicUsize>; 4] = Default::default();
    let rt = two_workers(cfg);
    let t = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..2000)
            .map(|i| {
                let (polls, in_poll) = (polls.clone(), in_poll.clone());
                let (blocking, in_blocking) = (blocking.clone(), in_blocking.clone());
                tokio::spawn(async move {
                    for j in 0..500u32 {
                        if in_section() {
                            in_poll.fetch_add(1, Ordering::Relaxed);
                        }
                        if (i + j) % 100 == 0 {
                            tokio::time::sleep(Duration::from_micros(200)).await;
                        } else if j % 10 == 0 {
                            slice_critical(async { std::hint::black_box(j) }).await;
                        } else if i % 20 == 0 && j % 100 == 55 {
                            tokio::task::block_in_place(|| std::hint::black_box(j));
                            tokio::task::yield_now().await;
                            if tokio::task::spawn_blocking(in_section).await.unwrap() {
                                in_blocking.fetch_add(1, Ordering::Relaxed);
                            }
                            blocking.fetch_add(1, Ordering::Relaxed);
                        }
                        tokio::task::yield_now().await;
                        polls.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    drop(rt);
    let total = metrics.cumulative().stats;
    let n = |c: &Arc<AtomicUsize>| c.load(Ordering::Relaxed);
    say(format_args!(
        "tokio soak [unstable={}]: {} polls by 2000 tasks in {:?}: {total:?}; inside a section: \
         {} poll starts, {} of {} spawn_blocking closures after block_in_place",
        cfg!(tokio_unstable),
        n(&polls),
        t.elapsed(),
        n(&in_poll),
        n(&in_blocking),
        n(&blocking)
    ));
    assert!(n(&polls) >= 1_000_000);
    assert_eq!(n(&blocking), 500);
    assert_eq!(n(&in_poll), 0, "task polls started inside a section");
    assert_eq!(
        n(&in_blocking),
        0,
        "spawn_blocking closures ran inside a section"
    );
    assert_eq!(
        n(&stopped_dirty),
        0,
        "a thread stopped with request or granted set"
    );
    assert!(metrics.threads().iter().all(|t| !t.alive));
}

#[test]
fn runtimes_built_and_shut_down_repeatedly_leave_no_thread_behind() {
    // The area every thread must use, where the extension is on.
    let expected = kernel_mode("runtimes_built_and_shut_down_repeatedly (state check)")
        .and_then(|m| m.registrar().ok());
    for _ in 0..30 {
        let cfg = SliceConfig::new();
        let metrics = cfg.metrics();
        let rt = two_workers(cfg);
        rt.block_on(async { tokio::spawn(slice_critical(async {})).await.unwrap() });
        drop(rt);
        let threads = metrics.threads();
        assert!(
            threads.len() >= 2 && threads.iter().all(|t| !t.alive),
            "{threads:?}"
        );
        if let Some(r) = expected {
            assert!(threads.iter().all(|t| t.state == Ok(r)), "{threads:?}");
        }
    }
}
