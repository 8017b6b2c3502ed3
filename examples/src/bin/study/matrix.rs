//! Running the matrix: calibrate each configuration once (or reuse the
//! calibration runs.jsonl holds), then every run in plan order, each
//! appended to runs.jsonl as it ends. A failed run is recorded with its
//! error and the matrix goes on.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::calibrate;
use crate::plan::{Cell, Config};
use crate::run::{Ctx, load, stage, with_kernel};
use crate::store::{Record, Store, latest_ok};

/// What every record carries besides its run.
#[derive(Debug)]
pub(crate) struct Meta {
    pub(crate) conditions: String,
    pub(crate) detail: serde_json::Value,
    pub(crate) service: String,
}

fn record(meta: &Meta, kind: &str, key: String, config: &Config, cell: Option<Cell>) -> Record {
    Record {
        kind: kind.into(),
        key,
        config: config.clone(),
        cell,
        rate: 0.0,
        capacity: None,
        duration: 0.0,
        ok: false,
        error: None,
        report: None,
        check: None,
        kernel: None,
        kernel_error: None,
        conditions: meta.conditions.clone(),
        conditions_detail: meta.detail.clone(),
        service: meta.service.clone(),
        finished: 0,
    }
}

/// A file name for a plan key (logs/<tag>.*): its words joined by `_`.
fn tag(key: &str) -> String {
    key.split_whitespace()
        .map(|w| w.split_once('=').map_or(w, |(_, v)| v))
        .collect::<Vec<_>>()
        .join("_")
        .replace(['/', ' '], "-")
}

fn finish(store: &mut Store, mut r: Record) -> Result<Record> {
    r.finished = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    store.append(&r)?;
    Ok(r)
}

/// Run what `previous` (runs.jsonl, when resuming) does not hold yet.
pub(crate) fn run(
    ctx: &Ctx,
    meta: &Meta,
    store: &mut Store,
    previous: &[Record],
    check: bool,
) -> Result<()> {
    let done: HashSet<&str> = latest_ok(previous).iter().map(|r| r.key.as_str()).collect();
    let mut capacity: HashMap<String, Result<f64, String>> = latest_ok(previous)
        .iter()
        .filter(|r| r.kind == "calibration")
        .map(|r| (r.config.key(), Ok(r.rate)))
        .collect();
    let order: Vec<Cell> = ctx
        .plan
        .order()
        .into_iter()
        .filter(|c| !done.contains(c.key().as_str()))
        .collect();
    if order.len() < ctx.plan.order().len() {
        eprintln!(
            "study: resuming: {} of {} runs already in runs.jsonl",
            ctx.plan.order().len() - order.len(),
            ctx.plan.order().len()
        );
    }
    let bar = ProgressBar::new(order.len() as u64);
    let tty = std::io::stderr().is_terminal();
    if tty {
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} (left ~{eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = Instant::now();
    let mut failed = 0;
    for (i, cell) in order.iter().enumerate() {
        let ck = cell.config.key();
        if !ctx.plan.absolute && !capacity.contains_key(&ck) {
            let key = Record::calibration_key(&cell.config);
            let tag = tag(&key);
            bar.set_message(format!("calibrating {}", cell.config.label()));
            if !tty {
                eprintln!("study: calibrating {} (off)", cell.config.label());
            }
            let mut r = record(meta, "calibration", key, &cell.config, None);
            r.duration = ctx.plan.calibrate_secs;
            match calibrate::capacity(ctx, &cell.config, &tag, check) {
                Ok(cap) => {
                    eprintln!(
                        "study: capacity of {}: {:.0} req/s (closed loop {:.0}{})",
                        cell.config.label(),
                        cap.rate,
                        cap.closed.throughput,
                        cap.open.as_ref().map_or(String::new(), |o| format!(
                            ", open loop at that rate {:.0}",
                            o.throughput
                        ))
                    );
                    let p = &ctx.plan;
                    let per_repeat: f64 = p
                        .levels
                        .iter()
                        .map(|l| p.duration(l * cap.rate) + 1.5)
                        .sum();
                    eprintln!(
                        "study: its runs will take ~{:.0} s ({} variants x {} repeats)",
                        per_repeat * (p.variants.len() as f64) * f64::from(p.repeats),
                        p.variants.len(),
                        p.repeats
                    );
                    (r.rate, r.ok) = (cap.rate, true);
                    (r.report, r.check) = (Some(cap.closed), cap.open);
                    capacity.insert(ck.clone(), Ok(cap.rate));
                }
                Err(e) => {
                    eprintln!("study: calibration failed: {e:#}");
                    r.error = Some(format!("{e:#}"));
                    capacity.insert(ck.clone(), Err(format!("calibration failed: {e:#}")));
                }
            }
            finish(store, r)?;
        }
        let what = format!(
            "{}, {} {}, {}, repeat {}",
            cell.config.label(),
            if cell.absolute { "rate" } else { "load" },
            cell.level,
            cell.variant,
            cell.repeat + 1
        );
        bar.set_message(what.clone());
        if !tty {
            let left = if i == 0 {
                String::new()
            } else {
                let s = started.elapsed().as_secs_f64() / i as f64 * (order.len() - i) as f64;
                format!(" (left ~{s:.0} s)")
            };
            eprintln!("study: [{}/{}] {what}{left}", i + 1, order.len());
        }
        let mut r = record(meta, "run", cell.key(), &cell.config, Some(cell.clone()));
        let rate = if cell.absolute {
            Ok(cell.level)
        } else {
            capacity[&ck].clone().map(|c| {
                r.capacity = Some(c);
                c * cell.level
            })
        };
        match rate {
            Ok(rate) => {
                let secs = ctx.plan.duration(rate);
                (r.rate, r.duration) = (rate, secs);
                let tag = tag(&r.key);
                let (res, kernel) = match stage(ctx, &cell.config, &cell.variant, &tag, secs) {
                    Ok(st) => with_kernel(|| load(ctx, &st, &tag, Some(rate), secs)),
                    Err(e) => (Err(e), Err("no run".into())),
                };
                match res {
                    Ok(rep) => (r.ok, r.report) = (true, Some(rep)),
                    Err(e) => r.error = Some(format!("{e:#}")),
                }
                match kernel {
                    Ok(k) => r.kernel = Some(k),
                    Err(e) => r.kernel_error = Some(e),
                }
            }
            Err(e) => r.error = Some(e),
        }
        if let Some(e) = &r.error {
            failed += 1;
            eprintln!("study: run failed ({what}): {e}");
        }
        finish(store, r)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    if failed > 0 {
        eprintln!("study: {failed} runs failed (recorded in runs.jsonl; --resume retries them)");
    }
    Ok(())
}
