//! `locks.png`: ops/s and p99.9 against threads, a row per lock kind.

use std::collections::BTreeMap;
use std::path::Path;

use rseq_slice_lab::Conditions;

use crate::report::{Key, Row};
use crate::{Kind, Result, Variant};

pub(crate) fn plot(
    path: &Path,
    rows: &BTreeMap<Key, Row>,
    kinds: &[Kind],
    conditions: &Conditions,
) -> Result<()> {
    use plotters::prelude::*;
    let text = rseq_slice_lab::plot::text_ok();
    let (w, h) = (800u32, 220 * kinds.len().max(1) as u32 + 30);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let body = if text {
        root.titled(
            &format!(
                "one lock, T threads; {} vCPU, {}, slice_ext_nsec {}, rseq_debug {}; red off, blue always, green adaptive, black naive",
                conditions.cpus,
                conditions.clock,
                conditions.slice_ext_nsec,
                u8::from(conditions.rseq_debug)
            ),
            ("sans-serif", 13),
        )?
    } else {
        root.margin(30, 0, 0, 0)
    };
    let panels = body.split_evenly((kinds.len().max(1), 2));
    let colour = |v: Variant| match v {
        Variant::Off => RED,
        Variant::Always => BLUE,
        Variant::Adaptive => GREEN,
        Variant::Naive => BLACK,
    };
    for (i, &kind) in kinds.iter().enumerate() {
        for (j, metric) in ["ops/s", "p99.9 µs"].into_iter().enumerate() {
            let area = &panels[i * 2 + j];
            let series: Vec<(Variant, Vec<(f64, f64)>)> = [
                Variant::Off,
                Variant::Always,
                Variant::Adaptive,
                Variant::Naive,
            ]
            .into_iter()
            .map(|v| {
                let pts = rows
                    .iter()
                    .filter(|((k, _, vv), _)| *k == kind && *vv == v)
                    .map(|((_, t, _), r)| {
                        let y = if j == 0 {
                            r.ops_per_s
                        } else {
                            r.p999_ns / 1000.0
                        };
                        (*t as f64, y.max(1e-3))
                    })
                    .collect();
                (v, pts)
            })
            .filter(|(_, p): &(Variant, Vec<(f64, f64)>)| !p.is_empty())
            .collect();
            let all = series.iter().flat_map(|(_, p)| p.iter());
            let (mut xmax, mut ymin, mut ymax) = (2.0f64, f64::MAX, 0.0f64);
            for &(x, y) in all {
                xmax = xmax.max(x);
                ymin = ymin.min(y);
                ymax = ymax.max(y);
            }
            if ymax <= 0.0 {
                continue;
            }
            let mut b = ChartBuilder::on(area);
            b.margin(8);
            if text {
                b.caption(format!("{kind}: {metric}"), ("sans-serif", 14))
                    .x_label_area_size(22)
                    .y_label_area_size(55);
            }
            let mut chart = b.build_cartesian_2d(
                (1.0f64..xmax).log_scale(),
                (ymin.min(ymax / 4.0) * 0.8..ymax * 1.25).log_scale(),
            )?;
            let mut mesh = chart.configure_mesh();
            mesh.light_line_style(TRANSPARENT);
            if text {
                mesh.x_desc("threads")
                    .label_style(("sans-serif", 11))
                    .x_label_formatter(&|x| format!("{x:.0}"))
                    .y_label_formatter(&|y| {
                        if *y >= 1e4 {
                            format!("{:.0}k", y / 1e3)
                        } else {
                            format!("{y:.0}")
                        }
                    });
            } else {
                mesh.x_labels(0).y_labels(0);
            }
            mesh.draw()?;
            for (v, pts) in series {
                let c = colour(v);
                chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
                chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
            }
        }
    }
    root.present()?;
    Ok(())
}
