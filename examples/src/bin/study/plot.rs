//! The study's two PNG plots (plotters, bitmap backend). Text uses a system
//! TrueType font through `ab_glyph`; without one, the plots are drawn
//! without text, and a line says so.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use rseq_slice_lab::plot::text_ok;

use crate::{Cell, Plan};

fn color(variant: &str) -> RGBColor {
    match variant {
        "off" => RGBColor(200, 40, 40),
        "sched" => RGBColor(40, 90, 200),
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
        (1.0, 10.0)
    } else {
        (lo / 1.5, hi * 1.5)
    }
}

/// Latency by percentile (log axes), one panel per noise level and rate,
/// one line per variant (the median over repeats at each percentile).
pub(crate) fn latency(path: &Path, plan: &Plan, cells: &[Cell], title: &str) -> Result<()> {
    let text = text_ok();
    let (rows, cols) = (plan.noise.len().max(1), plan.rates.len().max(1));
    let root =
        BitMapBackend::new(path, (420 * cols as u32, 320 * rows as u32 + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let root = if text {
        root.titled(
            &format!("Latency by percentile: {title}"),
            ("sans-serif", 13),
        )
        .map_err(e)?
    } else {
        root.margin(40, 0, 0, 0)
    };
    let panels = root.split_evenly((rows, cols));
    for (ri, &noise) in plan.noise.iter().enumerate() {
        for (ci, &rate) in plan.rates.iter().enumerate() {
            let area = &panels[ri * cols + ci];
            let mine: Vec<&Cell> = cells
                .iter()
                .filter(|c| c.noise == noise && c.rate == rate)
                .collect();
            let (lo, hi) = bounds(mine.iter().flat_map(|c| c.curve.iter().map(|p| p.1)));
            let mut b = ChartBuilder::on(area);
            b.margin(8);
            if text {
                b.caption(format!("noise {noise}, {rate} req/s"), ("sans-serif", 16))
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
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(e)?;
            }
        }
    }
    root.present().map_err(e)?;
    Ok(())
}

/// p99.9 against the request rate, one panel per noise level, one line per
/// variant (median; the bar spans min to max over the repeats).
pub(crate) fn p999_vs_load(path: &Path, plan: &Plan, cells: &[Cell], title: &str) -> Result<()> {
    let text = text_ok();
    let n = plan.noise.len().max(1);
    let root = BitMapBackend::new(path, (420 * n as u32, 360)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let root = if text {
        root.titled(&format!("p99.9 against load: {title}"), ("sans-serif", 13))
            .map_err(e)?
    } else {
        root.margin(40, 0, 0, 0)
    };
    let panels = root.split_evenly((1, n));
    let rmax = plan.rates.iter().copied().fold(0.0, f64::max);
    let rmin = plan.rates.iter().copied().fold(f64::MAX, f64::min);
    let pad = ((rmax - rmin) * 0.1).max(rmax * 0.1).max(1.0);
    for (i, &noise) in plan.noise.iter().enumerate() {
        let mine: Vec<&Cell> = cells.iter().filter(|c| c.noise == noise).collect();
        let (lo, hi) = bounds(mine.iter().flat_map(|c| [c.p999.min, c.p999.max]));
        let mut b = ChartBuilder::on(&panels[i]);
        b.margin(8);
        if text {
            b.caption(format!("noise {noise}"), ("sans-serif", 16))
                .x_label_area_size(30)
                .y_label_area_size(55);
        }
        let mut chart = b
            .build_cartesian_2d((rmin - pad)..(rmax + pad), (lo..hi).log_scale())
            .map_err(e)?;
        if text {
            chart
                .configure_mesh()
                .x_desc("req/s")
                .y_desc("p99.9 µs")
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
        for v in &plan.variants {
            let col = color(v);
            let mut vc: Vec<&&Cell> = mine.iter().filter(|c| &c.variant == v).collect();
            vc.sort_by(|a, b| a.rate.total_cmp(&b.rate));
            let s = chart
                .draw_series(LineSeries::new(
                    vc.iter().map(|c| (c.rate, c.p999.med)),
                    col.stroke_width(2),
                ))
                .map_err(e)?;
            if text {
                s.label(v.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(2))
                });
            }
            chart
                .draw_series(
                    vc.iter()
                        .map(|c| Circle::new((c.rate, c.p999.med), 3, col.filled())),
                )
                .map_err(e)?;
            chart
                .draw_series(vc.iter().map(|c| {
                    PathElement::new(
                        vec![(c.rate, c.p999.min), (c.rate, c.p999.max)],
                        col.stroke_width(1),
                    )
                }))
                .map_err(e)?;
        }
        if text {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(e)?;
        }
    }
    root.present().map_err(e)?;
    Ok(())
}
