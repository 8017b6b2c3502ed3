//! `cargo xtask packages`: the three crates as crates.io would hold them.
//! `cargo package` makes the `.crate`s, each is unpacked under
//! `$TMPDIR/rseq-slice-packages`, and `cargo test --all-features` runs inside it, as a
//! distribution packager would run it (the adapters find core's unpacked
//! package through a `[patch]`, as they would find it published).

use std::process::Command;

use crate::build::run_checked;
use crate::{Result, workspace_root};

const CRATES: [&str; 3] = ["rseq-slice-core", "rseq-slice-tokio", "rseq-slice-glommio"];

/// Package, unpack and test each crate; true when every test run passed.
pub(crate) fn check() -> Result<bool> {
    let root = workspace_root();
    let mut package = Command::new(env!("CARGO"));
    package
        .current_dir(root)
        .args(["package", "--no-verify", "--allow-dirty"]);
    for c in CRATES {
        package.args(["-p", c]);
    }
    run_checked(&mut package)?;
    // Outside the workspace, or cargo takes them for its members.
    let dir = std::env::temp_dir().join("rseq-slice-packages");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut unpacked = Vec::new();
    for c in CRATES {
        let name = packaged(c)?;
        let file = root.join("target/package").join(format!("{name}.crate"));
        run_checked(
            Command::new("tar")
                .arg("xzf")
                .arg(&file)
                .arg("-C")
                .arg(&dir),
        )?;
        unpacked.push(dir.join(name));
    }
    let core = &unpacked[0];
    let patch = format!(
        "patch.crates-io.rseq-slice-core.path={:?}",
        core.display().to_string()
    );
    let mut ok = true;
    for pkg in &unpacked {
        eprintln!("xtask: cargo test inside the unpacked {}", pkg.display());
        let status = Command::new(env!("CARGO"))
            .current_dir(pkg)
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .args(["test", "--all-features", "--config", &patch])
            .status()?;
        ok &= status.success();
    }
    Ok(ok)
}

/// `<crate>-<version>` of the newest `.crate` cargo packaged for `c`.
fn packaged(c: &str) -> Result<String> {
    let dir = workspace_root().join("target/package");
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".crate").map(str::to_string))
        .filter(|n| {
            n.strip_prefix(c)
                .and_then(|v| v.strip_prefix('-'))
                .is_some_and(|v| v.starts_with(|ch: char| ch.is_ascii_digit()))
        })
        .collect();
    names.sort();
    names
        .pop()
        .ok_or_else(|| format!("cargo package left no {c} .crate in {}", dir.display()).into())
}
