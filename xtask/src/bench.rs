//! `cargo xtask probe`, `bench-guard` and `bench-tokio`.

use super::*;

pub(crate) fn probe(boot: &BootArgs) -> Result<bool> {
    let ok = cargo()
        .args(["run", "-q", "--example", "probe"])
        .status()?
        .success();
    let exe = build_example("probe")?;
    // Each run says which area it must find: the probe fails otherwise.
    let host = boot.boot(1)?;
    let script = format!(
        "rc=0\n\
         echo '== guest, glibc 2.36 default'; {exe} --expect libc-legacy || rc=1\n\
         echo '== guest, {NO_LIBC_RSEQ}'; env {NO_LIBC_RSEQ} {exe} --expect crate || rc=1\n\
         exit $rc\n",
        exe = host.path(&exe)?,
    );
    let ok = ok && guest::run(&host, &script)? == 0;
    let mut debian = boot.clone();
    debian.debian_root = true;
    let debian = debian.boot(1)?;
    let script = format!(
        "echo '== guest, Debian trixie, glibc 2.41 default'\n{exe} --expect libc-v2\n",
        exe = debian.path(&exe)?,
    );
    Ok(ok && guest::run(&debian, &script)? == 0)
}

/// Criterion benches run on the host, then in a 1-vCPU guest.
pub(crate) struct Bench {
    /// `(package, bench)` pairs.
    benches: &'static [(&'static str, &'static str)],
    /// Built with `--cfg tokio_unstable`.
    unstable: bool,
}

impl Bench {
    /// The bare guard, and the guard inside glommio tasks.
    pub(crate) const GUARD: Bench = Bench {
        benches: &[
            ("rseq-slice-core", "guard_overhead"),
            ("rseq-slice-glommio", "guard_overhead"),
        ],
        unstable: false,
    };
    /// The tokio adapter's policies against a plain runtime.
    pub(crate) const TOKIO: Bench = Bench {
        benches: &[("rseq-slice-tokio", "section_overhead")],
        unstable: true,
    };
}

pub(crate) fn bench(boot: &BootArgs, place: &Place, b: Bench) -> Result<bool> {
    let cargo = || {
        if b.unstable {
            unstable_cargo()
        } else {
            cargo()
        }
    };
    if !place.guest_only {
        eprintln!(
            "xtask: benches on the host ({})",
            match rseq_slice_core::diagnostics::kernel_support() {
                Ok(()) => "the kernel has the feature".to_string(),
                Err(why) => format!("fallback: {why}"),
            }
        );
    }
    let mut host = true;
    let guest_boot = boot.boot(1)?;
    // criterion writes under its target directory: a fresh one in the
    // guest's /tmp (the shared root is read-only).
    let mut script =
        String::from("CARGO_TARGET_DIR=\"$(mktemp -d)\"\nexport CARGO_TARGET_DIR\nrc=0\n");
    for (package, bench) in b.benches {
        if !place.guest_only {
            host &= cargo()
                .args(["bench", "-p", package, "--bench", bench])
                .status()?
                .success();
        }
        let exe = guest_boot.path(&one(artifacts(
            cargo().args(["bench", "-p", package, "--no-run", "--bench", bench]),
            |a| a["target"]["name"] == *bench,
        )?)?)?;
        script += &format!(
            "echo '== guest {package}, {NO_LIBC_RSEQ} (feature on)'; env {NO_LIBC_RSEQ} {exe} --bench || rc=1\n\
             echo '== guest {package}, glibc default (legacy area: fallback)'; {exe} --bench || rc=1\n"
        );
    }
    script += "exit $rc\n";
    if place.host_only {
        return Ok(host);
    }
    Ok(host && guest::run(&guest_boot, &script)? == 0)
}
