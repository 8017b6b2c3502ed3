//! The scheduler knobs the checks turn: pinning, nice, `SCHED_IDLE`, a
//! thread's CPU time, and CPU hogs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::thread::CpuSet;

/// How a hog runs against the nice-0 threads it competes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Batch {
    /// `nice 0`: the same weight as the service.
    Nice0,
    /// `nice 19`: weight 15 against 1024.
    Nice19,
    /// `SCHED_IDLE`: runs only when nothing else wants the CPU.
    Idle,
}

impl Batch {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Batch::Nice0 => "nice 0",
            Batch::Nice19 => "nice 19",
            Batch::Idle => "SCHED_IDLE",
        }
    }
}

/// The CPUs this process may use.
pub(crate) fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Pin the calling thread to `cpu`.
pub(crate) fn pin(cpu: usize) {
    pin_set(&[cpu]);
}

/// Let the calling thread run on `cpus` only (empty: leave it as it is).
pub(crate) fn pin_set(cpus: &[usize]) {
    if cpus.is_empty() {
        return;
    }
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c);
    }
    // A CPU the process may not use leaves the thread where it was: the
    // check that asked for it then measures less than it says, never wrongly.
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// Give the calling thread `batch`'s priority.
pub(crate) fn become_batch(batch: Batch) {
    let tid = rustix::thread::gettid();
    match batch {
        Batch::Nice0 => {}
        Batch::Nice19 => {
            let _ = rustix::process::setpriority_process(Some(tid), 19);
        }
        Batch::Idle => {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: `param` is a valid sched_param for the call's duration.
            unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        }
    }
}

/// The calling thread's CPU time so far (user + system).
pub(crate) fn thread_cpu_time() -> Duration {
    // SAFETY: a zeroed rusage is valid; getrusage fills it.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU hogs that spin until dropped; each reports its CPU time.
pub(crate) struct Hogs {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Duration>>,
}

impl Hogs {
    /// `n` hogs of `batch`, each free to move among `cpus` (empty: among
    /// the creator's CPUs).
    pub(crate) fn start(n: usize, batch: Batch, cpus: &[usize]) -> Hogs {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let (stop, cpus) = (stop.clone(), cpus.to_vec());
                std::thread::spawn(move || {
                    pin_set(&cpus);
                    become_batch(batch);
                    let start = thread_cpu_time();
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                    thread_cpu_time() - start
                })
            })
            .collect();
        Hogs { stop, threads }
    }

    /// Stop them: each one's CPU time.
    pub(crate) fn stop(mut self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        std::mem::take(&mut self.threads)
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}
