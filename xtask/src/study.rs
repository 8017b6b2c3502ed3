//! `cargo xtask study`: natively where the kernel has the feature, else in
//! the guest.

use super::*;

/// Build the study's binaries (release, `--cfg tokio_unstable` for the
/// scheduler sections) and return their directory.
pub(crate) fn build_study(release: bool) -> Result<PathBuf> {
    let mut c = unstable_cargo();
    c.args(["build", "-p", "rseq-slice-examples", "--bins"]);
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

pub(crate) fn study(boot: &BootArgs, full: bool, smoke: bool, extra: &[String]) -> Result<bool> {
    let bins = build_study(!smoke)?;
    let exe = bins.join("study");
    let mut flags: Vec<String> = Vec::new();
    if full {
        flags.push("--full".into());
    }
    if smoke {
        flags.extend(["--smoke".into(), "--out".into(), "out/smoke".into()]);
    }
    flags.extend(extra.iter().cloned());
    let native = rseq_slice_core::kernel_support();
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
    let mut b = boot.boot(2)?;
    // Measure without the debug checks (they add work to every kernel exit).
    b.append.retain(|w| w != "rseq_debug=1");
    let out = workspace_root().join("out");
    std::fs::create_dir_all(&out)?;
    b.rw_dirs.push(out);
    let conditions = "emulated guest (qemu TCG)".to_string();
    eprintln!(
        "xtask: this kernel lacks the slice extension ({}): the study runs in the guest ({conditions})",
        native.err().map(|e| e.to_string()).unwrap_or_default()
    );
    let quoted: Vec<String> = flags.iter().map(|f| guest::sh_quote(f)).collect();
    let script = format!(
        "env {NO_LIBC_RSEQ} {exe} --conditions {cond} {flags}
",
        exe = b.path(&exe)?,
        cond = guest::sh_quote(&conditions),
        flags = quoted.join(" "),
    );
    let code = guest::run(&b, &script)?;
    eprintln!(
        "xtask: study results in {}",
        workspace_root().join("out/study").display()
    );
    Ok(code == 0)
}
