//! Grant events, emitted outside the guards.
//!
//! A guard may drop inside a signal handler, where emitting a `tracing`
//! event (which takes locks and may allocate) is not allowed. So a guard only
//! counts its grant, in thread-local cells; the event is emitted here, at a
//! point that is never inside a signal handler: [`slice_critical`]'s polls
//! after their guard (on the span current there, the user's), the runtime
//! adapters at every section close, before parking and at thread stop, and
//! code that uses guards on its own threads calls
//! [`crate::diagnostics::report_grants`].
//!
//! [`slice_critical`]: crate::slice_critical

use crate::local::Local;

/// Emit one event for the grants `l` counted since the last report.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[cold]
#[inline(never)]
pub(crate) fn report(l: &Local) {
    #[cfg(feature = "tracing")]
    if let Some((granted, yielded)) = l.take_unreported() {
        tracing::trace!(
            target: "rseq_slice",
            granted,
            yielded,
            revoked = granted.saturating_sub(yielded),
            "time slice extensions granted"
        );
    }
}
