//! The host tools a guest needs: qemu (Debian) and virtme-ng (PyPI),
//! installed when missing.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::{Result, run_checked};

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
        // qemu-utils at qemu's own version: a newer one (Debian 12 machines
        // carry backports' 10.0) breaks 7.2's qemu-system-common, and
        // leaving it out would remove the machine's qemu-img.
        let utils = match apt_candidate("qemu-system-x86") {
            Some(v) => format!("qemu-utils={v}"),
            None => "qemu-utils".to_string(),
        };
        run_checked(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "--allow-downgrades",
                    "qemu-system-x86",
                    &utils,
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

/// The version apt would install of `package`.
fn apt_candidate(package: &str) -> Option<String> {
    let out = Command::new("apt-cache")
        .args(["policy", package])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate:"))
        .map(|v| v.trim().to_string())
        .filter(|v| v != "(none)")
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
pub(crate) fn vng() -> Option<PathBuf> {
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
