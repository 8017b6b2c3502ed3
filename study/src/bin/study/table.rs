//! The outputs that are text: table.md (printed too), results.csv (one row
//! per cell), runs.csv (one row per run, failed ones included) and
//! results.json.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::plan::Config;
use crate::stats::{
    CLIENT_BOUND, CONTROL, MIN_BOOTS, MIN_RUNS, Spread, Standing, Summary, control_false_positives,
    slo_capacity,
};
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

/// A figure over runs: `median [lowest–highest]`.
fn spread_us(c: Spread) -> String {
    format!("{} [{}–{}]", us(c.median), us(c.lowest), us(c.highest))
}

/// Quantile `j`'s ratio, its interval and adjusted p; `*` when
/// significant; otherwise why it cannot be a claim.
fn ci_ratio(s: &Summary, j: usize) -> String {
    let Some(r) = s.ratio.map(|r| r[j]) else {
        return "–".into();
    };
    let c = r.ratio;
    let why = match s.standing() {
        Standing::MixedRates => " (rates differ)".to_string(),
        Standing::Unstable => " unstable".to_string(),
        Standing::FewRuns => format!(" (n<{MIN_RUNS})"),
        Standing::OneBoot => " (1 boot)".to_string(),
        Standing::Unbalanced => {
            let side = |f: fn(&(usize, usize)) -> usize| {
                s.split
                    .iter()
                    .map(|b| f(b).to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            };
            format!(
                " (split {} vs {}: A/A {:.0} %)",
                side(|b| b.0),
                side(|b| b.1),
                100.0 * s.split_false_positive
            )
        }
        Standing::Claim if s.significant(j) == Some(true) => {
            format!(" p={:.3} *", s.p_adjusted[j])
        }
        Standing::Claim => format!(" p={:.2}", s.p_adjusted[j]),
    };
    let hi = if c.hi.is_finite() {
        format!("{:.2}", c.hi)
    } else {
        "∞".into()
    };
    format!("{:.2} [{:.2}–{hi}]{why}", c.est, c.lo)
}

pub(crate) fn f(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "–".into()
    }
}

pub(crate) fn level(s: &Summary) -> String {
    if s.absolute {
        format!("{} req/s", s.level)
    } else {
        format!("{:.0} %", s.level * 100.0)
    }
}

/// The capacities a configuration's calibrations measured: median,
/// lowest, highest, and how many.
fn capacity_line(config: &Config, calibrations: &[(Config, f64)], base: &str) -> Option<String> {
    let v: Vec<f64> = calibrations
        .iter()
        .filter(|(c, _)| c == config)
        .map(|c| c.1)
        .collect();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    (!v.is_empty()).then(|| {
        format!(
            ": capacity {:.0} req/s (median of {} calibrations with `{base}`, {lo:.0}–{hi:.0}; every variant gets the same absolute rates)",
            rseq_slice_lab::median(v.clone()),
            v.len()
        )
    })
}

/// The markdown table: one section per configuration, the A/A control's
/// false positives, and the capacity at the SLO.
pub(crate) fn markdown(cells: &[Summary], calibrations: &[(Config, f64)], slo_us: f64) -> String {
    let mut t = String::new();
    let base = cells.first().map_or("off", |c| c.baseline.as_str());
    let mut configs: Vec<&Config> = Vec::new();
    for c in cells {
        if !configs.contains(&&c.config) {
            configs.push(&c.config);
        }
    }
    for config in configs {
        let _ = write!(t, "\n### {}", config.label());
        if let Some(line) = capacity_line(config, calibrations, base) {
            t += &line;
        }
        t += "\n\n| load | rate req/s | variant | runs (boots) | unstable | throughput | p50 µs | p99 µs | p99.9 µs | p50 ratio | p99 ratio | p99.9 ratio | served p50 / p99.9 µs | grants /1k req | kernel sgrant/sexpir/srevok/syield /1k | lock wait p50/p99/p99.9 ns | preempted holds /run |\n";
        t += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
        for s in cells.iter().filter(|s| &s.config == config) {
            let r = |j: usize| ci_ratio(s, j);
            let kernel = s
                .kernel_per_1k
                .map_or("–".into(), |k| k.map(|x| f(x, 1)).join("/"));
            let lw = s.lock_wait_ns.map(|x| f(x, 0)).join("/");
            let _ = writeln!(
                t,
                "| {} | {:.0} | {} | {} ({}) | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} / {} | {} | {kernel} | {lw} | {} |",
                level(s),
                s.rate,
                s.variant,
                s.runs,
                s.boots,
                s.unstable,
                s.throughput,
                spread_us(s.q[0]),
                spread_us(s.q[1]),
                spread_us(s.q[2]),
                r(0),
                r(1),
                r(2),
                us(s.served[0].median),
                us(s.served[2].median),
                f(s.grants_per_1k, 1),
                f(s.preempted_holds, 0)
            );
        }
        t += &crate::notes::notes(cells, config, base);
        let caps: Vec<_> = slo_capacity(cells, slo_us)
            .into_iter()
            .filter(|c| &c.0 == config)
            .collect();
        if caps.iter().any(|c| c.1 != CONTROL) {
            let _ = write!(
                t,
                "\n**Capacity at the SLO** (the highest rate offered whose p99.9 stayed under {} in at least 90 % of runs, every run stable):",
                us(slo_us)
            );
            let off = caps.iter().find(|c| c.1 == base).and_then(|c| c.2);
            for (_, variant, rate) in &caps {
                let ratio = match (rate, off) {
                    (Some(r), Some(o)) if variant != base => format!(" ({:.2}x {base})", r / o),
                    _ => String::new(),
                };
                let _ = write!(
                    t,
                    " {variant} {}{ratio};",
                    rate.map_or("below the lowest rate".into(), |r| format!("{r:.0} req/s"))
                );
            }
            t.pop();
            t += ". Known to the resolution of the rates offered.\n";
        }
    }
    let (n, raw, adjusted) = control_false_positives(cells);
    if n > 0 {
        let _ = writeln!(
            t,
            "\n**A/A control** (`{base}` run again as `{CONTROL}`): {raw} of {n} comparisons had p < 0.05 before correction ({:.0} %), {adjusted} significant after Holm's correction.",
            100.0 * raw as f64 / n as f64
        );
    } else {
        let _ = writeln!(
            t,
            "\n**A/A control:** no control comparison could be a claim here (no `{CONTROL}` variant, or too few stable runs): this table's false-positive rate is unknown."
        );
    }
    let _ = writeln!(
        t,
        "\nRuns are the unit: figures are the runs' median [lowest–highest run]; latency is the client's, from a request's intended send to its answer; \"served\" is the service's own, from its handler's start to its answer (the runs' median; – where the service does not record it). Ratios against `{base}` at the same configuration and rate: Hodges–Lehmann shift of the runs' log quantiles, 95 % interval and p-value from the exact Mann–Whitney distribution, p Holm-adjusted over the matrix's planned comparisons (every variant against `{base}` at every configuration and level, at p50, p99 and p99.9, whether or not it could be a claim); `*`: significant. A ratio is a claim only with ≥ {MIN_RUNS} runs a side from ≥ {MIN_BOOTS} boots, every run stable; otherwise it says why not: `unstable` (a run answered under 99 % of the requests scheduled in its window, left answers missing, its second half's median exceeded twice its first's + 0.5 ms, or loadgen used {CLIENT_BOUND} of a CPU or more: it measured a queue), `(n<{MIN_RUNS})`, `(1 boot)`, `(split … vs …: A/A N %)` (its runs and `{base}`'s, boot by boot, fall over the boots in a way whose simulated A/A comparisons are called different more than 5 % of the time), `(rates differ)` (its runs, or its runs and `{base}`'s, were offered different rates: every boot must offer a cell the same rate)."
    );
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
        let _ = write!(
            head,
            ",{q}_ratio,{q}_ratio_lo,{q}_ratio_hi,{q}_p,{q}_p_holm,{q}_significant"
        );
    }
    head += ",served_p50,served_p99,served_p999,boots,unstable_runs,p90,max,grants_per_1k,sgrant_per_1k,sexpir_per_1k,srevok_per_1k,syield_per_1k,lock_wait_p50_ns,lock_wait_p99_ns,lock_wait_p999_ns,preempted_holds,errors,missing";
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
            let _ = write!(row, ",{},{},{}", q.median, q.lowest, q.highest);
        }
        for j in 0..3 {
            match s.ratio {
                Some(r) => {
                    let _ = write!(
                        row,
                        ",{},{},{},{},{},{}",
                        r[j].ratio.est,
                        r[j].ratio.lo,
                        r[j].ratio.hi,
                        r[j].p,
                        s.p_adjusted[j],
                        u8::from(s.significant(j) == Some(true))
                    );
                }
                None => row += ",,,,,,",
            }
        }
        let k = s
            .kernel_per_1k
            .map_or(",,,".into(), |k| k.map(|x| x.to_string()).join(","));
        let _ = write!(
            row,
            ",{},{},{},{},{},{},{},{},{k},{},{},{},{},{},{}",
            s.served[0].median,
            s.served[1].median,
            s.served[2].median,
            s.boots,
            s.unstable,
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
        "kind,boot,noise,lock,hold_us,workers,level,variant,repeat,rate,capacity,duration,ok,unstable,throughput,p50,p90,p99,p999,max,errors,missing,sent,slice_granted,sgrant,sexpir,srevok,syield,lock_wait_p99_ns,preempted_holds,error"
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
        let g = |f: &dyn Fn(&rseq_slice_study::report::LoadReport) -> String| {
            p.map_or(String::new(), f)
        };
        // The run's quantiles as the cells take them (from its histogram).
        let figures = crate::stats::run_quantiles(r);
        let q = |j: usize| {
            if figures[j].is_finite() {
                figures[j].to_string()
            } else {
                String::new()
            }
        };
        let k = r.kernel.map_or(",,,".into(), |k| {
            format!("{},{},{},{}", k.sgrant, k.sexpir, k.srevok, k.syield)
        });
        writeln!(
            w,
            "{},{},{},{},{},{},{level},{variant},{repeat},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{k},{},{},{}",
            r.kind,
            csv_text(&r.boot),
            c.noise,
            c.lock,
            c.hold_us,
            c.workers,
            r.rate,
            r.capacity.map_or(String::new(), |x| x.to_string()),
            r.duration,
            r.ok,
            r.kind == "run" && !crate::stats::stable(r),
            g(&|p| p.throughput.to_string()),
            q(0),
            g(&|p| p.p90.to_string()),
            q(1),
            q(2),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::summarize;
    use crate::stats::tests::matrix;

    #[test]
    fn the_table_stars_claims_and_prints_the_control() {
        let rs = matrix(2.0);
        let cells = summarize(&rs);
        let cal = [
            (cells[0].config.clone(), 200.0),
            (cells[0].config.clone(), 210.0),
        ];
        let t = markdown(&cells, &cal, 1_500.0);
        assert!(t.contains("capacity 205 req/s (median of 2 calibrations with `off`, 200–210"));
        assert!(t.contains(
            "0 of 3 comparisons had p < 0.05 before correction (0 %), 0 significant after Holm"
        ));
        let locks = t.lines().find(|l| l.contains("| locks |")).unwrap();
        assert_eq!(locks.matches(" *").count(), 3, "{locks}");
        assert!(
            t.contains("off 100 req/s; control 100 req/s (1.00x off); locks below the lowest rate"),
            "{t}"
        );
        // Half the runs: no claim, and the table says why.
        let few: Vec<Record> = rs.into_iter().filter(|r| r.boot == "1").collect();
        let t = markdown(&summarize(&few), &cal, 1_500.0);
        let locks = t.lines().find(|l| l.contains("| locks |")).unwrap();
        assert!(!locks.contains(" *") && locks.contains("(n<10)"), "{locks}");
    }
}
