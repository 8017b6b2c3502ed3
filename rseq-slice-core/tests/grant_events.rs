//! Grant events (`tracing` feature) on the real kernel: guards never emit
//! them, not even inside a signal handler (where `tracing`'s locks and
//! allocation are not allowed); `report_grants` does, later. Skips, saying
//! why, where the kernel lacks the feature.

use rseq_slice_testkit as common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Noise, kernel_mode, last_cpu, on_thread, pin, say, spin};
use rseq_slice_core::diagnostics::report_grants;
use rseq_slice_core::{critical, init, stats};

/// Set while the signal handler's section runs.
static IN_HANDLER: AtomicBool = AtomicBool::new(false);

/// The crate's grant events on the thread it is the default for.
#[derive(Default)]
struct Events {
    /// Grants reported, summed over the events' `grants` field.
    grants: AtomicU64,
    /// Events emitted at all, and those emitted inside the handler.
    events: AtomicU64,
    in_handler: AtomicU64,
}

struct Subscriber(Arc<Events>);

impl tracing::field::Visit for &Events {
    fn record_u64(&mut self, f: &tracing::field::Field, v: u64) {
        if f.name() == "grants" {
            self.grants.fetch_add(v, Ordering::Relaxed);
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl tracing::Subscriber for Subscriber {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        m.target() == "rseq_slice"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        self.0.events.fetch_add(1, Ordering::Relaxed);
        if IN_HANDLER.load(Ordering::Relaxed) {
            self.0.in_handler.fetch_add(1, Ordering::Relaxed);
        }
        e.record(&mut &*self.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A 20 µs section inside the handler: long enough for the noise thread's
/// wake-ups to land in it and be deferred.
extern "C" fn on_signal(_: libc::c_int) {
    IN_HANDLER.store(true, Ordering::Relaxed);
    critical(|| spin(Duration::from_micros(20)));
    IN_HANDLER.store(false, Ordering::Relaxed);
}

#[test]
fn grants_inside_a_signal_handler_are_reported_outside_it() {
    let Some(mode) = kernel_mode("grants_inside_a_signal_handler_are_reported_outside_it") else {
        return;
    };
    let events = Arc::new(Events::default());
    let seen = events.clone();
    let (ours, before_report) = on_thread(move || {
        let cpu = last_cpu();
        pin(cpu);
        let _ = init();
        // SAFETY: the handler touches only thread-locals (the guard), an
        // atomic and the vDSO clock.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as *const () as usize;
            assert_eq!(libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()), 0);
        }
        let _sub = tracing::subscriber::set_default(Subscriber(seen.clone()));
        let _noise = Noise::start(cpu, Duration::from_micros(2), Duration::from_micros(50));
        let s0 = stats();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(1) {
            // SAFETY: raise runs the handler on this thread before returning.
            assert_eq!(unsafe { libc::raise(libc::SIGUSR2) }, 0);
        }
        let ours = stats() - s0;
        let before_report = seen.events.load(Ordering::Relaxed);
        report_grants();
        (ours, before_report)
    });
    let (grants, in_handler) = (
        events.grants.load(Ordering::Relaxed),
        events.in_handler.load(Ordering::Relaxed),
    );
    say(format_args!(
        "signal handler sections [{mode:?}]: {ours:?}; events before report_grants {before_report} \
         ({in_handler} inside the handler); grants reported {grants}"
    ));
    assert_eq!(
        in_handler, 0,
        "a grant event was emitted inside the handler"
    );
    assert_eq!(before_report, 0, "a guard emitted a grant event");
    assert_eq!(grants, ours.granted);
    if mode.on() {
        assert!(ours.granted > 0, "no grant inside the handler: {ours:?}");
    }
}
