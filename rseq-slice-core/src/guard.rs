//! The request/grant guard.

use core::marker::PhantomData;

use crate::local::LOCAL;

/// Asks the kernel not to preempt this thread while the guard lives.
///
/// Creating the outermost guard of a thread sets `rseq->slice_ctrl.request`;
/// dropping it clears `request` and, when the kernel granted an extension in
/// between, calls `rseq_slice_yield()` to give the CPU back at once. Inner
/// guards only count. Where the extension is off a guard is inert: one
/// thread-local load and a predictable branch, nothing written or counted.
/// An outermost guard that finds another copy of this crate's section open
/// on the thread (its request or grant in `slice_ctrl`) is inert too, and
/// counted in [`SliceStats::foreign`](crate::SliceStats::foreign).
///
/// Keep the section short (a grant lasts 5 µs by default, 50 µs at most) and
/// free of system calls: any system call inside a grant ends it.
///
/// Do not hold a guard across `.await` (possible on executors that run
/// `!Send` futures: glommio, tokio's `LocalSet`) and do not leak one
/// ([`mem::forget`](core::mem::forget), `MutexGuard::leak`). Either leaves the
/// thread's request set, and while that guard lives every other guard on the
/// thread is nested in it, so it requests nothing of its own, and
/// [`disable`](crate::disable) / [`enable`](crate::enable) fail with
/// `InCriticalSection`. A leak lasts until the thread exits. The runtime
/// adapters find such a guard when the thread goes idle
/// ([`RuntimeThread::idle`](crate::runtime::RuntimeThread::idle): `ThreadMetrics::open_guards`, a
/// `WARN` with `tracing`). The nesting count saturates: past `u32::MAX` open
/// guards, further guards are inert rather than wrapping it to 0.
///
/// Creating and dropping a guard is async-signal-safe: it never
/// initialises the thread (on a thread without [`init`](crate::init) it is
/// inert), and it counts a grant but emits no `tracing` event
/// ([`report_grants`](crate::diagnostics::report_grants) does, later). The sections that
/// cannot run in a signal handler anyway, [`slice_critical`](crate::slice_critical)
/// and the locks, call `init` on a thread's first section instead.
///
/// The guard belongs to its thread's rseq area, so it is neither `Send` nor
/// `Sync`.
///
/// ```
/// let _g = rseq_slice_core::SliceGuard::new();
/// // short critical section, e.g. while holding a lock
/// ```
#[must_use = "the section ends when the guard is dropped"]
#[clippy::has_significant_drop]
#[derive(Debug)]
pub struct SliceGuard {
    /// Whether `new` entered a section that `drop` must leave.
    armed: bool,
    _not_send: PhantomData<*const ()>,
}

impl SliceGuard {
    /// Request a time slice extension until the guard is dropped.
    #[inline]
    pub fn new() -> SliceGuard {
        // `with` can only fail inside LOCAL's destructor, and LOCAL has none.
        SliceGuard {
            armed: LOCAL.with(|l| l.enter()),
            _not_send: PhantomData,
        }
    }
}

impl SliceGuard {
    /// Whether this guard entered a section (the extension was on).
    #[cfg(feature = "lock_api")]
    pub(crate) fn armed(&self) -> bool {
        self.armed
    }

    /// [`new`](SliceGuard::new), after initialising a thread that never
    /// called [`init`](crate::init): for sections that never run in a signal
    /// handler (futures, locks), since `init` allocates.
    #[inline]
    pub(crate) fn initialising() -> SliceGuard {
        SliceGuard {
            armed: enter_initialising(),
            _not_send: PhantomData,
        }
    }
}

/// Enter a section as `SliceGuard::new` does, after initialising the thread on
/// its first section if it never called [`init`](crate::init). The extra
/// work lies on the inert path only: one more load and compare.
#[inline(always)]
pub(crate) fn enter_initialising() -> bool {
    LOCAL.with(|l| {
        if l.never_initialised() {
            init_on_first_section();
        }
        l.enter()
    })
}

#[cold]
#[inline(never)]
fn init_on_first_section() {
    // Guards work on either outcome; `state()` tells which.
    let _ = crate::init();
}

impl Default for SliceGuard {
    #[inline]
    fn default() -> Self {
        SliceGuard::new()
    }
}

impl Drop for SliceGuard {
    #[inline]
    fn drop(&mut self) {
        if self.armed {
            LOCAL.with(|l| l.exit());
        }
    }
}

/// Run `f` under a [`SliceGuard`]: the closure form.
///
/// ```
/// let sum = rseq_slice_core::critical(|| 1 + 1);
/// assert_eq!(sum, 2);
/// ```
#[inline]
pub fn critical<R>(f: impl FnOnce() -> R) -> R {
    let _g = SliceGuard::new();
    f()
}
