//! The cells' statistics on made-up runs.

use hdrhistogram::Histogram;
use rseq_slice_study::report::summarize as report;

use super::*;
use crate::plan::Cell;
use crate::store::tests::record;

/// A run: 5 000 requests of `scale * (100..1100)` µs, from `boot`.
fn run(variant: &str, repeat: u32, scale: f64, boot: &str) -> Record {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for i in 0..5_000u64 {
        h.record((scale * (100 + i % 1000) as f64) as u64).unwrap();
    }
    let mut r = record(&format!("{variant}{repeat}{boot}"), true);
    r.boot = boot.into();
    r.cell = Some(Cell {
        config: r.config.clone(),
        level: 0.5,
        absolute: false,
        variant: variant.into(),
        repeat,
    });
    let svc = serde_json::json!({"slice_granted": 50, "lock_wait_ns": {"p99": 7}});
    r.report = Some(report(&h, 100.0, 60.0, 5_000, 5_000, 0, 0, 50.0, svc));
    r
}

/// 10 runs a side from 2 boots, run-to-run differences of a few %.
pub(crate) fn matrix(locks_scale: f64) -> Vec<Record> {
    (0..10)
        .flat_map(|k| {
            let boot = if k < 5 { "1" } else { "2" };
            let jitter = 1.0 + 0.01 * f64::from(k % 5);
            [
                run("locks", k, locks_scale * jitter, boot),
                run("off", k, jitter * 1.002, boot),
                run(CONTROL, k, jitter, boot),
            ]
        })
        .collect()
}

#[test]
fn runs_are_the_unit_and_rows_come_in_order() {
    let rs = matrix(2.0);
    let cells = summarize(&rs);
    let order: Vec<&str> = cells.iter().map(|c| c.variant.as_str()).collect();
    assert_eq!(order, ["off", CONTROL, "locks"]);
    let (off, control, locks) = (&cells[0], &cells[1], &cells[2]);
    assert!(off.ratio.is_none() && off.runs == 10 && off.boots == 2);
    // Every figure lies within its runs' range.
    for s in &cells {
        for j in 0..3 {
            let q = s.q[j];
            assert!(q.lowest <= q.median && q.median <= q.highest, "{q:?}");
        }
    }
    assert_eq!(locks.standing(), Standing::Claim);
    assert!((0..3).all(|j| locks.significant(j) == Some(true)));
    let r = locks.ratio.unwrap()[2].ratio;
    assert!((r.est - 2.0).abs() < 0.1, "{r:?}");
    assert!((0..3).all(|j| control.significant(j) == Some(false)));
    assert_eq!(control_false_positives(&cells), (3, 0, 0));
    assert_eq!((off.grants_per_1k, off.lock_wait_ns[1]), (10.0, 7.0));
}

#[test]
fn no_claim_from_few_runs_one_boot_or_an_unstable_run() {
    let few: Vec<Record> = matrix(2.0).into_iter().filter(|r| r.boot == "1").collect();
    let cells = summarize(&few);
    assert_eq!(cells[2].standing(), Standing::FewRuns);
    assert_eq!(cells[2].significant(2), Some(false));
    let mut one = matrix(2.0);
    for r in &mut one {
        r.boot = "1".into();
    }
    assert_eq!(summarize(&one)[2].standing(), Standing::OneBoot);
    let mut slow = matrix(2.0);
    if let Some(p) = slow[1].report.as_mut() {
        p.ok_measured = 4_900;
    }
    let cells = summarize(&slow);
    assert_eq!(cells[0].unstable, 1);
    assert_eq!(cells[2].standing(), Standing::Unstable);
    assert_eq!(cells[2].significant(2), Some(false));
}

#[test]
fn a_growing_backlog_is_unstable() {
    let mut r = run("off", 0, 1.0, "1");
    assert!(stable(&r));
    r.report.as_mut().unwrap().halves_p50 = [200, 3_000];
    assert!(!stable(&r));
    r.report.as_mut().unwrap().halves_p50 = [200, 800];
    assert!(stable(&r));
}

#[test]
fn a_busy_client_makes_a_run_unstable() {
    let mut r = run("off", 0, 1.0, "1");
    r.report.as_mut().unwrap().client_cpu = Some(0.5);
    assert!(stable(&r));
    r.report.as_mut().unwrap().client_cpu = Some(0.95);
    assert!(!stable(&r), "loadgen near a whole CPU measured itself");
}

#[test]
fn slo_capacity_takes_the_highest_rate_that_holds() {
    let rs = matrix(2.0);
    let cells = summarize(&rs);
    let caps = slo_capacity(&cells, 1_500.0);
    let get = |v: &str| caps.iter().find(|c| c.1 == v).unwrap().2;
    assert_eq!(get("off"), Some(100.0));
    assert_eq!(get("locks"), None, "p99.9 about 2.2 ms");
}

#[test]
fn a_cell_whose_boots_offered_different_rates_is_no_claim() {
    // Boot 2 offered 105 req/s where boot 1 offered 100: every cell mixes
    // two rates.
    let mut mixed = matrix(2.0);
    for r in mixed.iter_mut().filter(|r| r.boot == "2") {
        r.rate = 105.0;
    }
    let cells = summarize(&mixed);
    assert_eq!(cells[2].rates, [100.0, 105.0]);
    assert_eq!(cells[2].standing(), Standing::MixedRates);
    assert_eq!(cells[2].significant(2), Some(false));
    let t = crate::table::markdown(&cells, &[], 1_500.0);
    let locks = t.lines().find(|l| l.contains("| locks |")).unwrap();
    assert!(
        !locks.contains(" *") && locks.contains("(rates differ)"),
        "{locks}"
    );
    assert!(
        t.contains("50 % off 100, 105 req/s; 50 % control 100, 105 req/s"),
        "{t}"
    );
    // Each cell at one rate, but `locks` at another than `off`'s.
    let mut apart = matrix(2.0);
    for r in apart
        .iter_mut()
        .filter(|r| r.cell.as_ref().unwrap().variant == "locks")
    {
        r.rate = 105.0;
    }
    let cells = summarize(&apart);
    assert_eq!((cells[0].rates.len(), cells[2].rates.len()), (1, 1));
    assert_eq!(cells[2].standing(), Standing::MixedRates);
    assert_eq!(
        cells[1].standing(),
        Standing::Claim,
        "control ran at off's rate"
    );
    let t = crate::table::markdown(&cells, &[], 1_500.0);
    assert!(
        t.contains("50 % locks 105 req/s against off's 100 req/s."),
        "{t}"
    );
}

#[test]
fn the_holm_family_is_every_planned_comparison_whatever_the_runs_gave() {
    // control and locks against off, at p50, p99, p99.9: 6 comparisons,
    // even where control's cell has an unstable run and cannot be claimed.
    let mut rs = matrix(2.0);
    let c = rs
        .iter_mut()
        .find(|r| r.cell.as_ref().unwrap().variant == CONTROL)
        .unwrap();
    c.report.as_mut().unwrap().ok_measured = 4_900;
    let cells = summarize(&rs);
    let (control, locks) = (&cells[1], &cells[2]);
    assert_eq!(control.standing(), Standing::Unstable);
    let p = locks.ratio.unwrap().map(|s| s.p);
    // 10 runs a side wholly apart: p = 2 / C(20, 10), the smallest of the 6.
    assert!((p[2] - 2.0 / 184_756.0).abs() < 1e-12, "{p:?}");
    for (j, p) in p.into_iter().enumerate() {
        let adjusted = locks.p_adjusted[j];
        assert!(
            (adjusted - 6.0 * p).abs() < 1e-12,
            "quantile {j}: {adjusted} for p {p}"
        );
        assert_eq!(locks.significant(j), Some(true));
        assert_eq!(control.significant(j), Some(false));
    }
    // A planned variant whose every run failed still counts: 9 comparisons.
    let mut failed = run("sched", 0, 1.0, "1");
    (failed.ok, failed.report) = (false, None);
    rs.push(failed);
    assert_eq!(family(&rs).len(), 3);
    let cells = summarize(&rs);
    assert_eq!(cells.len(), 3, "no cell for sched");
    let p = cells[2].ratio.unwrap()[2].p;
    assert!((cells[2].p_adjusted[2] - 9.0 * p).abs() < 1e-12);
}

/// `matrix` with each side's runs laid over the boots as given: `locks`
/// and `control` have `split.0` runs in boot 1, `off` has `split.1`.
fn laid_out(split: (u32, u32)) -> Vec<Record> {
    let mut rs = matrix(2.0);
    for r in &mut rs {
        let c = r.cell.as_ref().unwrap();
        let first = if c.variant == "off" { split.1 } else { split.0 };
        r.boot = if c.repeat < first { "1" } else { "2" }.into();
    }
    rs
}

#[test]
fn a_split_of_runs_over_boots_that_does_not_hold_the_level_is_no_claim() {
    // 7/3 on both sides, as --resume leaves it: the level holds.
    let cells = summarize(&laid_out((7, 7)));
    assert_eq!(cells[2].split, [(7, 7), (3, 3)]);
    assert!(cells[2].split_false_positive <= 0.05);
    assert_eq!(cells[2].standing(), Standing::Claim);
    // 8/2 against off's 2/8: boot effects fall on one side, and the
    // simulated A/A rate of that split is far above 5 %.
    let cells = summarize(&laid_out((8, 2)));
    let locks = &cells[2];
    assert_eq!(locks.split, [(8, 2), (2, 8)]);
    assert!(
        locks.split_false_positive > 0.1,
        "{}",
        locks.split_false_positive
    );
    assert_eq!(locks.standing(), Standing::Unbalanced);
    assert_eq!(locks.significant(2), Some(false));
    let t = crate::table::markdown(&cells, &[], 1_500.0);
    let row = t.lines().find(|l| l.contains("| locks |")).unwrap();
    assert!(
        !row.contains(" *") && row.contains("(split 8/2 vs 2/8: A/A 22 %)"),
        "{row}"
    );
}
