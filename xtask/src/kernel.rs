//! The guest kernel: find one with the slice extension, or build one from
//! Debian's source package into the cache (about 18 minutes on two cores).

use std::path::PathBuf;
use std::process::Command;

use crate::tools::{ensure_tools, must_be_root, vng};
use crate::{Result, run_checked, workspace_root};

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

/// What `make bzImage` needs beyond a C compiler.
const BUILD_DEPENDS: &[&str] = &[
    "build-essential",
    "flex",
    "bison",
    "bc",
    "libelf-dev",
    "libssl-dev",
    "cpio",
    "xz-utils",
];

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
    build()
}

/// Build a kernel into the cache, whatever else is found, and return its path.
pub(crate) fn build() -> Result<PathBuf> {
    build_kernel()?;
    Ok(cache_dir().join("bzImage"))
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
    // The kernel's build tools, from the machine's own suite.
    run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(BUILD_DEPENDS)
            .env("DEBIAN_FRONTEND", "noninteractive"),
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
