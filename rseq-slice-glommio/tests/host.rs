//! The adapter on any kernel: single executors (spawned and made), pools,
//! `slice_critical` inside tasks, the config's hooks, metrics and their
//! intervals, and the
//! typed error glommio's locked-memory minimum becomes.

use rseq_slice_testkit as common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use glommio::{LocalExecutorBuilder, LocalExecutorPoolBuilder, PoolPlacement};
use rseq_slice_glommio::{
    BuilderExt, MIN_MEMLOCK, RuntimeMetrics, SliceConfig, SliceMetrics, StartError, Unavailable,
    slice_critical,
};

/// Every thread in `metrics` stopped, with the state this kernel gives.
fn assert_states(metrics: &SliceMetrics, threads: usize) {
    let seen = metrics.threads();
    assert_eq!(seen.len(), threads, "{seen:?}");
    let verdict = rseq_slice_core::diagnostics::kernel_support();
    for t in &seen {
        assert!(!t.alive, "executor {} still alive after join", t.index);
        match verdict {
            Err(why) => assert_eq!(t.state, Err(why)),
            Ok(()) => assert!(
                t.state.is_ok() || matches!(t.state, Err(Unavailable::LibcLegacy { .. })),
                "{t:?}"
            ),
        }
    }
}

/// 100 tasks, each one `slice_critical` section: the sum.
async fn hundred_tasks() -> u64 {
    let tasks: Vec<_> = (0..100u64)
        .map(|i| glommio::spawn_local(slice_critical(async move { i })))
        .collect();
    let mut sum = 0;
    for t in tasks {
        sum += t.await;
    }
    sum
}

#[test]
fn a_spawned_executor_starts_registered_and_runs_tasks() {
    let b = LocalExecutorBuilder::default().with_slice_extension();
    let metrics = b.metrics();
    let h = b
        .spawn(|| async {
            // The generator's future runs after registration.
            let state = rseq_slice_core::state();
            (hundred_tasks().await, state)
        })
        .expect("executor start");
    let (sum, state) = h.join().unwrap();
    assert_eq!(sum, 4950);
    assert_states(&metrics, 1);
    let t = &metrics.threads()[0];
    assert_eq!(state, t.state, "the future ran on the registered thread");
    // One section per task poll (guards are inert where the extension is off).
    if t.state.is_ok() {
        assert!(t.stats.requested >= 100, "{:?}", t.stats);
    } else {
        assert_eq!(t.stats.requested, 0, "{:?}", t.stats);
    }
}

#[test]
fn an_executor_made_on_this_thread_registers_it_until_dropped() {
    let metrics = common::on_thread(|| {
        let cfg = SliceConfig::new();
        let metrics = cfg.metrics();
        let ex = LocalExecutorBuilder::default()
            .with_slice_config(cfg)
            .make()
            .expect("executor");
        assert_eq!(ex.run(hundred_tasks()), 4950);
        assert!(metrics.threads()[0].alive);
        drop(ex);
        metrics
    });
    assert_states(&metrics, 1);
}

#[test]
fn a_pool_registers_every_executor() {
    let b = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(3)).with_slice_extension();
    let metrics = b.metrics();
    let sums: Vec<u64> = b
        .on_all_shards(hundred_tasks)
        .expect("pool start")
        .join_all()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(sums, [4950; 3]);
    assert_states(&metrics, 3);
    let mut indices: Vec<_> = metrics.threads().iter().map(|t| t.index).collect();
    indices.sort();
    assert_eq!(indices, [0, 1, 2]);
}

#[test]
fn executors_without_the_adapter_still_start() {
    // The same work on plain glommio, beside the adapter's executors.
    let h = LocalExecutorBuilder::default()
        .spawn(hundred_tasks)
        .unwrap();
    assert_eq!(h.join().unwrap(), 4950);
}

#[test]
fn slice_critical_passes_outputs_and_panics_and_leaves_nothing_open() {
    let h = LocalExecutorBuilder::default()
        .with_slice_extension()
        .spawn(|| async {
            assert_eq!(slice_critical(async { "out" }).await, "out");
            // A task that panics in its section: glommio aborts the whole
            // process on a task panic, so check the guard by unwinding it
            // ourselves.
            let r = std::panic::catch_unwind(|| {
                rseq_slice_core::critical(|| panic!("inside a section"))
            });
            assert!(r.is_err());
            let before = rseq_slice_core::stats().requested;
            rseq_slice_core::critical(|| rseq_slice_core::critical(|| ()));
            let on = u64::from(rseq_slice_core::state().is_ok());
            assert_eq!(rseq_slice_core::stats().requested - before, on);
            rseq_slice_core::diagnostics::slice_ctrl().map(|(request, _)| request)
        })
        .unwrap();
    assert_ne!(h.join().unwrap(), Some(1), "request left set");
}

/// The child half of the memlock test: runs only when the parent asks.
#[test]
fn memlock_child() {
    if std::env::var_os("RSEQ_SLICE_MEMLOCK_CHILD").is_none() {
        return;
    }
    let low = 64 * 1024;
    rustix::process::setrlimit(
        rustix::process::Resource::Memlock,
        rustix::process::Rlimit {
            current: Some(low),
            maximum: Some(low),
        },
    )
    .expect("lowering RLIMIT_MEMLOCK");
    let want = |e: StartError| match e {
        StartError::MemlockTooLow { have, need } => {
            assert_eq!((have, need), (low, MIN_MEMLOCK));
            println!("MEMLOCK-ERROR: {e}");
        }
        e => panic!("expected MemlockTooLow, got {e:?}"),
    };
    want(
        LocalExecutorBuilder::default()
            .with_slice_extension()
            .spawn(|| async {})
            .unwrap_err(),
    );
    want(
        LocalExecutorBuilder::default()
            .with_slice_extension()
            .make()
            .unwrap_err(),
    );
    want(
        LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(2))
            .with_slice_extension()
            .on_all_shards(|| async {})
            .unwrap_err(),
    );
    // glommio's own check, without the adapter: an opaque I/O error.
    let raw = LocalExecutorBuilder::default().make().unwrap_err();
    assert!(raw.to_string().contains("MemLockLimit"), "{raw}");
}

#[test]
fn too_little_locked_memory_is_a_typed_error_not_a_panic() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "memlock_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RSEQ_SLICE_MEMLOCK_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<_> = stdout
        .lines()
        .filter_map(|l| l.split_once("MEMLOCK-ERROR: ").map(|(_, e)| e))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].contains("512 KiB of locked memory") && lines[0].contains("only 64 KiB"),
        "{}",
        lines[0]
    );
}

#[test]
fn a_guard_held_across_await_is_found_between_main_future_polls() {
    let b = LocalExecutorBuilder::default().with_slice_extension();
    let metrics = b.metrics();
    let m = metrics.clone();
    let (on, seen, after) = b
        .spawn(move || async move {
            let holder = glommio::spawn_local(async {
                let g = rseq_slice_core::SliceGuard::new();
                glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
                drop(g);
            });
            // The main future yields meanwhile, with the holder's guard alive.
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
            let seen = m.threads()[0].open_guards;
            holder.await;
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            (
                rseq_slice_core::state().is_ok(),
                seen,
                m.threads()[0].open_guards,
            )
        })
        .expect("executor start")
        .join()
        .unwrap();
    if !on {
        common::say(format_args!(
            "SKIPPED a_guard_held_across_await_is_found_between_main_future_polls: guards are \
             inert where the extension is off ({:?})",
            metrics.threads()[0].state
        ));
        return;
    }
    common::say(format_args!(
        "glommio: open guards between main-future polls {seen} while held, {after} after"
    ));
    assert_eq!((seen, after), (1, 0));
}

#[test]
fn the_configs_thread_hooks_run_on_each_executor_thread_around_its_future() {
    type Log = Arc<Mutex<Vec<(ThreadId, &'static str)>>>;
    let log = Log::default();
    let note = |log: &Log, what: &'static str| {
        let log = log.clone();
        move || {
            log.lock()
                .unwrap()
                .push((std::thread::current().id(), what))
        }
    };
    let (start, stop) = (note(&log, "start"), note(&log, "stop"));
    let cfg = SliceConfig::new()
        .on_thread_start(move || {
            // After registration: the thread has its state already.
            assert_ne!(rseq_slice_core::state(), Err(Unavailable::NotInitialized));
            start();
        })
        .on_thread_stop(stop);
    let metrics = cfg.metrics();
    let future = note(&log, "future");
    LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(2))
        .with_slice_config(cfg)
        .on_all_shards(move || async move {
            future();
            hundred_tasks().await
        })
        .expect("pool start")
        .join_all()
        .into_iter()
        .for_each(|r| assert_eq!(r.unwrap(), 4950));
    let log = log.lock().unwrap().clone();
    let threads: HashSet<_> = log.iter().map(|(t, _)| *t).collect();
    assert_eq!(threads.len(), 2, "{log:?}");
    for t in threads {
        let order: Vec<_> = log
            .iter()
            .filter(|(u, _)| *u == t)
            .map(|(_, w)| *w)
            .collect();
        assert_eq!(order, ["start", "future", "stop"], "{log:?}");
    }
    assert_states(&metrics, 2);
}

#[test]
fn a_panicking_stop_hook_still_ends_a_made_executors_entry() {
    let metrics = common::on_thread(|| {
        let cfg = SliceConfig::new().on_thread_stop(|| panic!("the user's stop hook panics"));
        let metrics = cfg.metrics();
        let ex = LocalExecutorBuilder::default()
            .with_slice_config(cfg)
            .make()
            .expect("executor");
        assert_eq!(ex.run(hundred_tasks()), 4950);
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(ex)));
        assert!(dropped.is_err(), "the hook did not run");
        metrics
    });
    assert_states(&metrics, 1);
}

#[test]
fn executors_report_to_metrics_given_to_the_config_and_its_intervals() {
    let shared = SliceMetrics::default();
    let mut intervals = shared.intervals();
    for _ in 0..2 {
        LocalExecutorBuilder::default()
            .with_slice_config(SliceConfig::new().with_metrics(shared.clone()))
            .spawn(hundred_tasks)
            .expect("executor start")
            .join()
            .unwrap();
    }
    let first = intervals.next().unwrap();
    assert_eq!(
        (
            first.threads_started,
            first.threads_stopped,
            first.threads_alive
        ),
        (2, 2, 0)
    );
    assert_eq!(first.stats, shared.cumulative().stats);
    assert_states(&shared, 2);
    assert_eq!(intervals.next().unwrap(), RuntimeMetrics::default());
}
