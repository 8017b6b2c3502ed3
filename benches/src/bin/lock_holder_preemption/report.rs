//! The CSV (written as cells finish) and the printed table.

use std::collections::BTreeMap;
use std::path::Path;

use rseq_slice_lab::{Conditions, median};

use crate::cell::Cell;
use crate::{Cli, Kind, Result, Variant};

/// `locks.csv`, one row a cell, flushed as each cell ends.
pub(crate) struct CsvOut {
    w: csv::Writer<std::fs::File>,
    fixed: Vec<String>,
}

impl CsvOut {
    pub(crate) fn create(path: &Path, conditions: &Conditions, cli: &Cli) -> Result<CsvOut> {
        let mut w = csv::Writer::from_path(path)?;
        let cols = conditions.columns();
        let mut header = vec![
            "kind",
            "variant",
            "threads",
            "rep",
            "secs",
            "join_ms",
            "ops",
            "ops_per_s",
            "p50_ns",
            "p99_ns",
            "p999_ns",
            "max_ns",
            "preempted_holds",
            "requested",
            "granted",
            "yielded",
            "revoked",
            "cleared",
            "k_sgrant",
            "k_syield",
            "k_srevok",
            "k_sexpir",
            "section_ns",
            "outside_ns",
        ];
        header.extend(cols.iter().map(|(name, _)| *name));
        w.write_record(&header)?;
        w.flush()?;
        let mut fixed = vec![cli.section_ns.to_string(), cli.outside_ns.to_string()];
        fixed.extend(cols.into_iter().map(|(_, v)| v));
        Ok(CsvOut { w, fixed })
    }

    pub(crate) fn write(&mut self, c: &Cell) -> Result<()> {
        let k = c
            .kernel
            .map(|k| [k.granted, k.yielded, k.revoked, k.expired]);
        let k = |i: usize| k.map_or(String::new(), |k| k[i].to_string());
        let mut row = vec![
            c.kind.to_string(),
            c.variant.to_string(),
            c.threads.to_string(),
            c.rep.to_string(),
            format!("{:.4}", c.secs),
            format!("{:.3}", c.join_ms),
            c.ops.to_string(),
            format!("{:.0}", c.ops_per_s()),
            c.q(0.5).to_string(),
            c.q(0.99).to_string(),
            c.q(0.999).to_string(),
            c.hist.max().to_string(),
            c.preempted.to_string(),
            c.stats.requested.to_string(),
            c.stats.granted.to_string(),
            c.stats.yielded.to_string(),
            c.stats.revoked.to_string(),
            c.stats.cleared.to_string(),
            k(0),
            k(1),
            k(2),
            k(3),
        ];
        row.extend(self.fixed.iter().cloned());
        self.w.write_record(&row)?;
        self.w.flush()?;
        Ok(())
    }
}

/// Medians over the repeats of one (kind, variant, threads), with the
/// repeats' range of ops/s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub(crate) ops_per_s: f64,
    pub(crate) ops_min: f64,
    pub(crate) ops_max: f64,
    /// p99.9 of every repeat's acquisitions pooled.
    pub(crate) p999_ns: f64,
    pub(crate) samples: u64,
    pub(crate) preempted: f64,
    pub(crate) granted: f64,
    pub(crate) k_revoked: f64,
    pub(crate) k_expired: f64,
    pub(crate) reps: usize,
}

pub(crate) type Key = (Kind, usize, Variant);

pub(crate) fn summarize(cells: &[Cell]) -> BTreeMap<Key, Row> {
    let mut groups: BTreeMap<Key, Vec<&Cell>> = BTreeMap::new();
    for c in cells {
        groups
            .entry((c.kind, c.threads, c.variant))
            .or_default()
            .push(c);
    }
    groups
        .into_iter()
        .map(|(k, cs)| {
            let m = |f: &dyn Fn(&Cell) -> f64| median(cs.iter().map(|c| f(c)).collect());
            let ops = cs.iter().map(|c| c.ops_per_s());
            let mut pooled = cs[0].hist.clone();
            for c in &cs[1..] {
                // Same bounds everywhere: adding cannot fail.
                let _ = pooled.add(&c.hist);
            }
            let row = Row {
                ops_per_s: m(&|c| c.ops_per_s()),
                ops_min: ops.clone().fold(f64::INFINITY, f64::min),
                ops_max: ops.fold(0.0, f64::max),
                p999_ns: pooled.value_at_quantile(0.999) as f64,
                samples: pooled.len(),
                preempted: m(&|c| c.preempted as f64),
                granted: m(&|c| c.stats.granted as f64),
                k_revoked: m(&|c| c.kernel.map_or(f64::NAN, |k| k.revoked as f64)),
                k_expired: m(&|c| c.kernel.map_or(f64::NAN, |k| k.expired as f64)),
                reps: cs.len(),
            };
            (k, row)
        })
        .collect()
}

/// A median count, or `-` where the kernel's counters were not readable.
fn count(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{x:.0}")
    }
}

pub(crate) fn print_table(rows: &BTreeMap<Key, Row>, cli: &Cli, conditions: &Conditions) {
    println!("\nconditions: {conditions}");
    if let Some(w) = conditions.warning() {
        println!("{w}");
    }
    println!(
        "{:<11} {:>4} {:<9} {:>10} {:>17} {:>7} {:>11} {:>8} {:>7} {:>8} {:>8} {:>7} {:>7}",
        "kind",
        "thr",
        "variant",
        "ops/s",
        "[min-max]",
        "x off",
        "p99.9 µs",
        "samples",
        "x off",
        "preempt",
        "grants",
        "srevok",
        "sexpir"
    );
    for &kind in &cli.kinds {
        for &t in &cli.threads {
            let t = usize::from(t);
            let off = rows.get(&(kind, t, Variant::Off)).copied();
            for &v in &cli.variants {
                let Some(r) = rows.get(&(kind, t, v)) else {
                    continue;
                };
                let ratio = |a: f64, b: Option<f64>| {
                    b.filter(|_| v != Variant::Off)
                        .map_or(String::from("-"), |b| format!("{:.2}", a / b))
                };
                println!(
                    "{:<11} {:>4} {:<9} {:>10.0} {:>17} {:>7} {:>11.1} {:>8} {:>7} {:>8.0} {:>8.0} {:>7} {:>7}",
                    kind.to_string(),
                    t,
                    v.to_string(),
                    r.ops_per_s,
                    format!("[{:.0}-{:.0}]", r.ops_min, r.ops_max),
                    ratio(r.ops_per_s, off.map(|o| o.ops_per_s)),
                    r.p999_ns / 1000.0,
                    r.samples,
                    ratio(r.p999_ns, off.map(|o| o.p999_ns)),
                    r.preempted,
                    r.granted,
                    count(r.k_revoked),
                    count(r.k_expired),
                );
            }
        }
    }
    println!(
        "(medians of {} repeats, ops/s range over them; p99.9 of their pooled acquisitions; preempt = holds over {} µs; grants = sections that found `granted`; srevok/sexpir = the kernel's counts in the cell)",
        rows.values().map(|r| r.reps).max().unwrap_or(0),
        cli.preempted_us
    );
}
