//! Sections that must not stay open, and metrics that must not go stale:
//! `block_in_place`, poll hooks (the adapter's and the user's), guards held
//! across `.await`, and a panicking stop hook.
//!
//! The section checks need `--cfg tokio_unstable` (`cargo xtask test` builds
//! this binary both ways, and runs both in the guest); without it they skip,
//! saying why. `current_section()` is the adapter's own record, so it
//! sees an open section on any kernel; where the extension is on, the
//! `request` byte is checked too.

mod common;

#[cfg(tokio_unstable)]
use std::sync::Arc;
#[cfg(tokio_unstable)]
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::two_workers;
use rseq_slice_tokio::{BuilderExt, SliceConfig};
use tokio::runtime::Builder;

fn say(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{args}");
}

/// Whether the calling thread is inside a section: the adapter's open
/// section, or `request` set in its rseq area.
fn in_section() -> bool {
    let request =
        rseq_slice_core::diagnostics::slice_ctrl().is_some_and(|(request, _)| request != 0);
    rseq_slice_tokio::current_section().is_some() || request
}

fn needs_unstable(test: &str) -> bool {
    if cfg!(tokio_unstable) {
        return true;
    }
    say(format_args!(
        "SKIPPED {test}: scheduler sections need the poll hooks of --cfg tokio_unstable \
         (`cargo xtask test` also builds this binary with it)"
    ));
    false
}

#[test]
fn spawn_blocking_after_block_in_place_runs_outside_any_section() {
    if !needs_unstable("spawn_blocking_after_block_in_place_runs_outside_any_section") {
        return;
    }
    let rt = two_workers(SliceConfig::new().scheduler_sections(true));
    let (runs, dirty) = rt.block_on(async {
        let mut dirty = 0;
        let runs = 200;
        for _ in 0..runs {
            // The worker that runs this task hands its core to another thread
            // and, after the task's poll, leaves for the blocking pool.
            tokio::spawn(async {
                tokio::task::block_in_place(|| std::hint::black_box(0));
            })
            .await
            .unwrap();
            if tokio::task::spawn_blocking(in_section).await.unwrap() {
                dirty += 1;
            }
        }
        (runs, dirty)
    });
    drop(rt);
    say(format_args!(
        "spawn_blocking after block_in_place: {dirty} of {runs} closures ran inside a section"
    ));
    assert_eq!(dirty, 0, "{dirty} of {runs} spawn_blocking closures");
}

#[test]
fn poll_hooks_given_to_the_config_run_and_no_poll_is_inside_a_section() {
    #[cfg(not(tokio_unstable))]
    needs_unstable("poll_hooks_given_to_the_config_run_and_no_poll_is_inside_a_section");
    #[cfg(tokio_unstable)]
    {
        let [before, after, done, inside]: [Arc<AtomicUsize>; 4] = Default::default();
        let hook = |n: &Arc<AtomicUsize>, inside: &Arc<AtomicUsize>| {
            let (n, inside) = (n.clone(), inside.clone());
            move |_: &tokio::runtime::TaskMeta<'_>| {
                n.fetch_add(1, Ordering::Relaxed);
                if in_section() {
                    inside.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        let cfg = SliceConfig::new()
            .scheduler_sections(true)
            .on_before_task_poll(hook(&before, &inside))
            .on_after_task_poll(hook(&after, &inside))
            .on_task_terminate(hook(&done, &inside));
        let polls_inside = polls_inside_a_section(two_workers(cfg));
        let n = |c: &Arc<AtomicUsize>| c.load(Ordering::Relaxed);
        say(format_args!(
            "config poll hooks: before {}, after {}, terminate {}, hooks inside a section {}, \
             polls inside a section {polls_inside}",
            n(&before),
            n(&after),
            n(&done),
            n(&inside)
        ));
        assert!(n(&before) >= 1000 && n(&after) >= 1000 && n(&done) >= 100);
        assert_eq!(n(&inside), 0, "the user's hooks ran inside a section");
        assert_eq!(polls_inside, 0);
    }
}

#[test]
fn a_poll_hook_set_on_the_builder_afterwards_does_not_leave_sections_spanning_polls() {
    #[cfg(not(tokio_unstable))]
    needs_unstable(
        "a_poll_hook_set_on_the_builder_afterwards_does_not_leave_sections_spanning_polls",
    );
    #[cfg(tokio_unstable)]
    {
        let mut b = Builder::new_multi_thread();
        b.worker_threads(2)
            .enable_all()
            .with_slice_config(SliceConfig::new().scheduler_sections(true))
            .on_before_task_poll(|_| ());
        let polls_inside = polls_inside_a_section(b.build().unwrap());
        say(format_args!(
            "a replaced before-poll hook: {polls_inside} of 2000 polls inside a section"
        ));
        // Each thread finds out at the end of its first poll inside one.
        assert!(
            polls_inside <= 4,
            "{polls_inside} polls ran inside a scheduler section"
        );
    }
}

/// 100 tasks of 20 polls each on `rt`: how many polls ran inside a section.
#[cfg(tokio_unstable)]
fn polls_inside_a_section(rt: tokio::runtime::Runtime) -> usize {
    let inside = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let inside = inside.clone();
                tokio::spawn(async move {
                    for _ in 0..20 {
                        if in_section() {
                            inside.fetch_add(1, Ordering::Relaxed);
                        }
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    drop(rt);
    inside.load(Ordering::Relaxed)
}

#[test]
fn a_guard_held_across_await_on_a_local_set_is_found_at_park() {
    std::thread::spawn(|| {
        let cfg = SliceConfig::new();
        let metrics = cfg.metrics();
        let rt = Builder::new_current_thread()
            .enable_all()
            .with_slice_config(cfg)
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let (on, seen, after) = local.block_on(&rt, async {
            // The first park registers the thread.
            tokio::time::sleep(Duration::from_millis(1)).await;
            let on = rseq_slice_core::state().is_ok();
            let holder = tokio::task::spawn_local(async {
                let g = rseq_slice_core::SliceGuard::new();
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(g);
            });
            // The runtime parks meanwhile, with the holder's guard alive.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let seen = metrics.threads()[0].open_guards;
            holder.await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
            (on, seen, metrics.threads()[0].open_guards)
        });
        if !on {
            say(format_args!(
                "SKIPPED a_guard_held_across_await_on_a_local_set_is_found_at_park: guards are \
                 inert where the extension is off ({:?})",
                rseq_slice_core::state()
            ));
            return;
        }
        say(format_args!(
            "LocalSet: open guards at park {seen} while held, {after} after"
        ));
        assert_eq!((seen, after), (1, 0));
    })
    .join()
    .unwrap();
}

#[test]
fn a_panicking_stop_hook_still_ends_the_threads_entries() {
    let cfg = SliceConfig::new().on_thread_stop(|| panic!("the user's stop hook panics"));
    let metrics = cfg.metrics();
    let rt = two_workers(cfg);
    rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
    drop(rt);
    let t = Instant::now();
    while metrics.threads().iter().any(|t| t.alive) && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let threads = metrics.threads();
    assert!(
        threads.len() >= 2 && threads.iter().all(|t| !t.alive),
        "{threads:?}"
    );
}
