//! The study's child processes: each dies with the study (a parent-death
//! signal), a `--service` command with its whole process group; and the
//! CPUs they all run on.

use std::process::{Child, Command};
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result, bail};

/// The process groups of the running `--service` and `--noise-cmd`
/// commands (0: none), for the signal handler.
static GROUPS: [AtomicI32; 2] = [AtomicI32::new(0), AtomicI32::new(0)];

extern "C" fn interrupted(sig: libc::c_int) {
    for g in &GROUPS {
        let g = g.load(Ordering::SeqCst);
        if g > 0 {
            // SAFETY: kill(2) is async-signal-safe; an atomic load is the
            // only other thing this handler does.
            unsafe { libc::kill(-g, libc::SIGKILL) };
        }
    }
    // SAFETY: _exit(2) is async-signal-safe.
    unsafe { libc::_exit(128 + sig) }
}

/// On SIGINT and SIGTERM, kill the `--service` and `--noise-cmd` commands'
/// process groups (their processes do not die with the study on their own:
/// only the first has a parent-death signal), then exit. Other children die with
/// the study (`PR_SET_PDEATHSIG`); runs.jsonl holds every finished run.
pub(crate) fn kill_group_on_interrupt() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only does async-signal-safe work;
        // the function pointer has the signature signal(2) expects.
        unsafe {
            libc::signal(sig, interrupted as *const () as libc::sighandler_t);
        }
    }
}

/// A child that is killed when dropped, with its process group if it
/// leads one (a `--service` command and whatever it started).
#[derive(Debug)]
pub(crate) struct Kid(pub(crate) Child, bool);

impl Drop for Kid {
    fn drop(&mut self) {
        if self.1
            && let Ok(pid) = i32::try_from(self.0.id())
        {
            for g in &GROUPS {
                let _ = g.compare_exchange(pid, 0, Ordering::SeqCst, Ordering::SeqCst);
            }
            // SAFETY: kill(2) with a negative pid signals that process
            // group; no memory is involved.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawn `cmd` on `cpus` (empty: wherever the study may run).
pub(crate) fn spawn(cmd: &mut Command, what: &str, cpus: &[usize]) -> Result<Kid> {
    spawn_in(cmd, what, false, cpus, None)
}

/// Spawn `cmd` on `cpus`, leading a process group of its own if `group`,
/// in the cgroup whose open `cgroup.procs` is `cgroup` if one is given.
pub(crate) fn spawn_in(
    cmd: &mut Command,
    what: &str,
    group: bool,
    cpus: &[usize],
    cgroup: Option<&std::fs::File>,
) -> Result<Kid> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    // The descriptor stays open in the child until exec (close-on-exec).
    let procs = cgroup.map(|f| f.as_raw_fd());
    if group {
        cmd.process_group(0);
    }
    let mut set = rustix::thread::CpuSet::new();
    for &c in cpus {
        set.set(c);
    }
    let pin = !cpus.is_empty();
    // SAFETY: prctl, sched_setaffinity (rustix's: a system call, no
    // allocation) and write are async-signal-safe system calls on memory
    // the closure owns and on a descriptor the parent keeps open; it
    // touches nothing else between fork and exec. The child dies with the
    // study, on `cpus`, in the cgroup.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if pin {
                rustix::thread::sched_setaffinity(None, &set)?;
            }
            if let Some(fd) = procs
                && libc::write(fd, b"0".as_ptr().cast(), 1) != 1
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().with_context(|| format!("spawning {what}"))?;
    if group && let Ok(pid) = i32::try_from(child.id()) {
        // A free slot; with both taken the handler misses this group, whose
        // first process still dies with the study.
        let _ = GROUPS.iter().find(|g| {
            g.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        });
    }
    Ok(Kid(child, group))
}

/// Pin this process (and so its children) to the first `n` CPUs it may use.
pub(crate) fn pin(n: usize) -> Result<Vec<usize>> {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
    let set = sched_getaffinity(None).context("sched_getaffinity")?;
    let allowed: Vec<usize> = (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect();
    if n > allowed.len() {
        bail!(
            "--cpus {n}, but this process may run on {} CPUs ({allowed:?})",
            allowed.len()
        );
    }
    if n == 0 || n == allowed.len() {
        return Ok(allowed);
    }
    let mut new = CpuSet::new();
    for &c in &allowed[..n] {
        new.set(c);
    }
    sched_setaffinity(None, &new).context("sched_setaffinity")?;
    Ok(allowed[..n].to_vec())
}
