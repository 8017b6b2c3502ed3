//! Debian trixie root filesystems, built once into the cache
//! (`debootstrap --variant=minbase`, about a minute each), like the kernel:
//! - [`root`], for the guest: glibc 2.41, which registers an optimized (v2)
//!   rseq area itself, so the crate adopts it. The host has glibc 2.36
//!   (legacy registration), so this path never runs on the host's root.
//!   Binaries built on the host run there unchanged: glibc is forward
//!   compatible (2.36 symbols exist in 2.41).
//! - [`qemu_root`], for the host: trixie's qemu 10, run from there by
//!   `crate::qemu` (its round-robin scheduler splits each slice between the
//!   vCPUs; Debian 12's 7.2 gives it all to the first busy one).
//!
//! The guest mounts the workspace read-only at [`WORKSPACE`], a directory
//! made in the root when it is built: vng mounts shares only on directories
//! that exist in a `--root`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::kernel::rseq_slice_cache;
use crate::tools::{have, must_be_root};
use crate::{Result, run_checked};

/// The suite and mirror the root comes from.
const SUITE: &str = "trixie";
const MIRROR: &str = "http://deb.debian.org/debian";
/// One kind of root: its cache name, its packages on top of `minbase`, and a
/// file it must have.
struct Kind {
    name: &'static str,
    include: &'static str,
    must_have: &'static str,
}

/// The guest's root. Without udev the guest's exit status is lost (vng's
/// init finds its script ports through udev's links).
const GUEST: Kind = Kind {
    name: "trixie-root",
    include: "udev",
    must_have: "usr/lib/x86_64-linux-gnu/libc.so.6",
};

/// qemu 10 and its libraries, for the host.
const QEMU: Kind = Kind {
    name: "trixie-qemu",
    include: "qemu-system-x86",
    must_have: "usr/bin/qemu-system-x86_64",
};

/// Where the workspace appears in the guest.
pub(crate) const WORKSPACE: &str = "/rseq-slice/workspace";

/// A file the build writes last: a root without it is incomplete.
const MARKER: &str = "rseq-slice/ROOT";

/// The root: `$RSEQ_SLICE_DEBIAN_ROOT`, or the cache's `trixie-root`, built
/// there when missing.
pub(crate) fn root() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("RSEQ_SLICE_DEBIAN_ROOT") {
        let p = PathBuf::from(p);
        if !p.join("usr/lib").is_dir() {
            return Err(format!(
                "RSEQ_SLICE_DEBIAN_ROOT={} is not a root filesystem (no usr/lib)",
                p.display()
            )
            .into());
        }
        let mount = p.join(WORKSPACE.trim_start_matches('/'));
        if !mount.is_dir() {
            return Err(format!(
                "RSEQ_SLICE_DEBIAN_ROOT={}: the guest mounts the workspace on {WORKSPACE}, \
                 which that root lacks: create the directory {}",
                p.display(),
                mount.display()
            )
            .into());
        }
        return Ok(p);
    }
    cached(&GUEST)
}

/// The cache's `trixie-qemu` root, built there when missing.
pub(crate) fn qemu_root() -> Result<PathBuf> {
    cached(&QEMU)
}

fn cached(kind: &Kind) -> Result<PathBuf> {
    // Boots started side by side ask at once: one builds, the others wait.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    let dir = rseq_slice_cache().join(kind.name);
    if dir.join(MARKER).is_file() {
        return Ok(dir);
    }
    build(kind, &dir)?;
    Ok(dir)
}

fn build(kind: &Kind, dir: &Path) -> Result<()> {
    let Kind { name, include, .. } = kind;
    let parent = dir.parent().ok_or("the cache directory has no parent")?;
    let debootstrap = have("debootstrap");
    eprintln!(
        "xtask: no Debian {SUITE} root ({name}) at {}: building one{}: \
         `debootstrap --variant=minbase --include={include} {SUITE}` from {MIRROR} \
         (about a minute)",
        dir.display(),
        if debootstrap {
            ""
        } else {
            " after installing debootstrap (apt-get, Debian)"
        },
    );
    must_be_root(
        "build the Debian root",
        "run it as root, or build one yourself and point RSEQ_SLICE_DEBIAN_ROOT at it (see docs/guest.md)",
    )?;
    if !debootstrap {
        run_checked(Command::new("apt-get").arg("update").arg("-qq"))?;
        run_checked(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "debootstrap"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    std::fs::create_dir_all(parent)?;
    // Built under a fresh name beside the final one, renamed when complete.
    let work = tempfile::Builder::new()
        .prefix(&format!("{name}.partial-"))
        .tempdir_in(parent)?;
    let built = run_checked(
        Command::new("debootstrap")
            .args(["--variant=minbase", &format!("--include={include}"), SUITE])
            .arg(work.path())
            .arg(MIRROR),
    )
    .and_then(|()| finish(kind, work.path()));
    if let Err(e) = built {
        // debootstrap mounts /proc and /sys in the target while it works: a
        // tree with anything still mounted in it is left alone.
        let path = work.keep();
        let mounted = mounts_under(&path)?;
        if mounted.is_empty() {
            std::fs::remove_dir_all(&path)?;
        } else {
            eprintln!(
                "xtask: left {} in place: {mounted:?} still mounted there",
                path.display()
            );
        }
        return Err(e);
    }
    if dir.exists() {
        // An incomplete earlier build (no marker): replace it.
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::rename(work.keep(), dir)?;
    eprintln!("xtask: Debian {SUITE} root ready at {}", dir.display());
    Ok(())
}

/// Clean apt's cache, make the workspace's mount point, write the marker.
fn finish(kind: &Kind, root: &Path) -> Result<()> {
    run_checked(Command::new("chroot").arg(root).args(["apt-get", "clean"]))?;
    if !root.join(kind.must_have).is_file() {
        return Err(format!("debootstrap left no {}", kind.must_have).into());
    }
    std::fs::create_dir_all(root.join(WORKSPACE.trim_start_matches('/')))?;
    std::fs::write(
        root.join(MARKER),
        format!(
            "Debian {SUITE} (debootstrap --variant=minbase --include={}) for rseq-slice\n",
            kind.include
        ),
    )?;
    Ok(())
}

/// Mount points at or below `path` (from `/proc/self/mountinfo`).
fn mounts_under(path: &Path) -> Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|m| m.starts_with(path))
        .collect())
}
