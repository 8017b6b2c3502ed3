//! Grant events, emitted outside the guards.
//!
//! A guard may drop inside a signal handler, where emitting a `tracing`
//! event (which takes locks and may allocate) is not allowed. So a guard only
//! counts its grant, in thread-local cells; the event is emitted here, at a
//! point that is never inside a signal handler: the runtime adapters report
//! at every section close, before parking and at thread stop, and code that
//! uses guards on its own threads calls [`crate::diagnostics::report_grants`].

use crate::local::Local;

/// Emit one event for the grants `l` counted since the last report.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn report(l: &Local) {
    #[cfg(feature = "tracing")]
    if let Some((grants, yielded)) = l.take_unreported() {
        tracing::trace!(
            target: "rseq_slice",
            grants,
            yielded,
            "time slice extensions granted"
        );
    }
}
