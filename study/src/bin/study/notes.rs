//! The lines table.md gives under each configuration's table: the hot
//! lock's hold times, loadgen's own CPU use, answers that were not 2xx,
//! cells whose runs were offered different rates, and `cpu.max`
//! throttling, each only where the runs recorded it.

use std::fmt::Write as _;

use crate::plan::Config;
use crate::stats::{CLIENT_BOUND, Summary};
use crate::table::{f, level};

/// The notes for `config`'s cells; `base` is the baseline variant.
pub(crate) fn notes(cells: &[Summary], config: &Config, base: &str) -> String {
    let mut t = String::new();
    let throttled: Vec<String> = cells
        .iter()
        .filter(|s| &s.config == config)
        .filter_map(|s| {
            let [n, ms] = s.throttled?;
            Some(format!(
                "{} {} {}: {} periods, {} ms",
                level(s),
                s.variant,
                s.rate.round(),
                f(n, 0),
                f(ms, 0)
            ))
        })
        .collect();
    if let Some(s) = cells
        .iter()
        .find(|s| &s.config == config && s.variant == base && s.lock_hold_ns[0].is_finite())
    {
        let [p50, p99] = s.lock_hold_ns;
        let _ = write!(
            t,
            "\nHot-lock holds under `{base}` (the service's own timing, median per run): p50 {} ns, p99 {} ns.\n",
            f(p50, 0),
            f(p99, 0)
        );
    }
    let client: Vec<String> = cells
        .iter()
        .filter(|s| &s.config == config && s.variant == base && s.client_cpu.is_finite())
        .map(|s| format!("{} {:.2}", level(s), s.client_cpu))
        .collect();
    if !client.is_empty() {
        let _ = write!(
            t,
            "\nloadgen's own CPU use under `{base}` (median per run, 1.00: a CPU busy throughout; a run at {CLIENT_BOUND:.2} or more measured the client and counts as unstable): {}.\n",
            client.join("; ")
        );
    }
    let odd: Vec<String> = cells
        .iter()
        .filter(|s| &s.config == config && s.statuses.keys().any(|&c| !(200..300).contains(&c)))
        .map(|s| {
            let codes: Vec<String> = s
                .statuses
                .iter()
                .map(|(c, n)| format!("{c}: {n}"))
                .collect();
            format!("{} {} {}", level(s), s.variant, codes.join(", "))
        })
        .collect();
    if !odd.is_empty() {
        let _ = write!(
            t,
            "\nAnswers by status code where any was not 2xx (all runs; 5xx also count as errors): {}.\n",
            odd.join("; ")
        );
    }
    let mixed: Vec<String> = cells
        .iter()
        .filter(|s| &s.config == config && !s.one_rate())
        .map(|s| {
            let list = |v: &[f64]| {
                v.iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if s.rates.len() > 1 {
                format!("{} {} {} req/s", level(s), s.variant, list(&s.rates))
            } else {
                format!(
                    "{} {} {} req/s against {base}'s {} req/s",
                    level(s),
                    s.variant,
                    list(&s.rates),
                    list(&s.off_rates)
                )
            }
        })
        .collect();
    if !mixed.is_empty() {
        let _ = write!(
            t,
            "\n**Rates that differ** (every boot must offer a cell, and its `{base}` cell, one rate: a cell of several rates mixes loads; no claim): {}.\n",
            mixed.join("; ")
        );
    }
    if !throttled.is_empty() {
        let _ = write!(
            t,
            "\nThrottled by `cpu.max` (the service's cgroup, `cpu.stat`, median per run): {}.\n",
            throttled.join("; ")
        );
    }
    t
}
