//! The study's PNG plots (plotters, bitmap backend): latency by percentile,
//! and p99 / p99.9 against load with their intervals. Text uses a system
//! TrueType font through `ab_glyph`; without one, the plots are drawn
//! without text, and a line says so.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use rseq_slice_lab::plot::text_ok;

use crate::plan::Config;
use crate::stats::Summary;

/// The variants' legend, at the top left of `chart`.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(e)
}

/// The configurations and levels of `cells`, in first-seen order.
fn axes(cells: &[Summary]) -> (Vec<&Config>, Vec<f64>) {
    let (mut cs, mut ls): (Vec<&Config>, Vec<f64>) = (Vec::new(), Vec::new());
    for c in cells {
        if !cs.contains(&&c.config) {
            cs.push(&c.config);
        }
        if !ls.contains(&c.level) {
            ls.push(c.level);
        }
    }
    ls.sort_by(f64::total_cmp);
    (cs, ls)
}

fn color(variant: &str) -> RGBColor {
    match variant {
        "off" => RGBColor(200, 40, 40),
        "sched" => RGBColor(40, 90, 200),
        "polls" => RGBColor(220, 140, 20),
        _ => RGBColor(30, 150, 60),
    }
}

/// x position of a percentile: -log10(1 - p), i.e. 90% -> 1, 99.9% -> 3.
fn px(p: f64) -> f64 {
    -(1.0 - p / 100.0).max(1e-5).log10()
}

fn e<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e:?}")
}

fn bounds(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = vals
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi <= 0.0 {
        return (1.0, 10.0);
    }
    let (lo, hi) = (lo / 1.5, hi * 1.5);
    // A log axis gets labels only where a power of ten lies inside it.
    let decade = 10f64.powf(hi.log10().floor());
    (if decade > lo { lo } else { decade }, hi)
}

/// Latency by percentile (log axes), one panel per configuration (rows) and
/// level (columns), one line per variant (the pooled runs' latencies).
pub(crate) fn latency(path: &Path, cells: &[Summary], title: &str) -> Result<()> {
    let text = text_ok();
    let (configs, levels) = axes(cells);
    let (rows, cols) = (configs.len().max(1), levels.len().max(1));
    let root = BitMapBackend::new(path, ((420 * cols as u32).max(900), 320 * rows as u32 + 40))
        .into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let root = if text {
        root.titled(
            &format!("Latency by percentile: {title}"),
            ("sans-serif", 11),
        )
        .map_err(e)?
    } else {
        root.margin(40, 0, 0, 0)
    };
    let panels = root.split_evenly((rows, cols));
    for (ri, &config) in configs.iter().enumerate() {
        for (ci, &level) in levels.iter().enumerate() {
            let area = &panels[ri * cols + ci];
            let mine: Vec<&Summary> = cells
                .iter()
                .filter(|c| &c.config == config && c.level == level)
                .collect();
            let Some(first) = mine.first() else { continue };
            let what = if first.absolute {
                format!("{level} req/s")
            } else {
                format!("{:.0} % load ({:.0} req/s)", level * 100.0, first.rate)
            };
            let (lo, hi) = bounds(mine.iter().flat_map(|c| c.curve.iter().map(|p| p.1)));
            let mut b = ChartBuilder::on(area);
            b.margin(8);
            if text {
                b.caption(format!("{}: {what}", config.label()), ("sans-serif", 11))
                    .x_label_area_size(30)
                    .y_label_area_size(55);
            }
            let mut chart = b
                .build_cartesian_2d(0f64..4.2f64, (lo..hi).log_scale())
                .map_err(e)?;
            if text {
                chart
                    .configure_mesh()
                    .x_labels(6)
                    .x_label_formatter(&|x| {
                        let p = 100.0 * (1.0 - 10f64.powf(-x));
                        format!("{p:.2}%").replace(".00%", "%")
                    })
                    .y_desc("µs")
                    .y_label_formatter(&|v| format!("{v:.0}"))
                    .draw()
                    .map_err(e)?;
            } else {
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .disable_y_mesh()
                    .draw()
                    .map_err(e)?;
            }
            for c in &mine {
                let pts: Vec<(f64, f64)> = c
                    .curve
                    .iter()
                    .filter(|(p, v)| *p < 100.0 && v.is_finite() && *v > 0.0)
                    .map(|&(p, v)| (px(p), v))
                    .collect();
                let col = color(&c.variant);
                let s = chart
                    .draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))
                    .map_err(e)?;
                if text {
                    s.label(c.variant.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(2))
                    });
                }
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 2, col.filled())))
                    .map_err(e)?;
            }
            if text {
                legend(&mut chart)?;
            }
        }
    }
    root.present().map_err(e)?;
    Ok(())
}

/// Quantile `j` of `stats::QS` (1: p99, 2: p99.9) against the load, one
/// panel per configuration, one line per variant; bars span the 95 %
/// interval.
pub(crate) fn q_vs_load(path: &Path, j: usize, cells: &[Summary], title: &str) -> Result<()> {
    let text = text_ok();
    let name = ["p50", "p99", "p99.9"][j.min(2)];
    let (configs, levels) = axes(cells);
    let n = configs.len().max(1);
    let cols = n.min(3);
    let rows = n.div_ceil(cols);
    let root = BitMapBackend::new(path, ((460 * cols as u32).max(900), 360 * rows as u32 + 40))
        .into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let root = if text {
        root.titled(&format!("{name} against load: {title}"), ("sans-serif", 11))
            .map_err(e)?
    } else {
        root.margin(40, 0, 0, 0)
    };
    let panels = root.split_evenly((rows, cols));
    let absolute = cells.first().is_some_and(|c| c.absolute);
    let (lmin, lmax) = (
        levels.first().copied().unwrap_or(0.0),
        levels.last().copied().unwrap_or(1.0),
    );
    let pad = ((lmax - lmin) * 0.1).max(lmax * 0.05).max(1e-3);
    for (i, &config) in configs.iter().enumerate() {
        let mine: Vec<&Summary> = cells.iter().filter(|c| &c.config == config).collect();
        let (lo, hi) = bounds(
            mine.iter()
                .flat_map(|c| [c.q[j].lowest, c.q[j].highest, c.q[j].median]),
        );
        let mut b = ChartBuilder::on(&panels[i]);
        b.margin(8);
        if text {
            b.caption(config.label(), ("sans-serif", 12))
                .x_label_area_size(30)
                .y_label_area_size(55);
        }
        let mut chart = b
            .build_cartesian_2d((lmin - pad)..(lmax + pad), (lo..hi).log_scale())
            .map_err(e)?;
        if text {
            chart
                .configure_mesh()
                .x_desc(if absolute {
                    "req/s"
                } else {
                    "load (fraction of capacity)"
                })
                .y_desc(format!("{name} µs"))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .draw()
                .map_err(e)?;
        } else {
            chart
                .configure_mesh()
                .disable_x_mesh()
                .disable_y_mesh()
                .draw()
                .map_err(e)?;
        }
        let mut variants: Vec<&str> = Vec::new();
        for c in &mine {
            if !variants.contains(&c.variant.as_str()) {
                variants.push(&c.variant);
            }
        }
        for v in variants {
            let col = color(v);
            let mut vc: Vec<&&Summary> = mine.iter().filter(|c| c.variant == v).collect();
            vc.sort_by(|a, b| a.level.total_cmp(&b.level));
            let ok = |x: f64| x.is_finite() && x > 0.0;
            let s = chart
                .draw_series(LineSeries::new(
                    vc.iter()
                        .filter(|c| ok(c.q[j].median))
                        .map(|c| (c.level, c.q[j].median)),
                    col.stroke_width(2),
                ))
                .map_err(e)?;
            if text {
                s.label(v.to_string()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(2))
                });
            }
            chart
                .draw_series(
                    vc.iter()
                        .filter(|c| ok(c.q[j].median))
                        .map(|c| Circle::new((c.level, c.q[j].median), 3, col.filled())),
                )
                .map_err(e)?;
            chart
                .draw_series(
                    vc.iter()
                        .filter(|c| ok(c.q[j].lowest) && ok(c.q[j].highest))
                        .map(|c| {
                            PathElement::new(
                                vec![(c.level, c.q[j].lowest), (c.level, c.q[j].highest)],
                                col.stroke_width(1),
                            )
                        }),
                )
                .map_err(e)?;
        }
        if text {
            legend(&mut chart)?;
        }
    }
    root.present().map_err(e)?;
    Ok(())
}
