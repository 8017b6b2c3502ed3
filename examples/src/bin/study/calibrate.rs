//! A configuration's capacity: the `off` variant under the configuration's
//! noise, loaded closed-loop (every loadgen connection back-to-back); its
//! completed requests per second after the warm-up. The study offers
//! fractions of it to every variant of the configuration, so all variants
//! see the same absolute rates.

use anyhow::{Result, bail};
use rseq_slice_examples::report::LoadReport;

use crate::plan::Config;
use crate::run::{Ctx, load, stage};

/// Measure `config`'s capacity (req/s) and the closed-loop report.
pub(crate) fn capacity(ctx: &Ctx, config: &Config, tag: &str) -> Result<(f64, LoadReport)> {
    let secs = ctx.plan.calibrate_secs;
    let st = stage(ctx, config, "off", tag, secs)?;
    let report = load(ctx, &st, tag, None, secs)?;
    drop(st);
    let c = report.throughput;
    if !(c.is_finite() && c >= 1.0) {
        bail!(
            "capacity {c} req/s ({} errors): the service answered nothing",
            report.errors
        );
    }
    Ok((c, report))
}
