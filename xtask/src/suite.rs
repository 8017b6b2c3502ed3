//! `cargo xtask test`: the host tests, then the guest suite's passes.

use super::*;
use crate::build::build_lock_holder_preemption;
use crate::tokio_patched::Tokio;

/// One boot of the guest suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Pass {
    /// The host's root (glibc 2.36): every test binary with the crate's own
    /// area, then the kernel tests with glibc's legacy area.
    FeatureOn,
    /// The host's root, `rseq_slice_ext=off`: the kernel tests.
    Off,
    /// The Debian root (glibc 2.41): the library crates' test binaries
    /// with glibc's own optimized area, adopted.
    Glibc241,
    /// The platform's fidelity checks, short form, on the mode measurements
    /// trust (one vCPU, virtual time): a change of qemu, kernel or options
    /// that bends scheduling fails here.
    Fidelity,
    /// The platform's own checks at 2 vCPUs on the bounded-turn qemu
    /// (`--qemu bounded`, the default quantum; built into the cache the
    /// first time): the layout that multi-vCPU measurements use. The
    /// services beside hogs are left out: at 2 vCPUs their tails hold the
    /// kernel's rare stalls, which a one-second run sees or misses.
    FidelityBounded,
}

/// A test executable and whether it belongs to one of the library crates.
pub(crate) struct TestBin {
    pub(crate) exe: PathBuf,
    pub(crate) library: bool,
    /// Unit tests that only compute (lab's, the study binary's): the host
    /// run covers them, the guest leaves them out.
    pub(crate) host_only: bool,
}

impl TestBin {
    /// The test target's name (`kernel` for `kernel-0123abcd`).
    fn name(&self) -> &str {
        let stem = self.exe.file_name().and_then(|n| n.to_str()).unwrap_or("");
        stem.rsplit_once('-').map_or(stem, |(n, _)| n)
    }
    /// Holds tests that need the kernel's feature.
    fn kernel(&self) -> bool {
        matches!(
            self.name(),
            "kernel"
                | "registration"
                | "grants"
                | "libc_area"
                | "soak"
                | "locks_kernel"
                | "tracing"
                | "grant_events"
                | "null_page"
                | "runtime"
                | "seccomp"
                | "copies"
                | "spans"
        )
    }
}

/// One run of test binaries: a label, the environment, the binaries.
pub(crate) struct Run<'a> {
    label: &'a str,
    env: Vec<String>,
    bins: Vec<&'a TestBin>,
}

/// The guest script for `runs` on `boot`: every binary runs, the status
/// says whether all passed.
pub(crate) fn suite_script(boot: &guest::Boot, runs: &[Run<'_>]) -> Result<String> {
    let mut script = String::from("rc=0\n");
    for run in runs {
        for bin in &run.bins {
            let name = bin
                .exe
                .strip_prefix(workspace_root().join("target"))
                .unwrap_or(&bin.exe)
                .display()
                .to_string();
            let env: Vec<String> = run.env.iter().map(|e| guest::sh_quote(e)).collect();
            script += &format!(
                "echo {header}\nenv {env} {exe} --test-threads=1 || rc=1\n",
                header = guest::sh_quote(&format!("== guest [{}] {name}", run.label)),
                env = env.join(" "),
                exe = boot.path(&bin.exe)?,
            );
        }
    }
    Ok(script + "exit $rc\n")
}

/// The guest suite: the passes asked for, each one boot.
pub(crate) fn guest_suite(boot: &BootArgs, passes: &[Pass]) -> Result<bool> {
    // `tests/copies.rs` loads this shared library (its own copy of the core).
    run_checked(cargo().args(["build", "-p", "rseq-slice-second-copy"]))?;
    let mut bins =
        test_binaries(cargo().args(["test", "--workspace", "--all-features", "--no-run"]))?;
    if bins.is_empty() {
        return Err("cargo built no test binary: nothing to run in the guest".into());
    }
    bins.extend(test_binaries(unstable_cargo().args([
        "test",
        "-p",
        "rseq-slice-tokio",
        "--no-run",
    ]))?);
    // The core's kernel tests once more, as static glibc binaries: libc's
    // `__rseq_*` come from the link there, not from `dlsym`.
    let (mut static_cargo, triple) = crate::build::static_cargo();
    let static_bins = test_binaries(static_cargo.args([
        "test",
        "-p",
        "rseq-slice-core",
        "--test",
        "registration",
        "--test",
        "grants",
        "--test",
        "libc_area",
        "--no-run",
        "--target",
        &triple,
    ]))?;
    let static_kernel: Vec<&TestBin> = static_bins.iter().collect();
    let all: Vec<&TestBin> = bins.iter().filter(|b| !b.host_only).collect();
    // Binaries with tests that need the kernel: the only ones worth a run
    // where the feature is off (legacy glibc, switched off at boot).
    let kernel: Vec<&TestBin> = bins.iter().filter(|b| b.kernel()).collect();
    let libraries: Vec<&TestBin> = bins.iter().filter(|b| b.library).collect();
    // Every run demands the kernel (a test that would skip fails) and says
    // which area the tests must find.
    let env = |area: &str, more: &[&str]| {
        let mut v = vec![
            "RSEQ_SLICE_REQUIRE_KERNEL=1".to_string(),
            format!("RSEQ_SLICE_EXPECT_AREA={area}"),
        ];
        v.extend(more.iter().map(|s| s.to_string()));
        v
    };
    eprintln!(
        "xtask: guest suite: one test binary after another, each with --test-threads=1 \
         (tests compare the kernel's global rseq/stats counters, so they run one at a time)"
    );
    let mut ok = true;
    for pass in passes {
        let (b, runs, what) = match pass {
            Pass::FeatureOn => (
                boot.boot(2)?,
                vec![
                    Run {
                        label: "crate",
                        env: env("crate", &[NO_LIBC_RSEQ]),
                        bins: all.clone(),
                    },
                    Run {
                        label: "libc-legacy",
                        env: env("libc-legacy", &[]),
                        bins: kernel.clone(),
                    },
                    Run {
                        label: "static crate",
                        env: env("crate", &[NO_LIBC_RSEQ]),
                        bins: static_kernel.clone(),
                    },
                    Run {
                        label: "static libc-legacy",
                        env: env("libc-legacy", &[]),
                        bins: static_kernel.clone(),
                    },
                ],
                "the crate's own area, then glibc 2.36's legacy area, then both from a static \
                 binary",
            ),
            Pass::Off => {
                let mut off = boot.clone();
                off.append.push("rseq_slice_ext=off".into());
                (
                    off.boot(2)?,
                    vec![Run {
                        label: "crate",
                        env: env(
                            "crate",
                            &[NO_LIBC_RSEQ, "RSEQ_SLICE_EXPECT_REASON=disabled-at-boot"],
                        ),
                        bins: kernel.clone(),
                    }],
                    "rseq_slice_ext=off",
                )
            }
            Pass::Glibc241 => {
                let mut debian = boot.clone();
                debian.debian_root = true;
                (
                    debian.boot(2)?,
                    vec![Run {
                        label: "libc-v2",
                        env: env("libc-v2", &[]),
                        bins: libraries.clone(),
                    }],
                    "Debian trixie, glibc 2.41's own area adopted",
                )
            }
            Pass::Fidelity => {
                let mut b = boot.boot(1)?;
                b.cpus = 1;
                b.append.retain(|w| w != "rseq_debug=1");
                (
                    b,
                    Vec::new(),
                    "fidelity checks, short form, 1 vCPU in virtual time",
                )
            }
            Pass::FidelityBounded => {
                let mut b = boot.boot(2)?;
                b.cpus = 2;
                b.qemu = crate::qemu::Emulator::new(crate::qemu::Qemu::Bounded, None)?;
                b.append.retain(|w| w != "rseq_debug=1");
                (
                    b,
                    Vec::new(),
                    "fidelity checks, short form, 2 vCPUs with bounded turns in virtual time",
                )
            }
        };
        let script = match pass {
            Pass::Fidelity => crate::fidelity::short_script(&b, false)?,
            Pass::FidelityBounded => crate::fidelity::short_script(&b, true)?,
            _ => suite_script(&b, &runs)?,
        };
        let code = guest::run(&b, &script)?;
        eprintln!(
            "xtask: guest suite ({what}) {}",
            if code == 0 { "passed" } else { "FAILED" }
        );
        ok &= code == 0;
    }
    Ok(ok)
}

pub(crate) fn test(host: bool, in_guest: bool, boot: &BootArgs, passes: &[Pass]) -> Result<bool> {
    let mut ok = true;
    if host {
        eprintln!("xtask: host tests (tests that need the kernel feature skip, saying why)");
        ok &= cargo()
            .args(["test", "--workspace", "--all-features"])
            .status()?
            .success();
        ok &= preemption_smoke()?;
        ok &= check_aarch64()?;
        eprintln!("xtask: latency study smoke run on the host");
        let smoke = crate::study::study(boot, false, true, &[], None, Tokio::Stock)?;
        let dir = workspace_root().join("out/smoke");
        let files = [
            "results.csv",
            "runs.csv",
            "results.json",
            "latency.png",
            "p999_vs_load.png",
        ];
        let missing: Vec<_> = files
            .iter()
            .filter(|f| std::fs::metadata(dir.join(f)).map_or(true, |m| m.len() == 0))
            .collect();
        if !missing.is_empty() {
            eprintln!("xtask: study smoke run did not write {missing:?}");
        }
        ok &= smoke && missing.is_empty();
    }
    if in_guest {
        ok &= guest_suite(boot, passes)?;
    }
    Ok(ok)
}

/// The library crates type-checked for aarch64 (its `arch` file is only
/// compiled there): the rustup target is added if missing; where it cannot
/// be, the check says so and skips.
pub(crate) fn check_aarch64() -> Result<bool> {
    const TARGET: &str = "aarch64-unknown-linux-gnu";
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == TARGET)
        });
    if !installed
        && !Command::new("rustup")
            .args(["target", "add", TARGET])
            .status()
            .is_ok_and(|s| s.success())
    {
        eprintln!("SKIPPED aarch64 check: `rustup target add {TARGET}` failed");
        return Ok(true);
    }
    eprintln!("xtask: type-checking the library crates for {TARGET}");
    Ok(cargo()
        .args(["check", "--all-features", "--target", TARGET])
        .args(["-p", "rseq-slice-core", "-p", "rseq-slice-tokio"])
        .status()?
        .success())
}

/// A short run of the `lock_holder_preemption` benchmark on the host
/// (fallback there): a fraction of a second a cell, outputs to a temporary
/// directory.
pub(crate) fn preemption_smoke() -> Result<bool> {
    eprintln!("xtask: smoke run of the lock-holder-preemption benchmark (host)");
    let exe = build_lock_holder_preemption()?;
    let tmp = tempfile::Builder::new()
        .prefix("rseq-slice-preemption-smoke-")
        .tempdir()?;
    let dir = tmp.path().join("out");
    let ok = Command::new(&exe)
        .args([
            "--threads=1,2",
            "--cell-ms=60",
            "--repeats=1",
            "--quiet",
            "--out",
        ])
        .arg(&dir)
        .status()?
        .success();
    let files = ["locks.csv", "locks.png"]
        .iter()
        .all(|f| std::fs::metadata(dir.join(f)).is_ok_and(|m| m.len() > 0));
    drop(tmp);
    if !files {
        eprintln!("xtask: the lock-holder-preemption smoke run wrote no CSV/PNG");
    }
    Ok(ok && files)
}
