//! The real-kernel guest: boot one (a kernel from [`crate::kernel`], the
//! tools from [`crate::tools`]) and run commands inside it.
//!
//! Facts this code relies on (measured on these machines):
//! - `/dev/kvm` cannot boot a stock kernel here: always `--disable-kvm`.
//! - Without udev on the host the guest has no `/dev/virtio-ports/virtme.*`
//!   links, so vng's own init cannot find its script ports: the command then
//!   prints nothing and vng exits 255. The guest script therefore finds the
//!   ports itself (`/sys/class/virtio-ports/*/name`) and writes the status to
//!   `virtme.ret`, which vng turns into its exit code.
//! - qemu reopens its stdout/stderr: give it pipes, never a regular file.
//! - `setsid timeout N vng ...` kills the whole guest on time-out.
//! - The guest sees the host's root read-only, host environment not passed.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::kernel::{kernel, rseq_slice_cache};
use crate::tools::{ensure_tools, vng};
use crate::{Result, debian_root, workspace_root};

/// How to boot the guest.
#[derive(Debug, Clone)]
pub(crate) struct Boot {
    pub(crate) cpus: u32,
    pub(crate) memory: String,
    /// `rseq/slice_ext_nsec` set before the command runs (5000..=50000).
    pub(crate) slice_ext_nsec: u32,
    /// Extra kernel command line words.
    pub(crate) append: Vec<String>,
    /// Wall-clock limit for the whole boot.
    pub(crate) timeout_secs: u64,
    /// Host directories the guest may write (`vng --rwdir`); the rest of
    /// the host root is read-only there.
    pub(crate) rw_dirs: Vec<PathBuf>,
    /// The guest's clock: virtual (instruction-counted) or the host's.
    pub(crate) clock: Clock,
    /// The root filesystem the guest boots.
    pub(crate) root: Root,
    /// The qemu that runs it.
    pub(crate) qemu: crate::qemu::Emulator,
    /// The study's layout: the last vCPU is the client's alone. Only the
    /// fidelity verdict reads it (the layout is checked apart).
    pub(crate) client_cpu: bool,
    /// The kernel's preemption model, set at boot (`preempt=`).
    pub(crate) preempt: Preempt,
}

/// The guest kernel's preemption model (`preempt=` at boot; the shared
/// kernel is built `PREEMPT_LAZY` with `PREEMPT_DYNAMIC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Preempt {
    /// `PREEMPT_LAZY`: a fair-class wake-up preemption sets only the lazy
    /// flag, acted on at the next return to user or tick.
    #[default]
    Lazy,
    /// `PREEMPT_FULL`: wake-up preemption acts at once (an IPI for another CPU).
    Full,
}

impl Preempt {
    /// Its name on the kernel command line, in results and in file names.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Preempt::Lazy => "lazy",
            Preempt::Full => "full",
        }
    }
}

/// The guest's root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Root {
    /// The host's own root, read-only: paths are the same in the guest.
    Host,
    /// A Debian root built by [`debian_root::root`] (glibc 2.41): the
    /// workspace appears read-only at [`debian_root::WORKSPACE`].
    Debian(PathBuf),
}

impl Boot {
    /// The host path `p` as the guest sees it, quoted for its shell.
    pub(crate) fn path(&self, p: &Path) -> Result<String> {
        let p = match &self.root {
            Root::Host => p.to_path_buf(),
            Root::Debian(_) => {
                let rel = p.strip_prefix(workspace_root()).map_err(|_| {
                    format!(
                        "{} lies outside the workspace, which is all a Debian-root guest sees",
                        p.display()
                    )
                })?;
                Path::new(debian_root::WORKSPACE).join(rel)
            }
        };
        Ok(sh_quote(&p.display().to_string()))
    }
}

/// The virtual clock's default: one instruction per nanosecond (see
/// `docs/guest.md` for the measurements behind it).
pub(crate) const DEFAULT_SHIFT: u8 = 0;

/// How guest time advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clock {
    /// qemu `-icount shift=N,sleep=off`: every instruction advances guest
    /// time by 2^N ns, and an idle guest skips ahead to its next timer. Host
    /// load changes how long a run takes, not what it measures.
    Virtual { shift: u8 },
    /// The host's wall clock (qemu's default): a busy host stalls vCPUs for
    /// milliseconds and results swing with it.
    Real,
}

impl Clock {
    /// The words results carry (`RSEQ_SLICE_CLOCK` in the guest).
    pub(crate) fn describe(self) -> String {
        match self {
            Clock::Virtual { shift } => format!("virtual (icount shift={shift})"),
            Clock::Real => "real (host wall clock)".to_string(),
        }
    }
}

/// Run `script` (a POSIX shell script body) as root in the guest; its
/// output streams to ours, and its exit status is returned.
pub(crate) fn run(boot: &Boot, script: &str) -> Result<i32> {
    ensure_tools()?;
    let kernel = kernel(true)?;
    let dir = workspace_root().join("target/xtask-guest");
    std::fs::create_dir_all(&dir)?;
    // Removed when dropped, after the guest ends.
    let file = tempfile::Builder::new()
        .prefix("run-")
        .suffix(".sh")
        .tempfile_in(&dir)?;
    let body = format!(
        "{PRELUDE}\nmountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug\n\
         echo {nsec} > /sys/kernel/debug/rseq/slice_ext_nsec\n\
         export RSEQ_SLICE_CLOCK={clock}\n\
         export RSEQ_SLICE_QEMU={qemu}\n\
         export RSEQ_SLICE_FIDELITY={fidelity}\n\
         echo \"guest: $(uname -r), $(nproc) vCPU, $RSEQ_SLICE_CLOCK time, clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource), slice_ext_nsec=$(cat /sys/kernel/debug/rseq/slice_ext_nsec), cmdline: $(cat /proc/cmdline | tr ' ' '\\n' | grep -E '^(rseq|tsc)' | tr '\\n' ' ')\"\n\
         cd {root}\n{script}\n",
        nsec = boot.slice_ext_nsec,
        clock = sh_quote(&boot.clock.describe()),
        qemu = sh_quote(&boot.qemu.describe()),
        fidelity = sh_quote(&crate::fidelity::verdict(boot)),
        root = boot.path(workspace_root())?,
    );
    std::fs::write(file.path(), body)?;
    let mut append = vec!["loglevel=1".to_string()];
    let mut qemu_opts = Vec::new();
    if let Clock::Virtual { shift } = boot.clock {
        // The TSC follows the virtual clock; without `tsc=reliable` the
        // watchdog may still judge it against the HPET and switch.
        append.push("tsc=reliable".to_string());
        qemu_opts.push(format!("--qemu-opts=-icount shift={shift},sleep=off"));
    }
    append.extend(boot.append.iter().cloned());
    let mut cmd = Command::new("setsid");
    cmd.arg("timeout")
        .arg(boot.timeout_secs.to_string())
        .arg(vng().ok_or("no vng")?)
        .arg("--disable-kvm")
        .arg("--run")
        .arg(&kernel)
        .args(["--cpus", &boot.cpus.to_string(), "--memory", &boot.memory])
        .args(["--append", &append.join(" ")])
        .args(&qemu_opts)
        .args(match boot.qemu.binary()? {
            Some(q) => vec!["--qemu".to_string(), q.display().to_string()],
            None => Vec::new(),
        })
        .args(root_args(boot)?)
        .envs(boot.qemu.env())
        .arg("--exec")
        .arg(format!("sh {}", boot.path(file.path())?))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    eprintln!(
        "xtask: booting {} ({} vCPU, {}, {} time, {}, timeout {} s)",
        kernel.display(),
        boot.cpus,
        boot.memory,
        boot.clock.describe(),
        boot.qemu.describe(),
        boot.timeout_secs
    );
    // vng refuses a writable directory that does not exist yet.
    for d in &boot.rw_dirs {
        std::fs::create_dir_all(d)?;
    }
    // Real-time guests skew each other's timings; virtual-time ones do not.
    let _one_guest = match boot.clock {
        Clock::Real => Some(one_guest_at_a_time()?),
        Clock::Virtual { .. } => None,
    };
    // If the xtask dies (Ctrl-C, kill), `timeout` gets SIGTERM and passes it
    // to its process group (the one `setsid` made): vng and qemu end too.
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("spawning vng: {e}"))?;
    let err = child.stderr.take().ok_or("no stderr pipe")?;
    let relay = std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
            eprintln!("{line}");
        }
    });
    let out = child.stdout.take().ok_or("no stdout pipe")?;
    let stdout = std::io::stdout();
    let booted = std::time::Instant::now();
    for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
        let mut lock = stdout.lock();
        // Section headers carry the host's wall time since boot: in virtual
        // time the guest's own clocks say nothing about what a step costs.
        if line.starts_with("== ") {
            let _ = writeln!(lock, "[{:>5.0} s] {line}", booted.elapsed().as_secs_f64());
        } else {
            let _ = writeln!(lock, "{line}");
        }
    }
    let status = child.wait()?;
    let _ = relay.join();
    drop(file);
    match status.code() {
        Some(124) => Err(format!("the guest did not finish within {} s", boot.timeout_secs).into()),
        Some(255) => Err("the guest ended without a status (kernel panic, or vng failed)".into()),
        Some(c) => Ok(c),
        None => Err("vng was killed by a signal".into()),
    }
}

/// vng's arguments for the root and the writable directories.
fn root_args(boot: &Boot) -> Result<Vec<String>> {
    let mut args = Vec::new();
    match &boot.root {
        Root::Host => {
            for d in &boot.rw_dirs {
                args.push(format!("--rwdir={}", d.display()));
            }
        }
        Root::Debian(root) => {
            args.push(format!("--root={}", root.display()));
            args.push(format!(
                "--rodir={}={}",
                debian_root::WORKSPACE,
                workspace_root().display()
            ));
            for d in &boot.rw_dirs {
                let rel = d
                    .strip_prefix(workspace_root())
                    .map_err(|_| format!("{} lies outside the workspace", d.display()))?;
                let guest = Path::new(debian_root::WORKSPACE).join(rel);
                args.push(format!("--rwdir={}={}", guest.display(), d.display()));
            }
        }
    }
    Ok(args)
}

/// One real-time guest at a time on this machine (across checkouts): two
/// would share two host cores and skew each other's timings. The lock is
/// released when the returned file is dropped.
fn one_guest_at_a_time() -> Result<std::fs::File> {
    let dir = rseq_slice_cache();
    std::fs::create_dir_all(&dir)?;
    let f = std::fs::File::create(dir.join("guest.lock"))?;
    if f.try_lock().is_err() {
        eprintln!("xtask: waiting for another guest on this machine to finish");
        f.lock()?;
    }
    Ok(f)
}

/// Runs first in the guest: unless udev made vng's links (a root with udev,
/// where vng's init attaches the ports itself and they cannot be opened
/// twice), attach to vng's script ports by name, run the rest of the
/// script, hand its status to `virtme.ret`.
const PRELUDE: &str = r#"#!/bin/sh
if [ -z "${RSEQ_SLICE_GUEST_WRAPPED:-}" ] && [ ! -e /dev/virtio-ports/virtme.ret ]; then
  port() { for d in /sys/class/virtio-ports/*; do [ "$(cat "$d/name" 2>/dev/null)" = "$1" ] && { echo "/dev/${d##*/}"; return; }; done; }
  OUT=$(port virtme.stdout); ERR=$(port virtme.stderr); RET=$(port virtme.ret)
  export RSEQ_SLICE_GUEST_WRAPPED=1
  if [ -n "$OUT" ]; then exec >"$OUT"; fi
  if [ -n "$ERR" ]; then exec 2>"$ERR"; fi
  sh "$0" "$@" </dev/null; rc=$?
  if [ -n "$RET" ]; then echo $rc >"$RET"; fi
  exit $rc
fi
export PATH="/root/.cargo/bin:$PATH" HOME=/root
set -eu"#;

/// Quote a word for the guest's shell.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(root: Root) -> Boot {
        Boot {
            cpus: 1,
            memory: "1G".into(),
            slice_ext_nsec: 50_000,
            append: Vec::new(),
            timeout_secs: 1,
            rw_dirs: Vec::new(),
            clock: Clock::Virtual { shift: 0 },
            root,
            qemu: crate::qemu::Emulator::host(),
            client_cpu: false,
            preempt: Preempt::Lazy,
        }
    }

    #[test]
    fn paths_are_quoted_for_the_guest_shell() {
        let p = workspace_root().join("target/it's here/x");
        let host = boot(Root::Host).path(&p).unwrap();
        assert_eq!(host, sh_quote(&p.display().to_string()));
        assert!(host.starts_with('\'') && host.contains(r"'\''"), "{host}");
    }

    #[test]
    fn a_debian_root_sees_the_workspace_at_its_mount_point() {
        let b = boot(Root::Debian(PathBuf::from("/nonexistent-root")));
        let p = workspace_root().join("target/debug/deps/kernel-0");
        assert_eq!(
            b.path(&p).unwrap(),
            "'/rseq-slice/workspace/target/debug/deps/kernel-0'"
        );
        assert!(b.path(Path::new("/usr/bin/env")).is_err());
        let mut b = b;
        b.rw_dirs.push(workspace_root().join("out"));
        let args = root_args(&b).unwrap();
        assert!(args.contains(&format!(
            "--rodir=/rseq-slice/workspace={}",
            workspace_root().display()
        )));
        assert!(args.contains(&format!(
            "--rwdir=/rseq-slice/workspace/out={}",
            workspace_root().join("out").display()
        )));
    }
}
