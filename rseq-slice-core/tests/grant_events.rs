//! Grant events (`tracing` feature) on the real kernel: guards never emit
//! them, not even inside a signal handler (where `tracing`'s locks and
//! allocation are not allowed); `report_grants` does, later. Skips, saying
//! why, where the kernel lacks the feature.

use rseq_slice_testkit as common;

use std::time::{Duration, Instant};

use common::{Noise, Recorded, Recorder, kernel_mode, last_cpu, on_thread, pin, say, spin};
use rseq_slice_core::diagnostics::report_grants;
use rseq_slice_core::{critical, init, stats};

/// The crate's events among `records`.
fn crate_events(records: &[Recorded]) -> impl Iterator<Item = &Recorded> {
    records
        .iter()
        .filter(|r| r.span.is_none() && r.target == "rseq_slice")
}

/// A 20 µs section inside the handler: long enough for the noise thread's
/// wake-ups to land in it and be deferred.
extern "C" fn on_signal(_: libc::c_int) {
    critical(|| spin(Duration::from_micros(20)));
}

#[test]
fn grants_inside_a_signal_handler_are_reported_outside_it() {
    let Some(mode) = kernel_mode("grants_inside_a_signal_handler_are_reported_outside_it") else {
        return;
    };
    let rec = Recorder::global();
    let (ours, during, reported) = on_thread(move || {
        let cpu = last_cpu();
        pin(cpu);
        let _ = init();
        // SAFETY: the handler touches only thread-locals (the guard) and the
        // vDSO clock.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as *const () as usize;
            assert_eq!(libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()), 0);
        }
        let _noise = Noise::start(cpu, Duration::from_micros(2), Duration::from_micros(50));
        let start = rec.recorded().len();
        let s0 = stats();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(1) {
            // SAFETY: raise runs the handler on this thread before returning.
            assert_eq!(unsafe { libc::raise(libc::SIGUSR2) }, 0);
        }
        let ours = stats() - s0;
        let before_report = rec.recorded().len();
        report_grants();
        let all = rec.recorded();
        // The events of the sections (in the handler or out of it), and
        // those report_grants emitted.
        (
            ours,
            crate_events(&all[start..before_report])
                .cloned()
                .collect::<Vec<_>>(),
            crate_events(&all[before_report..])
                .cloned()
                .collect::<Vec<_>>(),
        )
    });
    let grants: u64 = reported
        .iter()
        .filter_map(|e| e.field("granted")?.parse::<u64>().ok())
        .sum();
    say(format_args!(
        "signal handler sections [{mode:?}]: {ours:?}; events before report_grants {} \
         (none may come from a guard, in the handler or out of it); grants reported {grants} \
         in {} events",
        during.len(),
        reported.len()
    ));
    assert!(
        during.is_empty(),
        "a guard emitted a grant event (the handler's sections are the only ones): {during:?}"
    );
    assert_eq!(grants, ours.granted, "{reported:?}");
    if mode.on() {
        assert!(ours.granted > 0, "no grant inside the handler: {ours:?}");
    }
}
