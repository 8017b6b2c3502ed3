//! Which threads a runtime knows, on any kernel: the thread that calls
//! `block_on` is initialised by its first section, and a thread that drives
//! another runtime (from the blocking pool, nested, alternating) is counted
//! by each runtime once, and alive exactly while it runs it.

use std::thread::ThreadId;
use std::time::Duration;

use rseq_slice_core::Unavailable;
use rseq_slice_testkit::on_thread;
use rseq_slice_tokio::{
    BuilderExt, SliceConfig, SliceMetrics, ThreadMetrics, ThreadRole, slice_critical,
};
use tokio::runtime::{Builder, Runtime};

fn current_thread(cfg: SliceConfig) -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .with_slice_config(cfg)
        .build()
        .unwrap()
}

/// `(alive, requested)` of each of `metrics`' entries.
fn entries(metrics: &SliceMetrics) -> Vec<(bool, u64)> {
    metrics
        .threads()
        .iter()
        .map(|t: &ThreadMetrics| (t.alive, t.stats.requested))
        .collect()
}

/// What `init()` would say on a fresh thread: the state a thread that ran
/// a section must have instead of `NotInitialized`.
fn initialised() -> Result<rseq_slice_core::Registrar, Unavailable> {
    on_thread(rseq_slice_core::init)
}

#[test]
fn the_block_on_thread_is_initialised_by_its_first_section_in_both_flavours() {
    let expected = initialised();
    assert_ne!(expected, Err(Unavailable::NotInitialized));
    for flavour in ["multi_thread", "current_thread"] {
        let state = on_thread(move || {
            let mut b = if flavour == "multi_thread" {
                Builder::new_multi_thread()
            } else {
                Builder::new_current_thread()
            };
            // The README's example, as written.
            let rt = b.enable_all().with_slice_extension().build().unwrap();
            rt.block_on(async { slice_critical(async {}).await });
            rseq_slice_core::state()
        });
        assert_eq!(
            state, expected,
            "{flavour}: the block_on thread after a section"
        );
    }
}

#[test]
fn a_local_set_driven_from_block_on_is_initialised_too() {
    let expected = initialised();
    let state = on_thread(|| {
        let rt = current_thread(SliceConfig::new());
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            tokio::task::spawn_local(async {
                // A task that never lets the thread park.
                for _ in 0..3 {
                    slice_critical(async {}).await;
                    tokio::task::yield_now().await;
                }
            })
            .await
            .unwrap();
        });
        rseq_slice_core::state()
    });
    assert_eq!(state, expected);
}

#[test]
fn a_blocking_pool_thread_that_drives_another_runtime_stays_its_runtimes() {
    let a_cfg = SliceConfig::new();
    let a_metrics = a_cfg.metrics();
    let a = Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(1)
        .enable_all()
        .with_slice_config(a_cfg)
        .build()
        .unwrap();
    let b_cfg = SliceConfig::new();
    let b_metrics = b_cfg.metrics();
    let b = std::sync::Arc::new(current_thread(b_cfg));
    let b2 = b.clone();
    let (first, second): (ThreadId, ThreadId) = a.block_on(async move {
        let first = tokio::task::spawn_blocking(move || {
            // The sleep starts at the first poll, so B parks (and runs its
            // hooks) however long getting there took.
            b2.block_on(async { tokio::time::sleep(Duration::from_millis(2)).await });
            std::thread::current().id()
        })
        .await
        .unwrap();
        let second = tokio::task::spawn_blocking(|| std::thread::current().id())
            .await
            .unwrap();
        (first, second)
    });
    assert_eq!(first, second, "max_blocking_threads(1): the same thread");
    // A: its worker and its blocking thread, each one entry, both running.
    let a_threads = a_metrics.threads();
    assert_eq!(a_threads.len(), 2, "{a_threads:?}");
    assert!(a_threads.iter().all(|t| t.alive), "{a_threads:?}");
    let mut roles: Vec<ThreadRole> = a_threads.iter().map(|t| t.role).collect();
    roles.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(
        roles,
        [ThreadRole::Blocking, ThreadRole::Worker],
        "{a_threads:?}"
    );
    // B: the blocking thread visited once.
    let b_threads = b_metrics.threads();
    assert_eq!(b_threads.len(), 1, "{b_threads:?}");
    assert_eq!(b_threads[0].role, ThreadRole::Visitor, "{b_threads:?}");
    drop(a);
    drop(b);
    assert!(
        a_metrics.threads().iter().all(|t| !t.alive),
        "{:?}",
        a_metrics.threads()
    );
    assert!(
        b_metrics.threads().iter().all(|t| !t.alive),
        "B is gone, its visitor no longer runs it: {:?}",
        b_metrics.threads()
    );
}

#[test]
fn alternating_runtimes_keep_one_entry_each_and_count_each_stretch_once() {
    let (c1, c2) = (SliceConfig::new(), SliceConfig::new());
    let (m1, m2) = (c1.metrics(), c2.metrics());
    let (r1, r2) = (current_thread(c1), current_thread(c2));
    let sleep = || tokio::time::sleep(Duration::from_millis(1));
    let mine = on_thread(move || {
        for _ in 0..3 {
            r1.block_on(async {
                sleep().await;
                slice_critical(async {}).await;
                sleep().await;
            });
            r2.block_on(async {
                sleep().await;
                slice_critical(async {}).await;
                slice_critical(async {}).await;
                sleep().await;
            });
        }
        let mine = rseq_slice_core::stats().requested;
        drop((r1, r2));
        mine
    });
    let (e1, e2) = (entries(&m1), entries(&m2));
    assert_eq!(e1.len(), 1, "runtime 1: {e1:?}");
    assert_eq!(e2.len(), 1, "runtime 2: {e2:?}");
    assert!(
        !e1[0].0 && !e2[0].0,
        "both runtimes are gone: {e1:?} {e2:?}"
    );
    // Each section counts once, in the runtime that ran it (sections after
    // the thread's last park there are counted at its next move).
    assert!(e1[0].1 + e2[0].1 <= mine, "{e1:?} {e2:?}, thread {mine}");
    if mine > 0 {
        assert!(
            e2[0].1 > e1[0].1,
            "runtime 2 ran twice the sections: {e1:?} {e2:?}"
        );
    }
}

/// A worker of A whose task polls are sections (`tokio_unstable`) calls
/// `block_in_place(|| b.block_on(..))`; B has poll hooks too. B's hooks must
/// not take A's open task-poll section for a replaced hook. A real
/// replacement is then still reported, once for each runtime that has one.
#[cfg(all(tokio_unstable, feature = "tracing"))]
#[test]
fn a_nested_runtime_is_no_replaced_hook_and_real_ones_are_each_reported() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let rec = rseq_slice_testkit::Recorder::global();
    let replaced = || {
        rec.count(|e| {
            e.level == tracing::Level::ERROR
                && e.field("message")
                    .is_some_and(|m| m.contains("was replaced"))
        })
    };
    let a = Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .with_slice_config(SliceConfig::new().task_polls(true))
        .build()
        .unwrap();
    let polls = Arc::new(AtomicUsize::new(0));
    let p = polls.clone();
    let b = Arc::new(current_thread(
        SliceConfig::new()
            .task_polls(true)
            .on_before_task_poll(move |_| {
                p.fetch_add(1, Ordering::Relaxed);
            }),
    ));
    let b2 = b.clone();
    a.block_on(async move {
        for _ in 0..3 {
            let b = b2.clone();
            tokio::spawn(async move {
                tokio::task::block_in_place(|| {
                    b.block_on(async {
                        tokio::spawn(tokio::task::yield_now()).await.unwrap();
                    })
                });
            })
            .await
            .unwrap();
        }
    });
    drop(a);
    drop(b); // outside any runtime: a runtime cannot drop in one
    assert!(polls.load(Ordering::Relaxed) >= 3, "B polled its tasks");
    assert_eq!(
        replaced(),
        0,
        "a nested runtime was taken for a replaced hook"
    );

    // Two runtimes whose poll hook is replaced on the builder: two reports.
    for _ in 0..2 {
        let mut b = Builder::new_multi_thread();
        b.worker_threads(1)
            .enable_all()
            .with_slice_config(SliceConfig::new().task_polls(true))
            .on_after_task_poll(|_| ());
        let rt = b.build().unwrap();
        rt.block_on(async {
            for _ in 0..10 {
                tokio::spawn(tokio::task::yield_now()).await.unwrap();
            }
        });
    }
    assert_eq!(replaced(), 2, "each runtime reports its replaced hook once");
}

/// A current-thread runtime guards its task polls (`task_polls`): the two
/// poll hooks bracket each one, so a section opens on its `block_on` thread,
/// which the metrics list as such. The `block_on` future itself, polled
/// between task polls with no hook around it, is never inside one.
#[cfg(tokio_unstable)]
#[test]
fn a_current_thread_runtime_guards_its_task_polls() {
    let cfg = SliceConfig::new().task_polls(true);
    let metrics = cfg.metrics();
    let (in_task, in_block_on) = on_thread(move || {
        let rt = current_thread(cfg);
        rt.block_on(async {
            let in_task = tokio::spawn(async { rseq_slice_tokio::current_section() })
                .await
                .unwrap();
            tokio::task::yield_now().await;
            (in_task, rseq_slice_tokio::current_section())
        })
    });
    assert_eq!(
        in_task,
        Some("task_poll"),
        "a task poll on the block_on thread"
    );
    assert_eq!(in_block_on, None, "the block_on future");
    let threads = metrics.threads();
    assert_eq!(threads.len(), 1, "{threads:?}");
    assert_eq!(threads[0].role, ThreadRole::BlockOn, "{threads:?}");
}
