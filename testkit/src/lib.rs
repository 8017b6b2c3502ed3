//! The helpers the test binaries of rseq-slice-core, -tokio and -glommio
//! share (a `publish = false` dev-dependency): where we run, CPU pinning, a noise thread
//! (as the kernel's `slice_test` has), a `tracing` recorder.

mod recorder;
pub use recorder::{LibraryTrace, Recorded, Recorder};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rseq_slice_core::diagnostics::LibcRseq;
use rseq_slice_core::diagnostics::kernel_support;
use rseq_slice_core::{Registrar, Unavailable};
use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// Which rseq area the thread's guards use on a kernel with the feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// glibc registered nothing (GLIBC_TUNABLES=glibc.pthread.rseq=0, or a
    /// libc without rseq): the crate registers its own area.
    Crate,
    /// glibc ≥ 2.41 registered an optimized (v2) area: the crate adopts it.
    LibcV2,
    /// glibc < 2.41 registered a legacy area: the feature must report
    /// LibcLegacy and guards stay inert.
    LibcLegacy,
}

impl Mode {
    /// What libc's `__rseq_size` says.
    pub fn detect() -> Mode {
        match LibcRseq::get() {
            Some(l) if l.size > 32 => Mode::LibcV2,
            Some(l) if l.size > 0 => Mode::LibcLegacy,
            _ => Mode::Crate,
        }
    }
    /// Whether the extension is on for a thread that called `init()`.
    pub fn on(self) -> bool {
        self != Mode::LibcLegacy
    }
    /// Who `init()` must report.
    pub fn registrar(self) -> Result<Registrar, &'static str> {
        match self {
            Mode::Crate => Ok(Registrar::Crate),
            Mode::LibcV2 => Ok(Registrar::LibcV2),
            Mode::LibcLegacy => Err("glibc's legacy area"),
        }
    }
    /// Its name in `RSEQ_SLICE_EXPECT_AREA`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Crate => "crate",
            Mode::LibcV2 => "libc-v2",
            Mode::LibcLegacy => "libc-legacy",
        }
    }
}

/// `Some(mode)` on a kernel with the feature. On one without, prints why the
/// test skips and returns `None`.
///
/// The guest run makes a wrong verdict fail instead of skip (see
/// docs/guest.md, "Environment"):
/// - `RSEQ_SLICE_REQUIRE_KERNEL=1`: a kernel without the feature panics;
/// - `RSEQ_SLICE_EXPECT_AREA=crate|libc-v2|libc-legacy`: another area panics;
/// - `RSEQ_SLICE_EXPECT_REASON=disabled-at-boot` (the `rseq_slice_ext=off`
///   boot): the kernel's verdict must be exactly that reason; the test then
///   skips, saying so.
pub fn kernel_mode(test: &str) -> Option<Mode> {
    let verdict = kernel_support();
    if let Ok(reason) = std::env::var("RSEQ_SLICE_EXPECT_REASON") {
        let expected = match reason.as_str() {
            "disabled-at-boot" => Unavailable::DisabledAtBoot,
            other => panic!(
                "{test}: RSEQ_SLICE_EXPECT_REASON={other} is not a reason the tests know \
                 (disabled-at-boot)"
            ),
        };
        assert_eq!(
            verdict,
            Err(expected),
            "{test}: this boot must switch the feature off ({reason}), but kernel detection says otherwise"
        );
        say(format_args!(
            "SKIPPED {test}: this boot switches the feature off, and kernel detection agrees ({reason})"
        ));
        return None;
    }
    match verdict {
        Ok(()) => {
            let mode = Mode::detect();
            if let Ok(area) = std::env::var("RSEQ_SLICE_EXPECT_AREA") {
                assert_eq!(
                    mode.name(),
                    area,
                    "{test}: RSEQ_SLICE_EXPECT_AREA={area}, but libc's __rseq_* say {mode:?} ({:?})",
                    LibcRseq::get()
                );
            }
            Some(mode)
        }
        Err(why) if std::env::var("RSEQ_SLICE_REQUIRE_KERNEL").as_deref() == Ok("1") => {
            panic!("{test}: RSEQ_SLICE_REQUIRE_KERNEL=1 but the kernel lacks the feature: {why}")
        }
        Err(why) => {
            say(format_args!(
                "SKIPPED {test}: needs the rseq slice extension (`cargo xtask test` runs it in a guest): {why}"
            ));
            None
        }
    }
}

/// Assert that `init()` gave what `mode` promises: the registrar where the
/// extension is on, the legacy reason where glibc's area is legacy.
pub fn expect_init(mode: Mode, outcome: Result<Registrar, Unavailable>) {
    match mode.registrar() {
        Ok(r) => assert_eq!(outcome, Ok(r), "init() in mode {mode:?}"),
        Err(_) => assert!(
            matches!(outcome, Err(Unavailable::LibcLegacy { size }) if size <= 32),
            "glibc's legacy area must be reported, got {outcome:?}"
        ),
    }
}

/// Print a line past the test harness's output capture, so skips and
/// measurements show in a normal `cargo test` run.
pub fn say(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{args}");
}

/// Run `f` on a fresh thread (each test gets its own registration); a
/// panic there fails the test.
pub fn on_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::spawn(f).join().expect("test thread panicked")
}

/// What `n` outermost sections add to this thread's `requested`: `n` while
/// the extension is on, 0 while guards are inert.
pub fn sections(n: u64) -> u64 {
    if rseq_slice_core::state().is_ok() {
        n
    } else {
        0
    }
}

/// Pin the calling thread to `cpu`.
pub fn pin(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set).expect("sched_setaffinity");
}

/// The highest CPU this process may run on (slice_test avoids CPU 0).
pub fn last_cpu() -> usize {
    let set = sched_getaffinity(None).expect("sched_getaffinity");
    (0..CpuSet::MAX_CPU)
        .rev()
        .find(|&c| set.is_set(c))
        .unwrap_or(0)
}

/// Busy-wait for `d` (clock_gettime is a vDSO call: no system call).
pub fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// A thread pinned to `cpu` that burns `busy`, sleeps `sleep`, repeats:
/// each wake-up wants the CPU and preempts whoever runs there.
#[derive(Debug)]
pub struct Noise {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Noise {
    pub fn start(cpu: usize, busy: Duration, sleep: Duration) -> Noise {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            pin(cpu);
            while !s.load(Ordering::Relaxed) {
                spin(busy);
                std::thread::sleep(sleep);
            }
        });
        Noise {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Noise {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
