//! The real-kernel guest: find or build a kernel with the slice extension,
//! install qemu and virtme-ng when missing, and run commands inside it.
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

use crate::{Result, debian_root, run_checked, workspace_root};

/// The Debian source package, suite and version the kernel is built from.
const SOURCE_PACKAGE: &str = "linux-source-7.2";
const KERNEL_CONFIG_ITEMS: &[&str] = &[
    "CONFIG_RSEQ_SLICE_EXTENSION=y",
    "CONFIG_EXPERT=y",
    "CONFIG_RSEQ_STATS=y",
    "CONFIG_DEBUG_FS=y",
    "CONFIG_HIGH_RES_TIMERS=y",
    "CONFIG_PREEMPT_LAZY=y",
    // cgroup v2's cpu.max (the study's --cpu-max); the shared kernel predates it.
    "CONFIG_CFS_BANDWIDTH=y",
];

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
    pub(crate) qemu: crate::qemu::Qemu,
    /// The study's layout: the last vCPU is the client's alone. Only the
    /// fidelity verdict reads it (the layout is checked apart).
    pub(crate) client_cpu: bool,
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

/// Find a kernel: `$RSEQ_SLICE_KERNEL`, `../shared/kernel/bzImage`, the
/// cache (`$XDG_CACHE_HOME` or `~/.cache`)/rseq-slice, or build one there.
pub(crate) fn kernel(build_if_missing: bool) -> Result<PathBuf> {
    if let Ok(p) = std::env::var("RSEQ_SLICE_KERNEL") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("RSEQ_SLICE_KERNEL={} is not a file", p.display()).into())
        };
    }
    let shared = workspace_root().join("../shared/kernel/bzImage");
    if shared.is_file() {
        return Ok(shared.canonicalize()?);
    }
    let cached = cache_dir().join("bzImage");
    if cached.is_file() {
        return Ok(cached);
    }
    if !build_if_missing {
        return Err("no guest kernel found; `cargo xtask kernel` builds one".into());
    }
    build_kernel()?;
    Ok(cached)
}

/// `$XDG_CACHE_HOME/rseq-slice` or `~/.cache/rseq-slice`: the kernel, the
/// Debian root, the guest lock.
pub(crate) fn rseq_slice_cache() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cache")
        });
    base.join("rseq-slice")
}

fn cache_dir() -> PathBuf {
    rseq_slice_cache().join("kernel-7.2")
}

/// Build a kernel from Debian's `linux-source-7.2` (sid) into the cache:
/// about 18 minutes with `make -j3` on two cores.
fn build_kernel() -> Result<()> {
    let dir = cache_dir();
    let work = dir.join("build");
    std::fs::create_dir_all(&work)?;
    ensure_tools()?;
    eprintln!(
        "xtask: no guest kernel found: building one in {} from Debian's {SOURCE_PACKAGE} (sid), about 18 minutes",
        work.display()
    );
    must_be_root(
        "download the kernel source",
        "run it as root, or point RSEQ_SLICE_KERNEL at a kernel built with the slice extension",
    )?;
    // A private apt state with a sid source: the system's sources stay as they are.
    let apt = work.join("apt");
    std::fs::create_dir_all(apt.join("lists/partial"))?;
    std::fs::write(
        apt.join("sid.list"),
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main\n",
    )?;
    let opts = [
        format!("-o=Dir::Etc::sourcelist={}", apt.join("sid.list").display()),
        "-o=Dir::Etc::sourceparts=-".to_string(),
        format!("-o=Dir::State::Lists={}", apt.join("lists").display()),
    ];
    run_checked(Command::new("apt-get").args(&opts).arg("update"))?;
    run_checked(
        Command::new("apt-get")
            .args(&opts)
            .args(["download", SOURCE_PACKAGE])
            .current_dir(&apt),
    )?;
    let deb = std::fs::read_dir(&apt)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or("apt-get download left no .deb")?;
    run_checked(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(work.join("pkg")),
    )?;
    let tarball = work.join(format!("pkg/usr/src/{SOURCE_PACKAGE}.tar.xz"));
    run_checked(
        Command::new("tar")
            .arg("-xf")
            .arg(&tarball)
            .arg("-C")
            .arg(&work),
    )?;
    let src = work.join(SOURCE_PACKAGE);
    let mut kconfig = Command::new(vng().ok_or("no vng")?);
    kconfig.arg("--kconfig").current_dir(&src);
    for item in KERNEL_CONFIG_ITEMS {
        kconfig.args(["--configitem", item]);
    }
    run_checked(&mut kconfig)?;
    run_checked(
        Command::new("scripts/config")
            .args(["-e", "EXPERT", "-e", "RSEQ_STATS"])
            .current_dir(&src),
    )?;
    run_checked(Command::new("make").arg("olddefconfig").current_dir(&src))?;
    run_checked(
        Command::new("make")
            .args(["-j3", "bzImage"])
            .current_dir(&src),
    )?;
    std::fs::copy(src.join("arch/x86/boot/bzImage"), dir.join("bzImage"))?;
    std::fs::copy(src.join(".config"), dir.join("config"))?;
    std::fs::remove_dir_all(&work)?;
    Ok(())
}

/// Whether `cmd` is on PATH.
pub(crate) fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Install qemu (Debian) and virtme-ng (PyPI) when missing. Boots started
/// side by side call it at once: one installs, the others wait and find
/// the tools there.
pub(crate) fn ensure_tools() -> Result<()> {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
    let qemu = have("qemu-system-x86_64");
    let vng_found = vng().is_some();
    if qemu && vng_found {
        return Ok(());
    }
    let mut missing = Vec::new();
    if !qemu {
        missing.push("qemu-system-x86 (apt-get, Debian)");
    }
    if !vng_found {
        missing.push("virtme-ng 1.42 (pip)");
    }
    eprintln!(
        "xtask: the guest needs {}: installing",
        missing.join(" and ")
    );
    must_be_root("install them", "run it as root, or install them yourself")?;
    if !qemu {
        run_checked(Command::new("apt-get").arg("update").arg("-qq"))?;
        run_checked(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "qemu-system-x86",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    if !vng_found {
        run_checked(Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "-q",
            "virtme-ng==1.42",
        ]))?;
    }
    vng().map(drop).ok_or_else(|| {
        "virtme-ng installed, but no `vng` on PATH or in Python's scripts directory".into()
    })
}

/// An error that says what needs root and what to do instead, unless we
/// are root.
pub(crate) fn must_be_root(what: &str, otherwise: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err(format!("to {what} the xtask must run as root: {otherwise}").into())
    }
}

/// `vng` on PATH, or in Python's scripts directory (pip under pyenv puts it
/// there before any shim exists).
fn vng() -> Option<PathBuf> {
    if have("vng") {
        return Some(PathBuf::from("vng"));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("vng");
    p.is_file().then_some(p)
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
        qemu = sh_quote(boot.qemu.describe()),
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
            qemu: crate::qemu::Qemu::Host,
            client_cpu: false,
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
