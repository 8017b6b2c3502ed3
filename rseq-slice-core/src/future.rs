//! `slice_critical`: every poll of a future under a guard, on any executor.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::guard::SliceGuard;

pin_project_lite::pin_project! {
    /// The future [`slice_critical`] returns.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct SliceCritical<F> {
        #[pin]
        inner: F,
    }
}

/// Run each poll of `fut` as a critical section: the thread asks not to be
/// preempted while the future runs, and gets no such protection while it
/// waits. Works on any executor, on any thread: a thread that never called
/// [`init`](crate::init) (the one that calls a runtime's `block_on`, say)
/// is initialised at its first such poll. Where the extension is off it
/// costs about nothing.
///
/// Each poll should be short (a grant lasts 5 µs by default): wrap the part
/// that holds a lock, not a whole request handler. With the `tracing`
/// feature, a poll that got a grant emits one `TRACE` event after its guard,
/// on the span current there (yours): see
/// [`report_grants`](crate::diagnostics::report_grants).
///
/// ```
/// # futures_lite_block_on(async {
/// let n = rseq_slice_core::slice_critical(async { 40 + 2 }).await;
/// assert_eq!(n, 42);
/// # });
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// ```
pub fn slice_critical<F: Future>(fut: F) -> SliceCritical<F> {
    SliceCritical { inner: fut }
}

impl<F: Future> Future for SliceCritical<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let out = {
            let _g = SliceGuard::initialising();
            self.project().inner.poll(cx)
        };
        // Outside the guard, on the caller's span: the grants of this poll.
        #[cfg(feature = "tracing")]
        crate::local::LOCAL.with(|l| {
            if l.has_unreported() {
                crate::grant_events::report(l);
            }
        });
        out
    }
}
