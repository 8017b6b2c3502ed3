//! What runtime adapters share (`rseq_slice_core::runtime`): a registry that
//! stays bounded, threads that move between runtimes, guards left open.

mod common;

use common::{on_thread, say, sections};
use rseq_slice_core::runtime::{self, RETAINED_STOPPED, SliceMetrics};
use rseq_slice_core::{Error, SliceGuard, critical, disable, stats};

#[test]
fn a_registry_of_short_lived_threads_stays_bounded() {
    let metrics = SliceMetrics::default();
    let n = 300;
    let mut expected = 0;
    for _ in 0..n {
        let m = metrics.clone();
        expected += on_thread(move || {
            let _ = runtime::thread_start(&m);
            critical(|| ());
            runtime::thread_stop();
            sections(1)
        });
    }
    let (threads, retired) = (metrics.threads(), metrics.retired());
    say(format_args!(
        "{n} threads: {} listed, {} retired, total {:?}",
        threads.len(),
        retired.threads,
        metrics.total()
    ));
    assert_eq!(threads.len(), RETAINED_STOPPED);
    assert_eq!(retired.threads + threads.len() as u64, n);
    // The newest stopped threads stay listed, in start order.
    let first = n as usize - RETAINED_STOPPED;
    assert!(threads.iter().map(|t| t.index).eq(first..n as usize));
    assert_eq!(metrics.total().requested, expected);
    assert_eq!(
        retired.stats.requested + threads.iter().map(|t| t.stats.requested).sum::<u64>(),
        expected
    );
}

#[test]
fn a_runtime_thread_that_drives_another_runtime_keeps_its_sections() {
    let (home, other) = (SliceMetrics::default(), SliceMetrics::default());
    let (h, o) = (home.clone(), other.clone());
    let (opened, own) = on_thread(move || {
        let _ = runtime::thread_start(&h);
        critical(|| ());
        // It drives a current-thread runtime (whose park hook joins it
        // there, without sections), then comes back to its own runtime.
        let mut opened = Vec::new();
        for m in [&o, &h, &o, &h] {
            runtime::ensure_started(m);
            critical(|| ());
            runtime::open_section("scheduler");
            opened.push(runtime::section_open());
            runtime::close_section();
        }
        runtime::thread_stop();
        (opened, stats())
    });
    assert_eq!(opened, [false, true, false, true], "sections per visit");
    // Each stretch counts once, in the runtime it belonged to.
    let (h, o) = (home.total(), other.total());
    say(format_args!("home {h:?}, other {o:?}, thread {own:?}"));
    assert_eq!(h.requested + o.requested, own.requested);
    assert_eq!(home.threads().len(), 3);
    assert_eq!(other.threads().len(), 2);
    assert!(
        home.threads()
            .iter()
            .chain(&other.threads())
            .all(|t| !t.alive)
    );
}

#[test]
fn a_guard_left_open_is_found_when_the_thread_goes_idle() {
    let metrics = SliceMetrics::default();
    let m = metrics.clone();
    let outcome: Result<_, rseq_slice_core::Unavailable> = on_thread(move || {
        runtime::thread_start(&m)?;
        runtime::idle();
        let clean = m.threads()[0].open_guards;
        let g = SliceGuard::new();
        runtime::idle();
        let held = m.threads()[0].open_guards;
        drop(g);
        runtime::idle();
        let dropped = m.threads()[0].open_guards;
        // A leaked guard stays open for good: switching is refused.
        std::mem::forget(SliceGuard::new());
        runtime::idle();
        let leaked = m.threads()[0].open_guards;
        let switch = disable();
        runtime::thread_stop();
        Ok(([clean, held, dropped, leaked], switch))
    });
    match outcome {
        Err(why) => say(format_args!(
            "SKIPPED a_guard_left_open_is_found_when_the_thread_goes_idle: guards are inert \
             where the extension is off ({why})"
        )),
        Ok((open, switch)) => {
            assert_eq!(open, [0, 1, 0, 1]);
            assert!(
                matches!(switch, Err(Error::InCriticalSection)),
                "{switch:?}"
            );
        }
    }
}
