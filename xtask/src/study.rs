//! `cargo xtask study`: natively where the kernel has the feature, else in
//! the guest.

use super::*;
use crate::tokio_patched::{self, Tokio};

/// Build the study's binaries (release, `--cfg tokio_unstable` for the
/// scheduler sections; against `tokio`) and return their directory.
pub(crate) fn build_study(tokio: Tokio, release: bool) -> Result<PathBuf> {
    let mut c = match tokio {
        Tokio::Stock => unstable_cargo(),
        Tokio::LockHooks => tokio_patched::cargo()?,
    };
    c.args(["build", "-p", "rseq-slice-study", "--bins"]);
    if release {
        c.arg("--release");
    }
    let exes = artifacts(&mut c, |a| a["target"]["name"] == "study")?;
    let study = one(exes)?;
    Ok(study
        .parent()
        .ok_or("no directory for study")?
        .to_path_buf())
}

/// The value of `--out` in `flags` (default `out/study`), and the flags
/// without it.
fn split_out(flags: &[String]) -> (PathBuf, Vec<String>) {
    let mut out = PathBuf::from("out/study");
    let mut rest = Vec::new();
    let mut it = flags.iter();
    while let Some(f) = it.next() {
        if f == "--out" {
            if let Some(v) = it.next() {
                out = PathBuf::from(v);
            }
        } else if let Some(v) = f.strip_prefix("--out=") {
            out = PathBuf::from(v);
        } else {
            rest.push(f.clone());
        }
    }
    (out, rest)
}

/// `boot-K/runs.jsonl` of every boot, merged: each line once (by its key;
/// the calibrations every boot was given appear in each).
fn merge(dirs: &[PathBuf]) -> Result<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = String::new();
    for d in dirs {
        let text = std::fs::read_to_string(d.join("runs.jsonl")).unwrap_or_default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            // A line that is not a record is kept: the study reports it.
            let key = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .map(|v| format!("{}|{}", v["key"], v["finished"]))
                .unwrap_or_else(|| line.to_string());
            if seen.insert(key) {
                out += line;
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// The calibration lines of every boot's runs.jsonl.
fn calibrations(dirs: &[PathBuf]) -> Vec<String> {
    dirs.iter()
        .flat_map(|d| {
            std::fs::read_to_string(d.join("runs.jsonl"))
                .unwrap_or_default()
                .lines()
                .filter(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .is_ok_and(|v| v["kind"] == "calibration")
                })
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Run `script(k)` in `boots` guests side by side (a virtual-time guest
/// runs on one host thread; real-time ones one at a time): each boot's
/// exit status.
fn side_by_side(
    b: &Boot,
    boots: u32,
    parallel: usize,
    script: &dyn Fn(u32) -> Result<String>,
) -> Result<Vec<i32>> {
    let ids: Vec<u32> = (1..=boots).collect();
    let mut codes = Vec::new();
    for chunk in ids.chunks(parallel.max(1)) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|&k| {
                let (b, s) = (b.clone(), script(k)?);
                Ok(std::thread::spawn(move || {
                    guest::run(&b, &s).map_err(|e| e.to_string())
                }))
            })
            .collect::<Result<_>>()?;
        for h in handles {
            codes.push(h.join().map_err(|_| "a boot's thread panicked")??);
        }
    }
    Ok(codes)
}

/// `cargo xtask study`: natively when this kernel has the feature (or for
/// `--smoke`), else in `boots` guests side by side, each with one vCPU
/// more than the service gets (the client's alone). Every boot calibrates
/// first; then every boot is given all calibrations (so all boots offer
/// the same rates) and runs its share of the matrix; the boots'
/// runs.jsonl are merged into `--out`'s and the tables made from it.
pub(crate) fn study(
    boot: &BootArgs,
    full: bool,
    smoke: bool,
    extra: &[String],
    boots: Option<u32>,
    tokio: Tokio,
) -> Result<bool> {
    let bins = build_study(tokio, !smoke)?;
    let exe = bins.join("study");
    let mut flags: Vec<String> = Vec::new();
    if full {
        flags.push("--full".into());
    }
    if smoke {
        flags.extend(["--smoke".into(), "--out".into(), "out/smoke".into()]);
    }
    flags.extend(extra.iter().cloned());
    let native = rseq_slice_core::diagnostics::kernel_support();
    if smoke || native.is_ok() {
        let conditions = match &native {
            Ok(()) => "native, the host kernel has the feature".to_string(),
            Err(_) => "native smoke run on the host (fallback)".to_string(),
        };
        eprintln!("xtask: study runs natively: {conditions}");
        let ok = Command::new(&exe)
            .current_dir(workspace_root())
            .env("GLIBC_TUNABLES", "glibc.pthread.rseq=0")
            .arg("--conditions")
            .arg(&conditions)
            .args(&flags)
            .status()?
            .success();
        return Ok(ok);
    }
    // One vCPU for the service unless --cpus, and one for the client.
    let service_cpus = boot.cpus.unwrap_or(1);
    let mut b = boot.boot(service_cpus)?;
    b.cpus = service_cpus + 1;
    b.client_cpu = true;
    // Measure without the debug checks (they add work to every kernel exit).
    b.append.retain(|w| w != "rseq_debug=1");
    let root = workspace_root();
    let (out, flags) = split_out(&flags);
    let out = if out.is_absolute() {
        out
    } else {
        root.join(out)
    };
    std::fs::create_dir_all(&out)?;
    b.rw_dirs.push(out.clone());
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    let boots = boots.unwrap_or(cores.clamp(2, 8));
    let parallel = if b.clock == guest::Clock::Real {
        1
    } else {
        cores as usize
    };
    let dirs: Vec<PathBuf> = (1..=boots).map(|k| out.join(format!("boot-{k}"))).collect();
    let resume = flags.iter().any(|f| f == "--resume");
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    let conditions = "emulated guest (qemu TCG)".to_string();
    eprintln!(
        "xtask: this kernel lacks the slice extension ({}): the study runs in {boots} guests ({conditions}), {service_cpus} vCPU for the service and 1 for the client, {parallel} at a time; results in {}",
        native.err().map(|e| e.to_string()).unwrap_or_default(),
        out.display()
    );
    let quoted: Vec<String> = flags.iter().map(|f| guest::sh_quote(f)).collect();
    let exe_g = b.path(&exe)?;
    let line = |k: u32, phase: &str| -> Result<String> {
        Ok(format!(
            "env {NO_LIBC_RSEQ} {exe_g} --conditions {cond} --client-cpu --boot {k} --out {dir} {phase} {flags}\n",
            cond = guest::sh_quote(&conditions),
            dir = b.path(&dirs[k as usize - 1])?,
            flags = quoted.join(" "),
        ))
    };
    // 1. Every boot calibrates (its share of the calibrations; with
    // --resume, among the flags, those it lacks).
    let codes = side_by_side(&b, boots, parallel, &|k| line(k, "--calibrate-only"))?;
    let mut ok = codes.iter().all(|&c| c == 0);
    // 2. Every boot is given every calibration, then runs the matrix.
    let all = calibrations(&dirs);
    for d in &dirs {
        let path = d.join("runs.jsonl");
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        for l in &all {
            if !text.lines().any(|x| x == l) {
                text += l;
                text.push('\n');
            }
        }
        std::fs::write(&path, text)?;
    }
    let codes = side_by_side(&b, boots, parallel, &|k| {
        line(k, if resume { "" } else { "--resume" })
    })?;
    ok &= codes.iter().all(|&c| c == 0);
    // 3. One runs.jsonl, and the tables from it (on the host).
    std::fs::write(out.join("runs.jsonl"), merge(&dirs)?)?;
    ok &= Command::new(&exe)
        .arg("--replot")
        .arg("--out")
        .arg(&out)
        .args(
            flags
                .windows(2)
                .filter(|w| w[0] == "--slo-us")
                .flat_map(|w| w.iter().cloned()),
        )
        .status()?
        .success();
    eprintln!("xtask: study results in {}", out.display());
    Ok(ok)
}
