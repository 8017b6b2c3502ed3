//! `--summarize`: many runs' `locks.csv` (one per vCPU count and
//! `slice_ext_nsec`) in one markdown table and one figure of speed-ups.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use rseq_slice_lab::median;

use crate::Result;

/// The lines of the figure: (kind, variant, label, colour).
const SERIES: &[(&str, &str, &str, RGBColor)] = &[
    (
        "spin",
        "always",
        "spin, clear-and-recheck",
        RGBColor(30, 80, 200),
    ),
    ("spin", "naive", "spin, naive", RGBColor(0, 0, 0)),
    (
        "parking-lot",
        "always",
        "parking_lot",
        RGBColor(30, 150, 60),
    ),
    ("std", "always", "std", RGBColor(220, 120, 0)),
];

/// (vCPUs, slice_ext_nsec, kind, variant, threads).
type Key = (u32, u32, String, String, u32);

/// One cell's repeats: rep -> (ops/s, p99.9 ns, preempted holds, sgrant, srevok, sexpir).
type Reps = BTreeMap<u32, [f64; 6]>;

fn read(paths: &[PathBuf]) -> Result<BTreeMap<Key, Reps>> {
    let mut all: BTreeMap<Key, Reps> = BTreeMap::new();
    for p in paths {
        let mut r = csv::Reader::from_path(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let h = r.headers()?.clone();
        let col = |n: &str| {
            h.iter()
                .position(|c| c == n)
                .ok_or_else(|| format!("{}: no column {n}", p.display()))
        };
        let cols = [
            "cpus",
            "slice_ext_nsec",
            "kind",
            "variant",
            "threads",
            "rep",
            "ops_per_s",
            "p999_ns",
            "preempted_holds",
            "k_sgrant",
            "k_srevok",
            "k_sexpir",
        ]
        .map(col);
        let cols: Vec<usize> = cols.into_iter().collect::<std::result::Result<_, _>>()?;
        for row in r.records() {
            let row = row?;
            let s = |i: usize| row.get(cols[i]).unwrap_or("");
            let n = |i: usize| s(i).parse::<f64>().unwrap_or(f64::NAN);
            let key = (
                n(0) as u32,
                n(1) as u32,
                s(2).to_string(),
                s(3).to_string(),
                n(4) as u32,
            );
            let vals = [n(6), n(7), n(8), n(9), n(10), n(11)];
            all.entry(key).or_default().insert(n(5) as u32, vals);
        }
    }
    Ok(all)
}

/// Median and range over the repeats of (variant ÷ off) for metric `m`.
fn ratio(all: &BTreeMap<Key, Reps>, key: &Key, m: usize) -> Option<(f64, f64, f64)> {
    let on = all.get(key)?;
    let off = all.get(&(key.0, key.1, key.2.clone(), "off".into(), key.4))?;
    let rs: Vec<f64> = on
        .iter()
        .filter_map(|(rep, v)| off.get(rep).map(|o| v[m] / o[m]))
        .filter(|r| r.is_finite())
        .collect();
    if rs.is_empty() {
        return None;
    }
    let lo = rs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = rs.iter().copied().fold(0.0, f64::max);
    Some((median(rs), lo, hi))
}

fn med(all: &BTreeMap<Key, Reps>, key: &Key, m: usize) -> f64 {
    all.get(key)
        .map_or(f64::NAN, |r| median(r.values().map(|v| v[m]).collect()))
}

fn cell(x: Option<(f64, f64, f64)>) -> String {
    x.map_or("–".into(), |(m, lo, hi)| {
        format!("{m:.2} [{lo:.2}–{hi:.2}]")
    })
}

/// Print the table and draw `out`.
pub(crate) fn run(paths: &[PathBuf], out: &Path) -> Result<()> {
    let all = read(paths)?;
    let configs: BTreeSet<(u32, u32)> = all.keys().map(|k| (k.0, k.1)).collect();
    println!(
        "| vCPUs | slice_ext | T | spin off ops/s | recheck × | naive × | parking_lot × | std × | spin p99.9 off → recheck → naive (µs) | preempted holds off → recheck | sgrant/srevok/sexpir recheck | naive |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let key = |c: (u32, u32), k: &str, v: &str, t: u32| (c.0, c.1, k.to_string(), v.to_string(), t);
    for &c in &configs {
        let threads: BTreeSet<u32> = all
            .keys()
            .filter(|k| (k.0, k.1) == c)
            .map(|k| k.4)
            .collect();
        for &t in &threads {
            let m = |k: &str, v: &str, i: usize| med(&all, &key(c, k, v, t), i);
            let kc = |v: &str| {
                [3, 4, 5]
                    .map(|i| {
                        let x = m("spin", v, i);
                        if x.is_nan() {
                            "–".to_string()
                        } else {
                            format!("{x:.0}")
                        }
                    })
                    .join("/")
            };
            println!(
                "| {} | {} µs | {t} | {:.0}k | {} | {} | {} | {} | {:.0} → {:.0} → {:.0} | {:.0} → {:.0} | {} | {} |",
                c.0,
                c.1 / 1000,
                m("spin", "off", 0) / 1000.0,
                cell(ratio(&all, &key(c, "spin", "always", t), 0)),
                cell(ratio(&all, &key(c, "spin", "naive", t), 0)),
                cell(ratio(&all, &key(c, "parking-lot", "always", t), 0)),
                cell(ratio(&all, &key(c, "std", "always", t), 0)),
                m("spin", "off", 1) / 1000.0,
                m("spin", "always", 1) / 1000.0,
                m("spin", "naive", 1) / 1000.0,
                m("spin", "off", 2),
                m("spin", "always", 2),
                kc("always"),
                kc("naive"),
            );
        }
    }
    plot(&all, &configs, out)
}

fn plot(all: &BTreeMap<Key, Reps>, configs: &BTreeSet<(u32, u32)>, out: &Path) -> Result<()> {
    let text = rseq_slice_lab::plot::text_ok();
    let cpus: BTreeSet<u32> = configs.iter().map(|c| c.0).collect();
    let slices: BTreeSet<u32> = configs.iter().map(|c| c.1).collect();
    let (cols, rows) = (cpus.len().max(1), slices.len().max(1));
    let root =
        BitMapBackend::new(out, (320 * cols as u32, 260 * rows as u32 + 40)).into_drawing_area();
    root.fill(&WHITE)?;
    let body = if text {
        root.titled(
            "ops/s with the extension ÷ without, against threads (median, bars: range over repeats)",
            ("sans-serif", 14),
        )?
    } else {
        root.margin(30, 0, 0, 0)
    };
    let panels = body.split_evenly((rows, cols));
    let ymax = all
        .keys()
        .filter_map(|k| ratio(all, k, 0).map(|r| r.2))
        .fold(2.0f64, f64::max);
    for (i, &slice) in slices.iter().enumerate() {
        for (j, &n) in cpus.iter().enumerate() {
            let area = &panels[i * cols + j];
            let tmax = all
                .keys()
                .filter(|k| (k.0, k.1) == (n, slice))
                .map(|k| k.4)
                .max()
                .unwrap_or(2)
                .max(2);
            let mut b = ChartBuilder::on(area);
            b.margin(8);
            if text {
                b.caption(
                    format!("{n} vCPU, slice_ext_nsec {} µs", slice / 1000),
                    ("sans-serif", 13),
                )
                .x_label_area_size(20)
                .y_label_area_size(36);
            }
            let mut chart = b.build_cartesian_2d(
                (0.8f64..tmax as f64 * 1.25).log_scale(),
                (0.5f64..ymax * 1.3).log_scale(),
            )?;
            let mut mesh = chart.configure_mesh();
            mesh.light_line_style(TRANSPARENT);
            if text {
                mesh.x_desc("threads")
                    .label_style(("sans-serif", 11))
                    .x_label_formatter(&|x| format!("{x:.0}"))
                    .y_label_formatter(&|y| format!("{y:.1}"));
            } else {
                mesh.x_labels(0).y_labels(0);
            }
            mesh.draw()?;
            for &(kind, variant, label, colour) in SERIES {
                let pts: Vec<(f64, (f64, f64, f64))> = all
                    .keys()
                    .filter(|k| (k.0, k.1, k.2.as_str(), k.3.as_str()) == (n, slice, kind, variant))
                    .filter_map(|k| ratio(all, k, 0).map(|r| (k.4 as f64, r)))
                    .collect();
                let s = chart.draw_series(LineSeries::new(
                    pts.iter().map(|&(x, (m, _, _))| (x, m)),
                    colour.stroke_width(2),
                ))?;
                if text && i == 0 && j == 0 {
                    s.label(label).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                    });
                }
                chart.draw_series(pts.iter().map(|&(x, (m, lo, hi))| {
                    ErrorBar::new_vertical(x, lo, m, hi, colour.filled(), 6)
                }))?;
            }
            if text && i == 0 && j == 0 {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .label_font(("sans-serif", 11))
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()?;
            }
        }
    }
    root.present()?;
    println!("lock_holder_preemption: wrote {}", out.display());
    Ok(())
}
