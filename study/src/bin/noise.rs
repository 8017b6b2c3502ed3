//! CPU noise for the latency study: bursty wakers and CPU hogs.
//!
//! A bursty waker spins `--busy-us` then sleeps `--sleep-us` (2 µs / 50 µs,
//! like the kernel selftest's noise thread): every wake-up can preempt a
//! worker. A hog spins without end, so workers share the CPU and are
//! preempted at slice ends. `--level`: 0 nothing, 1 one bursty waker,
//! 2 two bursty wakers and one hog; `--wakers` / `--hogs` override.
//! `--policy` lowers every thread's priority (`nice 19`, `SCHED_IDLE`), as
//! an operator would for batch work. Exits after `--secs`.

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Parser, ValueEnum};

/// The scheduling policy of every noise thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Policy {
    /// `nice 0`, the service's own.
    Nice0,
    /// `nice 19`.
    Nice19,
    /// `SCHED_IDLE`: runs only when nothing else wants the CPU.
    Idle,
}

#[derive(Parser, Debug)]
#[command(about = "CPU noise: bursty wakers (2 µs busy / 50 µs asleep) and hogs")]
struct Args {
    /// 0: none, 1: one bursty waker, 2: two bursty wakers and one hog.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=64))]
    level: u32,
    /// Bursty wakers (overrides the level's).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=1024))]
    wakers: Option<u32>,
    /// CPU hogs (overrides the level's).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=1024))]
    hogs: Option<u32>,
    /// Busy time of a waker, µs.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    busy_us: u64,
    /// Sleep time of a waker, µs.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    sleep_us: u64,
    /// Every thread's scheduling policy.
    #[arg(long, value_enum, default_value_t = Policy::Nice0)]
    policy: Policy,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 60.0, value_parser = rseq_slice_study::cli::secs)]
    secs: f64,
}

/// `(wakers, hogs)` for a noise level.
fn level(l: u32) -> (u32, u32) {
    match l {
        0 => (0, 0),
        1 => (1, 0),
        2 => (2, 1),
        n => (n, n - 1),
    }
}

/// Give the calling thread `p`; the threads it starts inherit it.
fn set_policy(p: Policy) -> Result<()> {
    match p {
        Policy::Nice0 => {}
        Policy::Nice19 => rustix::process::setpriority_process(None, 19)?,
        Policy::Idle => {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: `param` is a valid sched_param for the call's duration.
            if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
                anyhow::bail!("SCHED_IDLE: {}", std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

fn spin(until: Instant) {
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

fn main() -> Result<()> {
    let a = Args::parse();
    set_policy(a.policy)?;
    let (w, h) = level(a.level);
    let (wakers, hogs) = (a.wakers.unwrap_or(w), a.hogs.unwrap_or(h));
    let end = Instant::now() + Duration::from_secs_f64(a.secs);
    let (busy, sleep) = (
        Duration::from_micros(a.busy_us),
        Duration::from_micros(a.sleep_us),
    );
    let mut threads = Vec::new();
    for _ in 0..wakers {
        threads.push(std::thread::spawn(move || {
            while Instant::now() < end {
                spin(Instant::now() + busy);
                std::thread::sleep(sleep);
            }
        }));
    }
    for _ in 0..hogs {
        threads.push(std::thread::spawn(move || spin(end)));
    }
    if threads.is_empty() {
        std::thread::sleep(end.saturating_duration_since(Instant::now()));
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}
