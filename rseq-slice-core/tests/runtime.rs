//! What runtime adapters share (`rseq_slice_core::runtime`): a registry that
//! stays bounded, its interval view, a thread handle that ends its entry when
//! dropped, threads that move between runtimes, guards left open.

use rseq_slice_testkit as common;

use common::{on_thread, say, sections};
use rseq_slice_core::runtime::{RETAINED_STOPPED, RuntimeMetrics, RuntimeThread, SliceMetrics};
use rseq_slice_core::{Error, SliceGuard, SliceStats, critical, disable, stats};

#[test]
fn a_registry_of_short_lived_threads_stays_bounded() {
    let metrics = SliceMetrics::default();
    let n = 300;
    let mut expected = 0;
    for _ in 0..n {
        let m = metrics.clone();
        expected += on_thread(move || {
            let thread = RuntimeThread::start(&m);
            critical(|| ());
            drop(thread);
            sections(1)
        });
    }
    let (threads, retired) = (metrics.threads(), metrics.retired());
    say(format_args!(
        "{n} threads: {} listed, {} retired, total {:?}",
        threads.len(),
        retired.threads,
        metrics.cumulative().stats
    ));
    assert_eq!(threads.len(), RETAINED_STOPPED);
    assert_eq!(retired.threads + threads.len() as u64, n);
    // The newest stopped threads stay listed, in start order.
    let first = n as usize - RETAINED_STOPPED;
    assert!(threads.iter().map(|t| t.index).eq(first..n as usize));
    assert_eq!(metrics.cumulative().stats.requested, expected);
    assert_eq!(
        retired.stats.requested + threads.iter().map(|t| t.stats.requested).sum::<u64>(),
        expected
    );
}

#[test]
fn a_runtime_thread_that_visits_another_runtime_keeps_one_entry_in_each() {
    let (home, other) = (SliceMetrics::default(), SliceMetrics::default());
    let (h, o) = (home.clone(), other.clone());
    let (opened, alive, own) = on_thread(move || {
        let mut thread = RuntimeThread::start(&h);
        critical(|| ());
        // It drives a current-thread runtime (whose hooks move it there, a
        // visit without sections), then comes back to its own runtime.
        let mut opened = Vec::new();
        let mut alive = Vec::new();
        for m in [&o, &h, &o, &h] {
            thread.move_to(m);
            assert!(thread.reports_to(m));
            critical(|| ());
            thread.open_section("scheduler");
            opened.push(thread.section().is_some());
            thread.close_section();
            alive.push((h.threads()[0].alive, o.threads()[0].alive));
        }
        drop(thread);
        (opened, alive, stats())
    });
    assert_eq!(opened, [false, true, false, true], "sections per stretch");
    // Home's entry lives throughout; the visit's while the thread is there.
    assert_eq!(
        alive,
        [(true, true), (true, false), (true, true), (true, false)]
    );
    // Each stretch counts once, in the runtime it belonged to.
    let (h, o) = (home.cumulative().stats, other.cumulative().stats);
    say(format_args!("home {h:?}, other {o:?}, thread {own:?}"));
    assert_eq!(h.requested + o.requested, own.requested);
    if own.requested > 0 {
        assert_eq!(
            (h.requested, o.requested),
            (5, 2),
            "home 1 + 2x2, other 2x1"
        );
    }
    assert_eq!(home.threads().len(), 1);
    assert_eq!(other.threads().len(), 1);
    assert!(
        home.threads()
            .iter()
            .chain(&other.threads())
            .all(|t| !t.alive)
    );
}

#[test]
fn a_runtime_that_ends_its_visits_lists_its_visitors_stopped_until_they_come_back() {
    let metrics = SliceMetrics::default();
    let m = metrics.clone();
    on_thread(move || {
        let mut visitor = RuntimeThread::join(&m);
        assert!(m.threads()[0].alive);
        RuntimeThread::end_visits(&m);
        assert!(!m.threads()[0].alive, "the runtime is gone");
        visitor.move_to(&m);
        assert!(m.threads()[0].alive, "the same entry, back");
        assert_eq!(m.threads().len(), 1);
        drop(visitor);
        assert!(!m.threads()[0].alive);
    });
    let other = SliceMetrics::default();
    let started = other.clone();
    on_thread(move || {
        let _worker = RuntimeThread::start(&started);
        RuntimeThread::end_visits(&started);
        assert!(
            started.threads()[0].alive,
            "a thread the runtime started is no visitor"
        );
    });
    assert!(!other.threads()[0].alive);
}

#[test]
fn a_guard_left_open_is_found_when_the_thread_goes_idle() {
    let metrics = SliceMetrics::default();
    let m = metrics.clone();
    let outcome: Result<_, rseq_slice_core::Unavailable> = on_thread(move || {
        let thread = RuntimeThread::start(&m);
        thread.state()?;
        thread.idle();
        let clean = m.threads()[0].open_guards;
        let g = SliceGuard::new();
        thread.idle();
        let held = m.threads()[0].open_guards;
        drop(g);
        thread.idle();
        let dropped = m.threads()[0].open_guards;
        // A leaked guard stays open for good: switching is refused.
        std::mem::forget(SliceGuard::new());
        thread.idle();
        let leaked = m.threads()[0].open_guards;
        let switch = disable();
        drop(thread);
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

#[test]
fn dropping_the_handle_closes_its_section_publishes_and_stops_the_entry() {
    let metrics = SliceMetrics::default();
    let m = metrics.clone();
    let (before, request, own, expected) = on_thread(move || {
        let thread = RuntimeThread::start(&m);
        critical(|| ());
        thread.open_section("scheduler");
        assert_eq!(thread.section(), Some("scheduler"));
        // Nothing published yet: the entry is alive, with zero counters.
        let before = m.threads()[0].clone();
        drop(thread);
        let request = rseq_slice_core::diagnostics::slice_ctrl().map(|(request, _)| request);
        // Counted only where this thread's guards are armed.
        (before, request, stats(), sections(2))
    });
    let after = &metrics.threads()[0];
    say(format_args!("before drop {before:?}\nafter drop {after:?}"));
    assert!(before.alive && before.stats == SliceStats::default());
    assert!(!after.alive, "the dropped handle left its entry alive");
    // The final counters hold the guard and the section the drop closed
    // (both inert, so 0, where the extension is off).
    assert_eq!(after.stats, own);
    assert_eq!(after.stats.requested, expected);
    assert_ne!(request, Some(1), "the drop left the section's request set");
}

#[test]
fn intervals_yield_what_changed_since_the_previous_sample() {
    let metrics = SliceMetrics::default();
    let mut intervals = metrics.intervals();
    let short_lived = |n: usize| {
        for _ in 0..n {
            let m = metrics.clone();
            on_thread(move || {
                let _thread = RuntimeThread::start(&m);
                critical(|| ());
            });
        }
    };
    let mut seen = Vec::new();
    // Two threads come and go, and this one stays.
    short_lived(2);
    let mine = RuntimeThread::start(&metrics);
    seen.push(intervals.next().unwrap());
    // This thread publishes two sections.
    critical(|| ());
    critical(|| ());
    mine.publish();
    seen.push(intervals.next().unwrap());
    // Enough threads that some are folded into `retired`: the deltas must
    // not notice.
    short_lived(RETAINED_STOPPED + 6);
    seen.push(intervals.next().unwrap());
    drop(mine);
    seen.push(intervals.next().unwrap());
    seen.push(intervals.next().unwrap());
    say(format_args!("intervals {seen:?}"));
    let shape: Vec<_> = seen
        .iter()
        .map(|i| (i.threads_started, i.threads_stopped, i.threads_alive))
        .collect();
    let n = RETAINED_STOPPED as u64 + 6;
    assert_eq!(
        shape,
        [(3, 2, 1), (0, 0, 1), (n, n, 1), (0, 1, 0), (0, 0, 0)]
    );
    let requested: Vec<_> = seen.iter().map(|i| i.stats.requested).collect();
    assert_eq!(requested, [sections(2), sections(2), sections(n), 0, 0]);
    assert_eq!(seen[4], RuntimeMetrics::default());
    assert!(metrics.retired().threads > 0);
    let summed = seen.iter().map(|i| i.stats).sum::<SliceStats>();
    assert_eq!(summed, metrics.cumulative().stats);
    // A new iterator starts from the beginning again.
    let all = metrics.intervals().next().unwrap();
    assert_eq!(
        (all.threads_started, all.stats),
        (n + 3, metrics.cumulative().stats)
    );
}

#[test]
fn a_visitor_whose_stopped_entry_was_retired_gets_a_new_one() {
    let metrics = SliceMetrics::default();
    let m = metrics.clone();
    on_thread(move || {
        let mut visitor = RuntimeThread::join(&m);
        RuntimeThread::end_visits(&m);
        // Enough stopped threads to fold the visitor's stopped entry away.
        for _ in 0..=RETAINED_STOPPED {
            let m = m.clone();
            on_thread(move || drop(RuntimeThread::start(&m)));
        }
        assert!(
            m.retired().threads >= 1,
            "the oldest stopped entry, the visitor's, is retired"
        );
        visitor.move_to(&m);
        assert!(
            m.threads().last().is_some_and(|t| t.alive),
            "a new, running entry"
        );
    });
}
