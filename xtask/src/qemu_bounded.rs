//! qemu 7.2 with bounded vCPU turns (`--qemu bounded`), built by the xtask
//! into the cache like the kernel: Debian 12's source package at a pinned
//! version, [`PATCH`] applied, `x86_64-softmmu` only, about 10 minutes with
//! `ninja -j2` on two cores. What the patch does: its own header, and
//! docs/guest.md.
//!
//! The build is cached under `rseq-slice/qemu-bounded/<key>`, the key made
//! of the Debian version and a hash of the patch and the configure options:
//! a changed patch builds afresh beside the old one. Firmware (SeaBIOS, the
//! option ROMs) comes from the host's qemu packages, which the guest tools
//! install ([`crate::tools::ensure_tools`]): the build searches Debian's
//! directories for it, as Debian's own qemu does.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::kernel::rseq_slice_cache;
use crate::tools::{ensure_tools, must_be_root};
use crate::{Result, run_checked};

/// The Debian source package and its exact version (bookworm's qemu at the
/// time of writing; the host's `qemu-system-x86` is a binNMU of it). apt
/// checks the files against the archive's signed index; the unpacked
/// changelog must name this version too.
pub(crate) const DEBIAN_VERSION: &str = "1:7.2+dfsg-7+deb12u18";

/// The patch, kept in the repository.
const PATCH: &str = include_str!("../qemu/bounded-turns.patch");

/// Where the pinned version may be: bookworm and its updates.
const SOURCES: &str = "\
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
";

/// What the build needs (Debian 12), far fewer than `apt-get build-dep
/// qemu`: only what `x86_64-softmmu` with TCG and 9p needs.
const BUILD_DEPENDS: &[&str] = &[
    "build-essential",
    "dpkg-dev",
    "patch",
    "ninja-build",
    "meson",
    "pkg-config",
    "libglib2.0-dev",
    "libpixman-1-dev",
    "zlib1g-dev",
    "libfdt-dev",
    // virtio-9p: vng shares the host's root over 9p (no virtiofsd here).
    "libcap-ng-dev",
];

/// `configure` options: every optional feature off but TCG and 9p (vng's
/// root), firmware from Debian's packages.
const CONFIGURE: &[&str] = &[
    "--target-list=x86_64-softmmu",
    "--meson=/usr/bin/meson",
    "--without-default-features",
    "--enable-tcg",
    "--enable-virtfs",
    "--enable-attr",
    "--enable-cap-ng",
    "--enable-fdt=system",
    "--disable-docs",
    "--disable-install-blobs",
    "--firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu",
];

/// The cache's directory for this version, patch and configuration.
fn install_dir() -> PathBuf {
    let key = format!(
        "{}-{:012x}",
        DEBIAN_VERSION.trim_start_matches("1:"),
        fnv1a(&[DEBIAN_VERSION, PATCH, &CONFIGURE.join(" ")]) & 0xffff_ffff_ffff
    );
    rseq_slice_cache().join("qemu-bounded").join(key)
}

/// A file the build writes last: an install without it is incomplete.
const MARKER: &str = "BUILT";

/// The patched `qemu-system-x86_64`, built into the cache when missing.
pub(crate) fn binary() -> Result<PathBuf> {
    // Boots started side by side ask at once: one builds, the others wait
    // (in this process; other processes wait on the lock file).
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    let dir = install_dir();
    let bin = dir.join("bin/qemu-system-x86_64");
    if dir.join(MARKER).is_file() && bin.is_file() {
        return Ok(bin);
    }
    let parent = dir.parent().ok_or("no cache directory")?;
    std::fs::create_dir_all(parent)?;
    let lock = std::fs::File::create(parent.join("build.lock"))?;
    if lock.try_lock().is_err() {
        eprintln!("xtask: waiting for another xtask building the bounded-turn qemu");
        lock.lock()?;
    }
    if !(dir.join(MARKER).is_file() && bin.is_file()) {
        build(&dir)?;
    }
    Ok(bin)
}

/// Download, patch, configure, build and install into `dir`.
fn build(dir: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    let parent = dir.parent().ok_or("no cache directory")?;
    let work = parent.join("work");
    eprintln!(
        "xtask: no bounded-turn qemu at {}: building it from Debian's qemu {DEBIAN_VERSION} \
         source with xtask/qemu/bounded-turns.patch (x86_64-softmmu, ninja -j2: about 10 minutes)",
        dir.display()
    );
    must_be_root(
        "install qemu's build dependencies and fetch its source",
        "run it as root, or use --qemu host",
    )?;
    // The host's qemu brings the firmware the build searches for.
    ensure_tools()?;
    // Only what is missing: apt-get would also upgrade what is installed.
    let missing: Vec<&str> = BUILD_DEPENDS
        .iter()
        .copied()
        .filter(|p| !installed(p))
        .collect();
    if !missing.is_empty() {
        eprintln!("xtask: installing {} (apt-get)", missing.join(" "));
        run_checked(
            Command::new("apt-get")
                .args(["-o", "DPkg::Lock::Timeout=600"])
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    // A private apt state with deb-src entries: the system's sources stay
    // as they are.
    let apt = work.join("apt");
    std::fs::create_dir_all(apt.join("lists/partial"))?;
    std::fs::write(apt.join("sources.list"), SOURCES)?;
    let opts = [
        format!(
            "-o=Dir::Etc::sourcelist={}",
            apt.join("sources.list").display()
        ),
        "-o=Dir::Etc::sourceparts=-".to_string(),
        format!("-o=Dir::State::Lists={}", apt.join("lists").display()),
        "-o=Dir::Cache::pkgcache=".to_string(),
        "-o=Dir::Cache::srcpkgcache=".to_string(),
        // The cache is root's: apt's `_apt` user could not write there.
        "-o=APT::Sandbox::User=root".to_string(),
    ];
    run_checked(Command::new("apt-get").args(&opts).args(["update", "-qq"]))?;
    let fetched = Command::new("apt-get")
        .args(&opts)
        .args(["source", "-qq", &format!("qemu={DEBIAN_VERSION}")])
        .current_dir(&work)
        .status()?;
    if !fetched.success() {
        return Err(format!(
            "apt-get source qemu={DEBIAN_VERSION} failed: is that version still in bookworm? \
             (a newer point release replaces it: update DEBIAN_VERSION in xtask/src/qemu_bounded.rs \
             and check the patch still applies)"
        )
        .into());
    }
    let src = std::fs::read_dir(&work)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("qemu-"))
        })
        .ok_or("apt-get source left no qemu-* directory")?;
    let version = Command::new("dpkg-parsechangelog")
        .args(["-S", "Version"])
        .current_dir(&src)
        .output()?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    if version != DEBIAN_VERSION {
        return Err(format!(
            "the downloaded qemu source is {version:?}, not the pinned {DEBIAN_VERSION}"
        )
        .into());
    }
    let patch = work.join("bounded-turns.patch");
    std::fs::write(&patch, PATCH)?;
    run_checked(
        Command::new("patch")
            .args(["-p1", "--forward", "--batch", "-i"])
            .arg(&patch)
            .current_dir(&src),
    )?;
    let build = work.join("build");
    std::fs::create_dir_all(&build)?;
    // Debian's python and meson, whatever PATH says (pyenv's python cannot
    // run Debian's meson).
    let path = "/usr/sbin:/usr/bin:/sbin:/bin";
    run_checked(
        Command::new(src.join("configure"))
            .arg(format!("--prefix={}", dir.display()))
            .args(CONFIGURE)
            .env("PATH", path)
            .current_dir(&build),
    )?;
    // The emulator alone (the default target also builds qemu's tests).
    run_checked(
        Command::new("ninja")
            .args(["-j2", "qemu-system-x86_64"])
            .env("PATH", path)
            .current_dir(&build),
    )?;
    std::fs::create_dir_all(dir.join("bin"))?;
    run_checked(
        Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(dir.join("bin/qemu-system-x86_64"))
            .arg(build.join("qemu-system-x86_64")),
    )?;
    let bin = dir.join("bin/qemu-system-x86_64");
    self_test(&bin)?;
    std::fs::write(
        dir.join(MARKER),
        format!(
            "qemu {DEBIAN_VERSION} (Debian source) + xtask/qemu/bounded-turns.patch\n\
             configure {}\nbuilt in {:.0} s\n",
            CONFIGURE.join(" "),
            started.elapsed().as_secs_f64()
        ),
    )?;
    std::fs::remove_dir_all(&work)?;
    eprintln!(
        "xtask: built {} in {:.0} s",
        bin.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Whether the Debian package `name` is installed.
fn installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout) == "install ok installed")
}

/// The patch is in and the firmware is found: a two-vCPU machine with a
/// quantum announces it once SeaBIOS runs, and a quantum under 512 is
/// refused.
fn self_test(bin: &Path) -> Result<()> {
    let machine = [
        "-machine",
        "q35",
        "-smp",
        "2",
        "-m",
        "128M",
        "-icount",
        "shift=0,sleep=off",
        "-display",
        "none",
        "-nodefaults",
        "-no-reboot",
    ];
    // The machine for five seconds at most, with quantum `q`.
    let run = |q: &str| {
        Command::new("timeout")
            .arg("5")
            .arg(bin)
            .args(machine)
            .env(crate::qemu::QUANTUM_ENV, q)
            .output()
    };
    let out = run("5000")?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !err.contains("capped at 5000 instructions") {
        return Err(format!(
            "{}: the patched qemu did not announce its quantum ({}): {err}",
            bin.display(),
            out.status
        )
        .into());
    }
    let out = run("100")?;
    if out.status.code() != Some(1) {
        return Err(format!(
            "{}: a quantum of 100 was not refused ({})",
            bin.display(),
            out.status
        )
        .into());
    }
    Ok(())
}

/// FNV-1a, 64 bits, over the parts (each followed by a zero byte): a cache
/// key, not a checksum anyone relies on for integrity.
pub(crate) fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.as_bytes().iter().chain(&[0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_patch_touches_only_the_icount_loop() {
        let files: Vec<&str> = super::PATCH
            .lines()
            .filter_map(|l| l.strip_prefix("+++ b/"))
            .collect();
        assert_eq!(
            files,
            [
                "accel/tcg/cpu-exec.c",
                "accel/tcg/tcg-accel-ops-icount.c",
                "accel/tcg/tcg-accel-ops-icount.h"
            ]
        );
    }

    #[test]
    fn the_cache_key_follows_the_patch() {
        assert_ne!(super::fnv1a(&["a", "b"]), super::fnv1a(&["ab", ""]));
        let dir = super::install_dir();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("7.2+dfsg-7+deb12u18-"), "{name}");
    }
}
