//! The tail-latency study: each configuration's capacity is calibrated
//! with `off` (closed loop, then open loop; repeated, the median taken),
//! then every variant, the A/A control among them, is offered the same
//! fractions of it, open loop, each run a fresh service + noise + load
//! generator on loopback (the generator on a CPU of its own with
//! `--client-cpu`), repeated with the variants alternated. Every run is
//! appended to `runs.jsonl` as it ends; the tables, CSVs, JSON and plots
//! are rebuilt from that file alone, runs as the unit. See
//! `docs/study.md`.
//!
//! Modules: [`args`] (flags), [`plan`] (the matrix), [`procs`] (child
//! processes, CPUs), [`cgroup`] (the weighted groups), [`run`] (one run), [`calibrate`] (capacity), [`matrix`] (the loop), [`store`]
//! (runs.jsonl), [`stats`] (runs to cells, ratios, stability), [`table`], [`notes`]
//! and [`plot`] (outputs).

mod args;
mod calibrate;
mod cgroup;
mod matrix;
mod notes;
mod plan;
mod plot;
mod procs;
mod run;
mod stats;
mod store;
mod table;

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::args::Args;
use crate::plan::{Config, Plan};
use crate::store::{Record, latest_ok};
use rseq_slice_study::tokio_locks;

/// Every output from runs.jsonl: table.md (printed), results.csv, runs.csv,
/// results.json, latency.png, p99_vs_load.png, p999_vs_load.png.
fn write_all(out: &Path, loaded: &store::Loaded, slo_us: f64) -> Result<()> {
    let records = &loaded.records;
    let ok = latest_ok(records);
    let runs: Vec<&Record> = ok.iter().copied().filter(|r| r.kind == "run").collect();
    let calibrations: Vec<(Config, f64)> = ok
        .iter()
        .filter(|r| r.kind == "calibration")
        .map(|r| (r.config.clone(), r.rate))
        .collect();
    let failed = records.iter().filter(|r| !r.ok).count();
    let Some(first) = records.first() else {
        bail!("{} holds no runs", out.join("runs.jsonl").display());
    };
    let cells = stats::summarize(records);
    let mut t = table::markdown(&cells, &calibrations, slo_us);
    for why in &loaded.skipped {
        t += &format!("\nSkipped: {why}\n");
    }
    let conditions = &first.conditions;
    println!("\n{conditions}\n{t}");
    if failed > 0 {
        println!("{failed} runs or calibrations failed: see runs.csv (error column)");
    }
    std::fs::write(out.join("table.md"), format!("{conditions}\n{t}"))?;
    table::results_csv(&out.join("results.csv"), &cells)?;
    table::runs_csv(&out.join("runs.csv"), records)?;
    let (aa_n, aa_raw, aa_holm) = stats::control_false_positives(&cells);
    let json = serde_json::json!({
        "conditions": conditions,
        "conditions_detail": first.conditions_detail,
        "service": first.service,
        "note": "runs are the unit: each run's quantiles; ratios are Hodges-Lehmann shifts of the runs' log quantiles with exact Mann-Whitney intervals and p-values, Holm-corrected over the matrix's planned comparisons; loads are fractions of each configuration's capacity (the median of its calibrations with off); every variant gets the same absolute rates",
        "calibrations": calibrations,
        "method": { "ratio": "hodges-lehmann on log quantiles", "test": "mann-whitney exact", "correction": "holm", "holm_family": 3 * stats::family(records).len(), "level": 0.95, "min_runs": stats::MIN_RUNS, "min_boots": stats::MIN_BOOTS },
        "control": { "comparisons": aa_n, "p_below_5pc": aa_raw, "significant_after_holm": aa_holm },
        "slo_us": slo_us,
        "slo_capacity": stats::slo_capacity(&cells, slo_us),
        "cells": cells,
        "runs": runs.len(),
        "failed": failed,
        "skipped_lines": loaded.skipped,
    });
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    // The detected conditions (the part after "where: "), whole: vCPUs,
    // clock, slice_ext_nsec, rseq_debug, kernel and area.
    let title: String = conditions
        .split("; ")
        .find(|p| p.contains("vCPU"))
        .unwrap_or(conditions)
        .chars()
        .take(160)
        .collect();
    plot::latency(&out.join("latency.png"), &cells, &title)?;
    plot::q_vs_load(&out.join("p99_vs_load.png"), 1, &cells, &title)?;
    plot::q_vs_load(&out.join("p999_vs_load.png"), 2, &cells, &title)?;
    eprintln!(
        "study: wrote {}/{{table.md,results.csv,runs.csv,results.json,latency.png,p99_vs_load.png,p999_vs_load.png}}",
        out.display()
    );
    if runs.is_empty() && !calibrations.is_empty() && failed == 0 {
        // --calibrate-only: nothing else was asked for.
        return Ok(());
    }
    if runs.is_empty() {
        // The outputs above are written all the same: they hold the errors.
        bail!(
            "no run succeeded ({failed} runs or calibrations failed): see {} (error column)",
            out.join("runs.csv").display()
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.replot {
        return write_all(&args.out, &store::load(&args.out)?, args.slo_us);
    }
    if !args.path.starts_with('/') || !args.metrics_path.starts_with('/') {
        bail!("--path and --metrics-path start with '/'");
    }
    let bins = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory for this executable")?
            .to_path_buf(),
    };
    let mut needed = vec!["loadgen", "noise"];
    if args.service.is_none() {
        needed.push("service");
    }
    for b in needed {
        if !bins.join(b).is_file() {
            bail!(
                "{} missing: build the examples (cargo build --release -p rseq-slice-study)",
                bins.join(b).display()
            );
        }
    }
    let kernel = match rseq_slice_core::diagnostics::kernel_support() {
        Ok(()) => "the slice extension is available here".to_string(),
        Err(e) => format!(
            "the slice extension is NOT available here ({e}): every variant runs the fallback"
        ),
    };
    let cpus = procs::pin(usize::from(args.cpus))?;
    let (service_cpus, client_cpu) = match (args.client_cpu, cpus.split_last()) {
        (true, Some((&c, rest))) if !rest.is_empty() => (rest.to_vec(), Some(c)),
        (true, _) => bail!(
            "--client-cpu needs 2 or more CPUs (one is the client's), not {}",
            cpus.len()
        ),
        (false, _) => (cpus.clone(), None),
    };
    let plan = Plan::new(&args, service_cpus.len());
    args.check(&plan.variants).map_err(anyhow::Error::msg)?;
    let detected = rseq_slice_lab::Conditions::detect();
    if let Some(w) = detected.warning() {
        eprintln!("study: {w}");
    }
    let client = match client_cpu {
        Some(c) => format!(
            "client: loadgen alone on CPU {c}, the service and the noise on {service_cpus:?}"
        ),
        None => {
            format!("client: loadgen shares CPUs {service_cpus:?} with the service and the noise")
        }
    };
    let mut conditions = match &args.conditions {
        Some(note) => format!("{note}; {detected}; {kernel}; {client}"),
        None => format!("{detected}; {kernel}; {client}"),
    };
    if tokio_locks::AVAILABLE {
        conditions = format!("{}; {conditions}", tokio_locks::PATCHED);
    }
    eprintln!(
        "study: {conditions}; pinned to CPUs {cpus:?}\nstudy: {} configurations x {} levels x {} variants x {} repeats = {} runs, >= {} requests each after {} s of warm-up",
        plan.configs.len(),
        plan.levels.len(),
        plan.variants.len(),
        plan.repeats,
        plan.order().len(),
        plan.samples,
        plan.warmup
    );
    let logs = args.out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let previous = if args.resume {
        store::load(&args.out)?.records
    } else {
        Vec::new()
    };
    let mut st = store::Store::open(&args.out, args.resume)?;
    let ctx = run::Ctx {
        plan,
        bins,
        logs,
        service: args.service.clone(),
        shards: args.shards,
        work: args.work,
        preempted_us: args.preempted_us,
        connections: args.connections,
        path: args.path.clone(),
        requests: args.requests.clone(),
        keys: args.keys,
        zipf: args.zipf,
        metrics_path: args.metrics_path.clone(),
        baseline: args.baseline.clone(),
        noise_cmd: args.noise_cmd.clone(),
        libc_rseq_off: match args.libc_rseq {
            Some(l) => l == args::LibcRseq::Off,
            None => args.service.is_none(),
        },
        neighbour_rate: args.neighbour_rate,
        service_cpus,
        client_cpu,
    };
    let meta = matrix::Meta {
        conditions,
        detail: serde_json::to_value(&detected)?,
        service: args.service.clone().unwrap_or_else(|| "bundled".into()),
        boot: args.boot.clone(),
        baseline: args.baseline.clone(),
    };
    if ctx.service.is_some() || ctx.noise_cmd.is_some() {
        procs::kill_group_on_interrupt();
    }
    let started = std::time::Instant::now();
    matrix::run(
        &ctx,
        &meta,
        &mut st,
        &previous,
        (!args.closed_only, args.calibrate_only),
    )?;
    eprintln!(
        "study: matrix done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if args.calibrate_only && ctx.plan.absolute {
        eprintln!("study: absolute rates (--rates): nothing to calibrate");
        return Ok(());
    }
    write_all(&args.out, &store::load(&args.out)?, args.slo_us)
}
