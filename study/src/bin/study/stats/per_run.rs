//! One run's own figures: whether it kept up with its load, and its
//! client-side and service-side quantiles.

use rseq_slice_lab::Weighted;
use rseq_slice_study::report::decode_hist;

use super::QS;
use crate::store::Record;

/// A run is unstable when it answered fewer than this share of the
/// requests scheduled in its measured window...
const KEEP_UP: f64 = 0.99;

/// ...or when the median of its second half exceeds twice its first
/// half's plus this much, µs (a backlog that grows)...
const BACKLOG_US: f64 = 500.0;

/// ...or when loadgen used this share of a CPU or more (a busier client
/// queues requests itself).
pub(crate) const CLIENT_BOUND: f64 = 0.9;

/// Whether a run kept up with its offered rate: it answered at least
/// [`KEEP_UP`] of the requests scheduled in its measured window, none was
/// missing at the end, its second half's median is not more than twice the
/// first's plus [`BACKLOG_US`], and loadgen used under [`CLIENT_BOUND`] of
/// a CPU. An unstable run measures a queue, not the service's tail.
///
/// Answers are counted against the requests scheduled, not taken as a rate
/// up to the last answer: over a short window such a rate falls with the
/// lateness of the last few answers (the tail), which is not a backlog.
pub(crate) fn stable(r: &Record) -> bool {
    r.report.as_ref().is_some_and(|p| {
        let [a, b] = p.halves_p50.map(|x| x as f64);
        let backlog = a > 0.0 && b > 2.0 * a + BACKLOG_US;
        // The window's requests: those answered, and those missing (every
        // one of which loadgen recorded at its age at the end).
        let window = latencies(r).map_or(0, |w| w.len());
        let answered = p.ok_measured as f64 >= KEEP_UP * window as f64;
        let client_bound = p.client_cpu.is_some_and(|c| c >= CLIENT_BOUND);
        answered && window > 0 && p.missing == 0 && !backlog && !client_bound
    })
}

/// A run's latencies, from its histogram.
pub(super) fn latencies(r: &Record) -> Option<Weighted> {
    let h = decode_hist(&r.report.as_ref()?.hist).ok()?;
    let w = Weighted::from_counts(
        h.iter_recorded()
            .map(|v| (v.value_iterated_to() as f64, v.count_since_last_iteration())),
    );
    (!w.is_empty()).then_some(w)
}

/// A run's service-side latencies over its measured window: the service's
/// `served_hist` at the end, which holds the requests loadgen marked as
/// measured. None where the service has none.
fn served(r: &Record) -> Option<Weighted> {
    let p = r.report.as_ref()?;
    let end = decode_hist(p.service["served_hist"].as_str()?).ok()?;
    let w = Weighted::from_counts(
        end.iter_recorded()
            .map(|v| (v.value_iterated_to() as f64, v.count_since_last_iteration())),
    );
    (!w.is_empty()).then_some(w)
}

/// A run's service-side p50, p99 and p99.9, µs (NaN where not recorded).
pub(crate) fn served_quantiles(r: &Record) -> [f64; 3] {
    served(r).map_or([f64::NAN; 3], |w| QS.map(|q| w.quantile(q)))
}

/// A run's p50, p99 and p99.9, µs (NaN without a histogram).
pub(crate) fn run_quantiles(r: &Record) -> [f64; 3] {
    latencies(r).map_or([f64::NAN; 3], |w| QS.map(|q| w.quantile(q)))
}
