//! The tail-latency study: each configuration's capacity is calibrated
//! closed-loop with `off`, then every variant is offered the same fractions
//! of it, open loop, each run a fresh service + noise + load generator on
//! loopback, repeated with the variants alternated. Every run is appended to
//! `runs.jsonl` as it ends; the tables, CSVs, JSON and plots are rebuilt
//! from that file alone. See `docs/study.md`.
//!
//! Modules: [`args`] (flags), [`plan`] (the matrix), [`procs`] (child
//! processes, CPUs), [`run`] (one run), [`calibrate`] (capacity), [`matrix`] (the loop), [`store`]
//! (runs.jsonl), [`stats`] (pooling, bootstrap intervals), [`table`] and
//! [`plot`] (outputs).

mod args;
mod calibrate;
mod matrix;
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

/// How intervals are computed.
#[derive(Debug)]
struct Boot {
    method: stats::Method,
    resamples: usize,
    seed: u64,
}

/// Every output from runs.jsonl: table.md (printed), results.csv, runs.csv,
/// results.json, latency.png, p99_vs_load.png, p999_vs_load.png.
fn write_all(out: &Path, records: &[Record], boot: &Boot) -> Result<()> {
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
    let cells = stats::summarize(&runs, boot.method, boot.resamples, boot.seed);
    let t = table::markdown(&cells, &calibrations);
    let conditions = &first.conditions;
    println!("\n{conditions}\n{t}");
    if failed > 0 {
        println!("{failed} runs or calibrations failed: see runs.csv (error column)");
    }
    std::fs::write(out.join("table.md"), format!("{conditions}\n{t}"))?;
    table::results_csv(&out.join("results.csv"), &cells)?;
    table::runs_csv(&out.join("runs.csv"), records)?;
    let json = serde_json::json!({
        "conditions": conditions,
        "conditions_detail": first.conditions_detail,
        "service": first.service,
        "note": "loads are fractions of each configuration's capacity, measured with the off variant (closed loop, then open loop at that rate unless --closed-only); every variant of a configuration gets the same absolute rates",
        "calibrations": calibrations,
        "bootstrap": { "method": format!("{:?}", boot.method).to_lowercase(), "resamples": boot.resamples, "seed": boot.seed, "level": 0.95 },
        "cells": cells,
        "runs": runs.len(),
        "failed": failed,
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
    let boot = Boot {
        method: args.bootstrap,
        resamples: args.resamples as usize,
        seed: args.seed,
    };
    if args.replot {
        let records = store::load(&args.out)?;
        return write_all(&args.out, &records, &boot);
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
                "{} missing: build the examples (cargo build --release -p rseq-slice-examples)",
                bins.join(b).display()
            );
        }
    }
    let kernel = match rseq_slice_core::kernel_support() {
        Ok(()) => "the slice extension is available here".to_string(),
        Err(e) => format!(
            "the slice extension is NOT available here ({e}): every variant runs the fallback"
        ),
    };
    let cpus = procs::pin(usize::from(args.cpus))?;
    let plan = Plan::new(&args, cpus.len());
    let detected = rseq_slice_lab::Conditions::detect();
    if let Some(w) = detected.warning() {
        eprintln!("study: {w}");
    }
    let conditions = match &args.conditions {
        Some(note) => format!("{note}; {detected}; {kernel}"),
        None => format!("{detected}; {kernel}"),
    };
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
        store::load(&args.out)?
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
        metrics_path: args.metrics_path.clone(),
    };
    let meta = matrix::Meta {
        conditions,
        detail: serde_json::to_value(&detected)?,
        service: args.service.clone().unwrap_or_else(|| "bundled".into()),
    };
    if ctx.service.is_some() {
        procs::kill_group_on_interrupt();
    }
    let started = std::time::Instant::now();
    matrix::run(&ctx, &meta, &mut st, &previous, !args.closed_only)?;
    eprintln!(
        "study: matrix done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    write_all(&args.out, &store::load(&args.out)?, &boot)
}
