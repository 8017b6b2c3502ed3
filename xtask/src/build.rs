//! Building what runs: cargo commands, and the artifacts they report.

use super::*;

pub(crate) fn build_lock_holder_preemption() -> Result<PathBuf> {
    build_benches_bin("lock_holder_preemption")
}

/// A release binary of `benches/` (`lock_holder_preemption`, `fidelity`),
/// built for the guest.
pub(crate) fn build_benches_bin(name: &str) -> Result<PathBuf> {
    one(artifacts(
        cargo().args([
            "build",
            "--release",
            "-p",
            "rseq-slice-benches",
            "--bin",
            name,
        ]),
        |a| a["target"]["name"] == name,
    )?)
}

pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

/// cargo building with `--cfg tokio_unstable` (its own target directory, so
/// the two builds do not evict each other).
pub(crate) fn unstable_cargo() -> Command {
    let mut c = cargo();
    c.env("RUSTFLAGS", "--cfg tokio_unstable").env(
        "CARGO_TARGET_DIR",
        workspace_root().join("target/tokio-unstable"),
    );
    c
}

/// cargo building static glibc executables (`-C target-feature=+crt-static`;
/// an explicit `--target`, so build scripts and proc macros stay dynamic)
/// in their own target directory. Returns the command and the target triple.
pub(crate) fn static_cargo() -> (Command, String) {
    let mut c = cargo();
    c.env("RUSTFLAGS", "-C target-feature=+crt-static").env(
        "CARGO_TARGET_DIR",
        workspace_root().join("target/crt-static"),
    );
    (c, format!("{}-unknown-linux-gnu", std::env::consts::ARCH))
}

/// The test executables `cmd` (`cargo test --no-run ...`) builds.
pub(crate) fn test_binaries(cmd: &mut Command) -> Result<Vec<TestBin>> {
    let libraries = ["rseq-slice-core", "rseq-slice-tokio", "rseq-slice-glommio"]
        .map(|c| workspace_root().join(c));
    let mut bins = Vec::new();
    // The unit tests of lab and the study's binary: statistics, parsing and
    // tables, the same on any kernel (and slow under emulation).
    let computation = ["lab", "study/src/bin/study"].map(|c| workspace_root().join(c));
    for (exe, a) in artifacts_json(cmd, |a| a["profile"]["test"].as_bool() == Some(true))? {
        let src = PathBuf::from(a["target"]["src_path"].as_str().unwrap_or(""));
        let unit = a["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().all(|k| k != "test"));
        bins.push(TestBin {
            exe,
            library: libraries.iter().any(|l| src.starts_with(l)),
            host_only: unit && computation.iter().any(|c| src.starts_with(c)),
        });
    }
    Ok(bins)
}

pub(crate) fn build_example(name: &str) -> Result<PathBuf> {
    one(artifacts(
        cargo().args(["build", "--release", "--example", name]),
        |a| a["target"]["name"] == name,
    )?)
}

pub(crate) fn build_bench(name: &str) -> Result<PathBuf> {
    one(artifacts(
        cargo().args(["bench", "--no-run", "--all-features", "--bench", name]),
        |a| a["target"]["name"] == name,
    )?)
}

pub(crate) fn one(v: Vec<PathBuf>) -> Result<PathBuf> {
    v.into_iter()
        .next()
        .ok_or_else(|| "cargo built no executable".into())
}

pub(crate) fn artifacts(
    cmd: &mut Command,
    keep: impl Fn(&serde_json::Value) -> bool,
) -> Result<Vec<PathBuf>> {
    Ok(artifacts_json(cmd, keep)?
        .into_iter()
        .map(|(exe, _)| exe)
        .collect())
}

/// The executables `cmd` builds that `keep` accepts, with cargo's message.
pub(crate) fn artifacts_json(
    cmd: &mut Command,
    keep: impl Fn(&serde_json::Value) -> bool,
) -> Result<Vec<(PathBuf, serde_json::Value)>> {
    let out = cmd
        .arg("--message-format=json")
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err("cargo build failed".into());
    }
    let mut exes = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] == "compiler-artifact"
            && keep(&v)
            && let Some(exe) = v["executable"].as_str()
        {
            exes.push((PathBuf::from(exe), v.clone()));
        }
    }
    Ok(exes)
}

/// Run a command, failing on a non-zero status.
pub(crate) fn run_checked(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}").into())
    }
}
