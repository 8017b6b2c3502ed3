//! The outputs that are text: table.md (printed too), results.csv (one row
//! per cell), runs.csv (one row per run, failed ones included) and
//! results.json.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use rseq_slice_lab::Ci;

use crate::plan::Config;
use crate::stats::Summary;
use crate::store::Record;

fn us(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x >= 10_000.0 {
        format!("{:.0}ms", x / 1000.0)
    } else if x >= 1000.0 {
        format!("{:.1}ms", x / 1000.0)
    } else {
        format!("{x:.0}")
    }
}

fn ci_us(c: Ci) -> String {
    format!("{} [{}–{}]", us(c.est), us(c.lo), us(c.hi))
}

/// Quantile `j`'s ratio and its interval; `*` when significant, `(n<3)`
/// when too few runs stand behind it to say.
fn ci_ratio(s: &Summary, j: usize) -> String {
    match s.ratio.map(|r| r[j]) {
        None => "–".into(),
        Some(c) => format!(
            "{:.2} [{:.2}–{:.2}]{}",
            c.est,
            c.lo,
            c.hi,
            match s.significant(j) {
                Some(true) => " *",
                _ if !s.enough_runs() => " (n<3)",
                _ => "",
            }
        ),
    }
}

fn f(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "–".into()
    }
}

fn level(s: &Summary) -> String {
    if s.absolute {
        format!("{} req/s", s.level)
    } else {
        format!("{:.0} %", s.level * 100.0)
    }
}

/// The markdown table: one section per configuration.
pub(crate) fn markdown(cells: &[Summary], calibrations: &[(Config, f64)]) -> String {
    let mut t = String::new();
    let mut configs: Vec<&Config> = Vec::new();
    for c in cells {
        if !configs.contains(&&c.config) {
            configs.push(&c.config);
        }
    }
    for config in configs {
        let _ = write!(t, "\n### {}", config.label());
        if let Some((_, cap)) = calibrations.iter().find(|(c, _)| c == config) {
            let _ = write!(
                t,
                ": capacity {cap:.0} req/s (calibrated with `off`; every variant gets the same absolute rates)"
            );
        }
        t += "\n\n| load | rate req/s | variant | runs | samples | throughput | p50 µs | p99 µs | p99.9 µs | p50 ratio | p99 ratio | p99.9 ratio | grants /1k req | kernel sgrant/sexpir/srevok/syield /1k | lock wait p50/p99/p99.9 ns | preempted holds /run |\n";
        t += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
        for s in cells.iter().filter(|s| &s.config == config) {
            let r = |j: usize| ci_ratio(s, j);
            let kernel = s
                .kernel_per_1k
                .map_or("–".into(), |k| k.map(|x| f(x, 1)).join("/"));
            let lw = s.lock_wait_ns.map(|x| f(x, 0)).join("/");
            let _ = writeln!(
                t,
                "| {} | {:.0} | {} | {} | {} | {:.0}{} | {} | {} | {} | {} | {} | {} | {} | {kernel} | {lw} | {} |",
                level(s),
                s.rate,
                s.variant,
                s.runs,
                s.samples,
                s.throughput,
                if s.overloaded > 0 {
                    format!(" ({} overloaded)", s.overloaded)
                } else {
                    String::new()
                },
                ci_us(s.q[0]),
                ci_us(s.q[1]),
                ci_us(s.q[2]),
                r(0),
                r(1),
                r(2),
                f(s.grants_per_1k, 1),
                f(s.preempted_holds, 0)
            );
        }
    }
    t += "\nIntervals: bootstrap 95 % (by default two-stage: a cell's runs with replacement, then requests from them; results.json says which); ratios against `off` at the same configuration and rate; `*`: the ratio's interval excludes 1 and each side has at least 3 runs (significant); `(n<3)`: fewer runs, so no claim (one run cannot show how much runs differ). \"overloaded\": runs whose throughput stayed under 97 % of the offered rate or left answers missing (queueing in the latencies).\n";
    t
}

/// results.csv: every field of every cell.
pub(crate) fn results_csv(path: &Path, cells: &[Summary]) -> Result<()> {
    let mut w = std::fs::File::create(path)?;
    let mut head = String::from(
        "noise,lock,hold_us,workers,level,absolute,variant,runs,rate,capacity,samples,throughput",
    );
    for q in ["p50", "p99", "p999"] {
        let _ = write!(head, ",{q},{q}_lo,{q}_hi");
    }
    for q in ["p50", "p99", "p999"] {
        let _ = write!(head, ",{q}_ratio,{q}_ratio_lo,{q}_ratio_hi,{q}_significant");
    }
    head += ",p90,max,grants_per_1k,sgrant_per_1k,sexpir_per_1k,srevok_per_1k,syield_per_1k,lock_wait_p50_ns,lock_wait_p99_ns,lock_wait_p999_ns,preempted_holds,errors,missing,overloaded_runs";
    writeln!(w, "{head}")?;
    for s in cells {
        let c = &s.config;
        let mut row = format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            c.noise,
            c.lock,
            c.hold_us,
            c.workers,
            s.level,
            s.absolute,
            s.variant,
            s.runs,
            s.rate,
            s.capacity.map_or(String::new(), |x| x.to_string()),
            s.samples,
            s.throughput
        );
        for q in s.q {
            let _ = write!(row, ",{},{},{}", q.est, q.lo, q.hi);
        }
        for j in 0..3 {
            match s.ratio {
                Some(r) => {
                    let _ = write!(
                        row,
                        ",{},{},{},{}",
                        r[j].est,
                        r[j].lo,
                        r[j].hi,
                        u8::from(s.significant(j) == Some(true))
                    );
                }
                None => row += ",,,,",
            }
        }
        let k = s
            .kernel_per_1k
            .map_or(",,,".into(), |k| k.map(|x| x.to_string()).join(","));
        let _ = write!(
            row,
            ",{},{},{},{k},{},{},{},{},{},{}",
            s.p90,
            s.max,
            s.grants_per_1k,
            s.lock_wait_ns[0],
            s.lock_wait_ns[1],
            s.lock_wait_ns[2],
            s.preempted_holds,
            s.errors,
            s.missing
        );
        writeln!(w, "{row}")?;
    }
    Ok(())
}

fn json(v: &serde_json::Value) -> String {
    if v.is_null() {
        String::new()
    } else {
        v.to_string()
    }
}

fn csv_text(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// runs.csv: one row per run and calibration.
pub(crate) fn runs_csv(path: &Path, records: &[Record]) -> Result<()> {
    let mut w = std::fs::File::create(path)?;
    writeln!(
        w,
        "kind,noise,lock,hold_us,workers,level,variant,repeat,rate,capacity,duration,ok,throughput,p50,p90,p99,p999,max,errors,missing,sent,slice_granted,sgrant,sexpir,srevok,syield,lock_wait_p99_ns,preempted_holds,error"
    )?;
    for r in records {
        let c = &r.config;
        let (level, variant, repeat) = r
            .cell
            .as_ref()
            .map_or((String::new(), String::new(), String::new()), |x| {
                (x.level.to_string(), x.variant.clone(), x.repeat.to_string())
            });
        let p = r.report.as_ref();
        let g = |f: &dyn Fn(&rseq_slice_examples::report::LoadReport) -> String| {
            p.map_or(String::new(), f)
        };
        let k = r.kernel.map_or(",,,".into(), |k| {
            format!("{},{},{},{}", k.sgrant, k.sexpir, k.srevok, k.syield)
        });
        writeln!(
            w,
            "{},{},{},{},{},{level},{variant},{repeat},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{k},{},{},{}",
            r.kind,
            c.noise,
            c.lock,
            c.hold_us,
            c.workers,
            r.rate,
            r.capacity.map_or(String::new(), |x| x.to_string()),
            r.duration,
            r.ok,
            r.kind == "run" && crate::stats::overloaded(r),
            g(&|p| p.throughput.to_string()),
            g(&|p| p.p50.to_string()),
            g(&|p| p.p90.to_string()),
            g(&|p| p.p99.to_string()),
            g(&|p| p.p999.to_string()),
            g(&|p| p.max.to_string()),
            g(&|p| p.errors.to_string()),
            g(&|p| p.missing.to_string()),
            g(&|p| p.scheduled.to_string()),
            g(&|p| json(&p.service["slice_granted"])),
            g(&|p| json(&p.service["lock_wait_ns"]["p99"])),
            g(&|p| json(&p.service["preempted_holds"])),
            csv_text(r.error.as_deref().unwrap_or(""))
        )?;
    }
    Ok(())
}
