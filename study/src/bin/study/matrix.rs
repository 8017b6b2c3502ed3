//! Running the matrix: calibrate each configuration `--calibrations` times
//! (runs.jsonl may hold other boots' calibrations too: the capacity is the
//! median of all), then every run in plan order, each appended to
//! runs.jsonl as it ends. A failed run is recorded with its error and the
//! matrix goes on.

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
    /// This boot's label (`--boot`; empty: none).
    pub(crate) boot: String,
    /// `--baseline`.
    pub(crate) baseline: String,
}

impl Meta {
    /// A plan key as stored: prefixed with the boot, so that the runs of
    /// several boots merge into one runs.jsonl.
    pub(crate) fn key(&self, plan_key: &str) -> String {
        if self.boot.is_empty() {
            plan_key.to_string()
        } else {
            format!("boot={} {plan_key}", self.boot)
        }
    }
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
        throttling: None,
        conditions: meta.conditions.clone(),
        conditions_detail: meta.detail.clone(),
        service: meta.service.clone(),
        finished: 0,
        boot: meta.boot.clone(),
        baseline: meta.baseline.clone(),
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

/// Every calibration this boot still owes (`plan.calibrations` per
/// configuration), then each configuration's capacity: the median of every
/// successful calibration of it in `previous` and here, whatever its boot.
fn calibrate_all(
    ctx: &Ctx,
    meta: &Meta,
    store: &mut Store,
    previous: &[Record],
    done: &HashSet<&str>,
    check: bool,
) -> Result<HashMap<String, Result<f64, String>>> {
    let mut rates: HashMap<String, Vec<f64>> = HashMap::new();
    for r in latest_ok(previous)
        .iter()
        .filter(|r| r.kind == "calibration")
    {
        rates.entry(r.config.key()).or_default().push(r.rate);
    }
    let mut errors: HashMap<String, String> = HashMap::new();
    for config in &ctx.plan.configs {
        for repeat in 0..ctx.plan.calibrations {
            let key = meta.key(&Record::calibration_key(config, repeat));
            if done.contains(key.as_str()) {
                continue;
            }
            eprintln!(
                "study: calibrating {} (off), {} of {}",
                config.label(),
                repeat + 1,
                ctx.plan.calibrations
            );
            let tag = tag(&key);
            let mut r = record(meta, "calibration", key, config, None);
            r.duration = ctx.plan.calibrate_secs;
            match calibrate::capacity(ctx, config, &tag, check) {
                Ok(cap) => {
                    eprintln!(
                        "study: capacity {:.0} req/s (closed loop {:.0}{})",
                        cap.rate,
                        cap.closed.throughput,
                        cap.open.as_ref().map_or(String::new(), |o| format!(
                            ", open loop at that rate {:.0}",
                            o.throughput
                        ))
                    );
                    (r.rate, r.ok) = (cap.rate, true);
                    (r.report, r.check) = (Some(cap.closed), cap.open);
                    rates.entry(config.key()).or_default().push(cap.rate);
                }
                Err(e) => {
                    eprintln!("study: calibration failed: {e:#}");
                    r.error = Some(format!("{e:#}"));
                    errors.insert(config.key(), format!("calibration failed: {e:#}"));
                }
            }
            finish(store, r)?;
        }
    }
    Ok(ctx
        .plan
        .configs
        .iter()
        .map(|c| {
            let k = c.key();
            let cap = match rates.get(&k) {
                Some(v) if !v.is_empty() => Ok(rseq_slice_lab::median(v.clone())),
                _ => Err(errors
                    .get(&k)
                    .cloned()
                    .unwrap_or_else(|| "no calibration".into())),
            };
            (k, cap)
        })
        .collect())
}

/// Run what `previous` (runs.jsonl, when resuming) does not hold yet:
/// the calibrations, then (unless `calibrate_only`) every run.
pub(crate) fn run(
    ctx: &Ctx,
    meta: &Meta,
    store: &mut Store,
    previous: &[Record],
    (check, calibrate_only): (bool, bool),
) -> Result<()> {
    let done: HashSet<&str> = latest_ok(previous).iter().map(|r| r.key.as_str()).collect();
    let capacity = if ctx.plan.absolute {
        HashMap::new()
    } else {
        calibrate_all(ctx, meta, store, previous, &done, check)?
    };
    for (k, c) in &capacity {
        if let Ok(c) = c {
            let p = &ctx.plan;
            let per_repeat: f64 = p.levels.iter().map(|l| p.duration(l * c) + 1.5).sum();
            eprintln!(
                "study: capacity of {k}: {c:.0} req/s; its runs will take ~{:.0} s ({} variants x {} repeats)",
                per_repeat * (p.variants.len() as f64) * f64::from(p.repeats),
                p.variants.len(),
                p.repeats
            );
        }
    }
    if calibrate_only {
        return Ok(());
    }
    let all = ctx.plan.order();
    let order: Vec<&Cell> = all
        .iter()
        .filter(|c| !done.contains(meta.key(&c.key()).as_str()))
        .collect();
    if order.len() < all.len() {
        eprintln!(
            "study: resuming: {} of {} runs already in runs.jsonl",
            all.len() - order.len(),
            all.len()
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
        let key = meta.key(&cell.key());
        let mut r = record(meta, "run", key, &cell.config, Some((*cell).clone()));
        let rate = if cell.absolute {
            Ok(cell.level)
        } else {
            capacity
                .get(&ck)
                .cloned()
                .unwrap_or_else(|| Err("no calibration".into()))
                .map(|c| {
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
                    Ok(st) => {
                        let before = st.throttling();
                        let out = with_kernel(|| load(ctx, &st, &tag, Some(rate), secs));
                        if let (Some(b), Some(a)) = (before, st.throttling()) {
                            r.throttling = Some(a.since(b));
                        }
                        out
                    }
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
