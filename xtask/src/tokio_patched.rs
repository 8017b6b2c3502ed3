//! tokio with hooks at its own lock holds (`cargo xtask study --tokio
//! lock-hooks`), for the study alone: the published crate at [`VERSION`]
//! from cargo's registry cache, [`PATCH`] applied, in the cache like the
//! kernel. What the patch does: its own header, and docs/tokio-upstream.md.
//!
//! The study's binaries are built against it in a copy of the workspace
//! (`target/tokio-lock-hooks/workspace`, the files git lists), because
//! cargo rewrites Cargo.lock while a `[patch]` is active: the repository's
//! own Cargo.lock, its other build directories and the published crates
//! never see it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::kernel::rseq_slice_cache;
use crate::qemu_bounded::fnv1a;
use crate::{Result, run_checked, workspace_root};

/// The tokio the patch is made against: the one the workspace's Cargo.lock
/// pins.
pub(crate) const VERSION: &str = "1.54.1";

/// The patch, kept in the repository.
const PATCH: &str = include_str!("../tokio/lock-hooks.patch");

/// The cfg the study's code behind the hooks needs, beside `tokio_unstable`.
const RUSTFLAGS: &str = "--cfg tokio_unstable --cfg rseq_slice_tokio_lock_hooks";

/// Which tokio the study's binaries are built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Tokio {
    /// The workspace's tokio, as published.
    Stock,
    /// tokio with [`PATCH`]: the service's `tokio-locks` variant.
    LockHooks,
}

/// The patched source's directory in the cache (a changed patch gets its own).
fn source_dir() -> PathBuf {
    let key = fnv1a(&[VERSION, PATCH]) & 0xffff_ffff_ffff;
    rseq_slice_cache().join(format!("tokio-{VERSION}-lock-hooks-{key:012x}"))
}

/// A file written last: a directory without it is incomplete.
const MARKER: &str = "RSEQ_SLICE_PATCHED";

/// The patched tokio source, made in the cache when missing.
pub(crate) fn source() -> Result<PathBuf> {
    let dir = source_dir();
    if dir.join(MARKER).is_file() {
        return Ok(dir);
    }
    let parent = dir.parent().ok_or("no cache directory")?;
    std::fs::create_dir_all(parent)?;
    let crate_file = archive()?;
    let work = tempfile::Builder::new()
        .prefix("tokio-unpack-")
        .tempdir_in(parent)?;
    let src = unpack(&crate_file, work.path())?;
    apply(&src)?;
    std::fs::write(
        src.join(MARKER),
        format!("{} + xtask/tokio/lock-hooks.patch\n", crate_file.display()),
    )?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::rename(&src, &dir)?;
    eprintln!(
        "xtask: tokio {VERSION} with lock hooks in {}",
        dir.display()
    );
    Ok(dir)
}

/// Unpack the `.crate` archive into `into`; returns the source's directory.
fn unpack(crate_file: &Path, into: &Path) -> Result<PathBuf> {
    run_checked(
        Command::new("tar")
            .arg("xzf")
            .arg(crate_file)
            .arg("-C")
            .arg(into),
    )?;
    Ok(into.join(format!("tokio-{VERSION}")))
}

/// Apply [`PATCH`] to the tokio source at `src`.
fn apply(src: &Path) -> Result<()> {
    let patch = src.join("lock-hooks.patch");
    std::fs::write(&patch, PATCH)?;
    run_checked(
        Command::new("patch")
            .args(["-p1", "--forward", "--batch", "--quiet", "-i"])
            .arg(&patch)
            .current_dir(src),
    )?;
    std::fs::remove_file(&patch)?;
    Ok(())
}

/// `tokio-VERSION.crate` in cargo's registry cache, fetched with the
/// workspace's other dependencies (`cargo fetch`) if it is not there.
fn archive() -> Result<PathBuf> {
    if let Some(a) = cached_archive() {
        return Ok(a);
    }
    eprintln!("xtask: no tokio-{VERSION}.crate in cargo's cache: cargo fetch");
    run_checked(crate::cargo().arg("fetch"))?;
    cached_archive().ok_or_else(|| {
        format!(
            "cargo fetch left no tokio-{VERSION}.crate in cargo's cache: does Cargo.lock \
             still pin tokio {VERSION}? (a newer one needs the patch remade against it, \
             and VERSION in xtask/src/tokio_patched.rs)"
        )
        .into()
    })
}

/// `$CARGO_HOME/registry/cache/*/tokio-VERSION.crate`, if there is one.
pub(crate) fn cached_archive() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    std::fs::read_dir(home.join("registry/cache"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(format!("tokio-{VERSION}.crate")))
        .find(|p| p.is_file())
}

/// The workspace's files (tracked, and untracked ones git does not ignore)
/// copied to `dst`, each written only where it differs, so cargo rebuilds
/// only what changed.
fn copy_workspace(dst: &Path) -> Result<()> {
    let root = workspace_root();
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output()?;
    if !out.status.success() {
        return Err(
            "git ls-files failed: the tokio-patched build copies the files git lists".into(),
        );
    }
    for rel in out.stdout.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel)?);
        let Ok(bytes) = std::fs::read(root.join(rel)) else {
            continue; // listed but deleted in the working tree
        };
        let to = dst.join(rel);
        if std::fs::read(&to).ok().as_deref() != Some(&bytes[..]) {
            if let Some(d) = to.parent() {
                std::fs::create_dir_all(d)?;
            }
            std::fs::write(&to, &bytes)?;
        }
    }
    Ok(())
}

/// cargo building in a copy of the workspace against the patched tokio
/// (`--cfg tokio_unstable --cfg rseq_slice_tokio_lock_hooks`), into
/// `target/tokio-lock-hooks/target`.
pub(crate) fn cargo() -> Result<Command> {
    let src = source()?;
    let base = workspace_root().join("target/tokio-lock-hooks");
    let ws = base.join("workspace");
    copy_workspace(&ws)?;
    // A JSON string is a TOML basic string.
    let path = serde_json::to_string(&src.to_str().ok_or("the cache path is not UTF-8")?)?;
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(&ws)
        .env("RUSTFLAGS", RUSTFLAGS)
        .env("CARGO_TARGET_DIR", base.join("target"))
        .arg("--config")
        .arg(format!("patch.crates-io.tokio.path={path}"));
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_pins_the_patched_version() {
        let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).unwrap();
        let pinned = lock
            .split("[[package]]")
            .find(|p| p.contains("\nname = \"tokio\"\n"))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
            .unwrap();
        assert_eq!(pinned, format!("\"{VERSION}\""));
    }

    #[test]
    fn the_patch_applies_to_the_registrys_tokio() {
        let Some(crate_file) = cached_archive() else {
            println!(
                "SKIPPED the_patch_applies_to_the_registrys_tokio: no tokio-{VERSION}.crate in cargo's registry cache"
            );
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let src = unpack(&crate_file, dir.path()).unwrap();
        apply(&src).unwrap();
        let hooks = std::fs::read_to_string(src.join("src/runtime/lock_hooks.rs")).unwrap();
        assert!(hooks.contains("pub fn set_lock_hooks(acquire: fn(), release: fn()) -> bool"));
        let files: Vec<&str> = PATCH
            .lines()
            .filter_map(|l| l.strip_prefix("+++ b/"))
            .collect();
        assert_eq!(
            files,
            [
                "src/runtime/lock_hooks.rs",
                "src/runtime/mod.rs",
                "src/runtime/scheduler/inject.rs",
                "src/runtime/scheduler/multi_thread/queue.rs",
                "src/runtime/scheduler/multi_thread/worker.rs",
                "src/runtime/time/mod.rs",
            ]
        );
    }

    #[test]
    fn a_changed_patch_gets_its_own_directory() {
        let name = source_dir()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let key = fnv1a(&[VERSION, PATCH]) & 0xffff_ffff_ffff;
        assert_eq!(name, format!("tokio-{VERSION}-lock-hooks-{key:012x}"));
    }
}
