//! A configuration's capacity, measured with the `off` variant under the
//! configuration's noise: first closed-loop (every loadgen connection
//! back-to-back: completed requests per second after the warm-up), then,
//! unless `--closed-only`, open-loop at that rate: a service answering
//! requests that arrive one by one batches less than under a closed loop and
//! may not sustain it, and the answers per second it does sustain become
//! the capacity. The study offers fractions of the capacity to every variant
//! of the configuration, so all variants see the same absolute rates.

use anyhow::{Result, bail};
use rseq_slice_study::report::LoadReport;

use crate::plan::Config;
use crate::run::{Ctx, load, stage};

/// What calibrating one configuration measured.
#[derive(Debug)]
pub(crate) struct Capacity {
    /// Requests per second offered as load 1.0.
    pub(crate) rate: f64,
    /// The closed-loop run.
    pub(crate) closed: LoadReport,
    /// The open-loop check at the closed-loop rate.
    pub(crate) open: Option<LoadReport>,
}

/// Measure `config`'s capacity (req/s).
pub(crate) fn capacity(ctx: &Ctx, config: &Config, tag: &str, check: bool) -> Result<Capacity> {
    let secs = ctx.plan.calibrate_secs;
    let st = stage(ctx, config, &ctx.baseline, tag, 2.0 * secs)?;
    let closed = load(ctx, &st, &format!("{tag}-closed"), None, secs)?;
    let c = closed.throughput;
    if !(c.is_finite() && c >= 1.0) {
        bail!(
            "closed-loop capacity {c} req/s ({} errors): the service answered nothing",
            closed.errors
        );
    }
    let open = if check {
        Some(load(ctx, &st, &format!("{tag}-open"), Some(c), secs)?)
    } else {
        None
    };
    let rate = open.as_ref().map_or(c, |o| o.throughput.min(c)).max(1.0);
    Ok(Capacity { rate, closed, open })
}
