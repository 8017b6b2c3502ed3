//! `cargo xtask fidelity`: the platform's fidelity checks (the `fidelity`
//! binary of `benches/`) in one guest boot per vCPU count and repeat, then
//! each figure compared across the boots.

use super::*;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    boot: BootArgs,
    /// vCPU counts, one boot each per repeat (1-8).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4], value_parser = clap::value_parser!(u32).range(1..=8))]
    vcpus: Vec<u32>,
    /// Boots per vCPU count; their figures must agree (2-10).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(2..=10))]
    boots: u32,
    /// Seconds a measurement (0.2-60).
    #[arg(long, default_value_t = 2.0)]
    secs: f64,
    /// Only summarize the results already in out/fidelity for these
    /// options (no boot).
    #[arg(long)]
    summarize: bool,
    /// Boots side by side (virtual-time guests run on one host thread
    /// each; real-time ones always run one at a time).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8))]
    parallel: u32,
    /// Check the study's layout: the last vCPU runs the client alone, the
    /// service and the hogs the others (so `--vcpus 2` checks a one-vCPU
    /// service).
    #[arg(long)]
    client_cpu: bool,
}

/// How far two boots' figures of one check may differ (max / min).
const REPEAT_BOUND: f64 = 1.5;

/// The file slug of a boot's platform mode (`virtual-qemu10.0`, `-full`
/// under `preempt=full`, and `-client` for the study's layout).
fn mode_slug(b: &Boot) -> String {
    let clock = match b.clock {
        guest::Clock::Real => "real",
        guest::Clock::Virtual { .. } => "virtual",
    };
    let preempt = match b.preempt {
        guest::Preempt::Lazy => "",
        guest::Preempt::Full => "-full",
    };
    let layout = if b.client_cpu { "-client" } else { "" };
    format!("{clock}-{}{preempt}{layout}", b.qemu.slug())
}

/// What the last `cargo xtask fidelity` said of `b`'s platform mode and
/// vCPU count: `passed`, `FAILED`, or `not checked` (no results). Every
/// guest carries it (`RSEQ_SLICE_FIDELITY`), so every result does.
pub(crate) fn verdict(b: &Boot) -> String {
    let dir = workspace_root().join("out/fidelity");
    let prefix = format!("{}-cpus{}-boot", mode_slug(b), b.cpus);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return published(b);
    };
    let passed: Vec<bool> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map(|v| v["passed"].as_bool() == Some(true))
        .collect();
    match passed.len() {
        0 => published(b),
        n if passed.iter().all(|&p| p) => format!("passed ({n} boots)"),
        n => format!(
            "FAILED ({} of {n} boots)",
            passed.iter().filter(|&&p| !p).count()
        ),
    }
}

/// Without results of this machine's own: what the published table
/// (`docs/fidelity/<mode>.md`) says of `b`'s vCPU count.
fn published(b: &Boot) -> String {
    let name = format!("docs/fidelity/{}.md", mode_slug(b));
    let Ok(text) = std::fs::read_to_string(workspace_root().join(&name)) else {
        return "not checked".into();
    };
    match published_verdict(&text, b.cpus) {
        Some(true) => format!("passed ({name})"),
        Some(false) => format!("FAILED ({name})"),
        None => "not checked".into(),
    }
}

/// Whether the `## N vCPU` section of a published table passed every
/// check (`None`: no such section).
fn published_verdict(table: &str, cpus: u32) -> Option<bool> {
    let head = format!("{cpus} vCPU\n");
    let section = table.split("\n## ").find(|s| s.starts_with(&head))?;
    Some(
        !section
            .lines()
            .any(|l| l.starts_with('|') && l.contains("| FAIL")),
    )
}

/// The fidelity binary, built for the guest.
fn build_fidelity() -> Result<PathBuf> {
    crate::build::build_benches_bin("fidelity")
}

/// The guest script that runs the checks with `args`.
fn script(b: &Boot, exe: &Path, args: &str) -> Result<String> {
    Ok(format!("{} {args}\n", b.path(exe)?))
}

/// The guest suite's short form (`cargo xtask test --pass fidelity`); with
/// `platform`, only the platform's own checks (`--pass fidelity-bounded`).
pub(crate) fn short_script(b: &Boot, platform: bool) -> Result<String> {
    let mode = format!(
        "suite: {}, {}, {} vCPU",
        b.clock.describe(),
        b.qemu.describe(),
        b.cpus
    );
    script(
        b,
        &build_fidelity()?,
        &format!(
            "--short{} --mode {}",
            if platform { " --platform" } else { "" },
            guest::sh_quote(&mode)
        ),
    )
}

pub(crate) fn run(args: &Args) -> Result<bool> {
    if !(0.2..=60.0).contains(&args.secs) {
        return Err(format!("--secs must be within 0.2-60, not {}", args.secs).into());
    }
    let out = workspace_root().join("out/fidelity");
    std::fs::create_dir_all(&out)?;
    let mut probe = args.boot.boot(1)?;
    probe.client_cpu = args.client_cpu;
    if args.client_cpu && args.vcpus.contains(&1) {
        return Err("--client-cpu needs 2 or more vCPUs (one is the client's)".into());
    }
    let clock = mode_slug(&probe);
    let mut jobs = Vec::new();
    for &n in &args.vcpus {
        for boot in 1..=args.boots {
            jobs.push((n, boot));
        }
    }
    let parallel = if args.boot.real_time {
        1
    } else {
        args.parallel as usize
    };
    let mut verdicts = Vec::new();
    if args.summarize {
        for (n, boot) in jobs {
            let json = out.join(format!("{clock}-cpus{n}-boot{boot}.json"));
            if json.is_file() {
                verdicts.push((n, boot, json, 0));
            }
        }
        let summary = summarize(&clock, &verdicts)?;
        print!("{summary}");
        return Ok(!summary.contains("| FAIL"));
    }
    let exe = build_fidelity()?;
    for chunk in jobs.chunks(parallel) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|&(n, boot)| {
                let mut b = args.boot.boot(n)?;
                b.cpus = n;
                b.client_cpu = args.client_cpu;
                b.rw_dirs.push(out.clone());
                let json = out.join(format!("{clock}-cpus{n}-boot{boot}.json"));
                let mode = format!(
                    "{}, {}, {n} vCPU, boot {boot}",
                    b.clock.describe(),
                    b.qemu.describe()
                );
                let s = script(
                    &b,
                    &exe,
                    &format!(
                        "--secs {}{} --mode {} --json {}",
                        args.secs,
                        if args.client_cpu { " --client-cpu" } else { "" },
                        guest::sh_quote(&mode),
                        b.path(&json)?
                    ),
                )?;
                Ok(std::thread::spawn(move || {
                    let code = guest::run(&b, &s).map_err(|e| e.to_string());
                    (n, boot, json, code)
                }))
            })
            .collect::<Result<_>>()?;
        for h in handles {
            let (n, boot, json, code) = h.join().map_err(|_| "a boot's thread panicked")?;
            let code = code?;
            verdicts.push((n, boot, json, code));
        }
    }
    let summary = summarize(&clock, &verdicts)?;
    print!("{summary}");
    std::fs::write(out.join(format!("{clock}-summary.md")), &summary)?;
    Ok(verdicts.iter().all(|v| v.3 == 0) && !summary.contains("| FAIL"))
}

/// Each vCPU count's checks: their figure in each boot, the boots' spread.
fn summarize(clock: &str, runs: &[(u32, u32, PathBuf, i32)]) -> Result<String> {
    let mut s = format!("# Fidelity: {clock}\n\n");
    let mut counts: Vec<u32> = runs.iter().map(|r| r.0).collect();
    counts.dedup();
    for n in counts {
        let docs: Vec<serde_json::Value> = runs
            .iter()
            .filter(|r| r.0 == n)
            .map(|r| {
                let text = std::fs::read_to_string(&r.2).map_err(|e| {
                    format!("{}: {e} (did the guest run the checks?)", r.2.display())
                })?;
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", r.2.display()).into())
            })
            .collect::<Result<_>>()?;
        let Some(first) = docs.first() else { continue };
        s += &format!(
            "## {n} vCPU\n\nConditions: {}\n\n| check | known answer | {} | repeat (max/min) | verdict |\n|---|---|{}---|---|\n",
            first["conditions"],
            (1..=docs.len())
                .map(|b| format!("boot {b}"))
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(docs.len()),
        );
        let empty = Vec::new();
        let checks = first["checks"].as_array().unwrap_or(&empty);
        for (i, c) in checks.iter().enumerate() {
            let per_boot: Vec<&serde_json::Value> = docs.iter().map(|d| &d["checks"][i]).collect();
            // A figure of a run that did not keep up is NaN (null): its own
            // verdict says so; the spread is taken over the others.
            let values: Vec<f64> = per_boot
                .iter()
                .filter_map(|c| c["value"].as_f64())
                .filter(|v| v.is_finite() && *v > 0.0)
                .collect();
            let spread = if values.len() >= 2 {
                values.iter().cloned().fold(f64::MIN, f64::max)
                    / values.iter().cloned().fold(f64::MAX, f64::min)
            } else {
                f64::NAN
            };
            let repeat_ok = spread.is_nan() || spread <= REPEAT_BOUND;
            let passes: Vec<Option<bool>> = per_boot.iter().map(|c| c["pass"].as_bool()).collect();
            let verdict = if passes.contains(&Some(false)) {
                "FAIL"
            } else if !repeat_ok {
                "FAIL (repeat)"
            } else if passes.iter().all(|p| p.is_none()) {
                "-"
            } else {
                "pass"
            };
            s += &format!(
                "| {} | {} | {} | {} | {verdict} |\n",
                c["name"].as_str().unwrap_or("?"),
                c["expect"].as_str().unwrap_or("?"),
                per_boot
                    .iter()
                    .map(|c| c["figure"].as_str().unwrap_or("?").to_string())
                    .collect::<Vec<_>>()
                    .join(" | "),
                if spread.is_finite() {
                    format!("{spread:.2}")
                } else {
                    "n/a".into()
                },
            );
        }
        s += "\n";
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn published_tables_give_each_layout_its_verdict() {
        let root = crate::workspace_root();
        let read = |f: &str| std::fs::read_to_string(root.join("docs/fidelity").join(f)).unwrap();
        let client = read("virtual-qemu7.2-client.md");
        assert_eq!(super::published_verdict(&client, 2), Some(true));
        assert_eq!(super::published_verdict(&client, 3), None);
        let plain = read("virtual-qemu7.2.md");
        assert_eq!(super::published_verdict(&plain, 1), Some(true));
        assert_eq!(super::published_verdict(&plain, 2), Some(false));
        assert_eq!(super::published_verdict(&plain, 4), Some(false));
    }
}
