//! [`Policy`]: which acquisitions of a lock request an extension, and the
//! per-lock state that carries it out.

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// Which acquisitions of a lock request a time slice extension.
///
/// The request costs one store and one load per section (about 1 ns on the
/// host, nothing measurable next to a 2 µs section in the guest); it pays
/// when a holder would otherwise be preempted while others wait.
/// [`Policy::Always`] is the default: a lock contended only now and then
/// is the one an adaptive window leaves unguarded. Grants remove the very
/// contention that keeps the window open, so it closes, and the next
/// preemption lands on a holder that did not request. `cargo xtask
/// bench-locks` measures the policies side by side (docs/benchmarks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    /// Every acquisition requests (the "naive" protocol).
    Always,
    /// An acquisition requests when it had to wait for the lock, and so do
    /// the next `window` acquisitions after one that waited. A lock that is
    /// never contended never requests.
    Adaptive {
        /// Acquisitions that still request after the last contended one.
        window: u32,
    },
    /// No acquisition requests: the plain lock, for comparisons.
    Never,
}

impl Policy {
    /// [`Policy::Adaptive`] with a window of 1024 acquisitions (several
    /// scheduler slices of few-µs sections). Measured weaker than `Always`
    /// under contention; for locks that are nearly never contended.
    pub const ADAPTIVE: Policy = Policy::Adaptive { window: 1024 };
}

impl Default for Policy {
    /// [`Policy::Always`].
    fn default() -> Policy {
        Policy::Always
    }
}

/// The per-lock state of a [`Policy`]: how many acquisitions still request.
///
/// Written by lock holders only (racy between the shared holders of an
/// RwLock, which is harmless for a heuristic), read before acquiring.
pub(crate) struct Contention {
    policy: Policy,
    hot: AtomicU32,
}

impl Contention {
    pub(crate) const fn new(policy: Policy) -> Contention {
        Contention {
            policy,
            hot: AtomicU32::new(0),
        }
    }

    pub(crate) fn policy(&self) -> Policy {
        self.policy
    }

    /// Whether the next acquisition should request even if it does not wait.
    #[inline(always)]
    pub(crate) fn wants(&self) -> bool {
        match self.policy {
            Policy::Always => true,
            Policy::Adaptive { .. } => self.hot.load(Relaxed) != 0,
            Policy::Never => false,
        }
    }

    /// Whether the policy needs to know if an acquisition waited.
    #[inline(always)]
    pub(crate) fn tracks(&self) -> bool {
        matches!(self.policy, Policy::Adaptive { .. })
    }

    /// Called by the new holder: update the window and say whether this
    /// acquisition requests.
    #[inline(always)]
    pub(crate) fn acquired(&self, contended: bool) -> bool {
        match self.policy {
            Policy::Always => true,
            Policy::Never => false,
            Policy::Adaptive { window } => {
                let hot = self.hot.load(Relaxed);
                let next = next_hot(hot, contended, window);
                if next != hot {
                    self.hot.store(next, Relaxed);
                }
                contended || hot != 0
            }
        }
    }
}

/// The adaptive state machine: a contended acquisition reopens the window,
/// an uncontended one narrows it by one.
#[inline(always)]
pub(crate) fn next_hot(hot: u32, contended: bool, window: u32) -> u32 {
    if contended {
        window
    } else {
        hot.saturating_sub(1)
    }
}

impl fmt::Debug for Contention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contention")
            .field("policy", &self.policy)
            .field("hot", &self.hot.load(Relaxed))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_opens_on_contention_and_narrows_by_one() {
        assert_eq!(next_hot(0, false, 4), 0);
        assert_eq!(next_hot(0, true, 4), 4);
        assert_eq!(next_hot(4, false, 4), 3);
        assert_eq!(next_hot(2, true, 4), 4);
    }

    #[test]
    fn adaptive_requests_while_the_window_is_open() {
        let c = Contention::new(Policy::Adaptive { window: 2 });
        assert!(!c.wants());
        assert!(!c.acquired(false), "uncontended and cold: no request");
        assert!(c.acquired(true), "a contended acquisition requests");
        assert!(c.wants());
        assert!(c.acquired(false));
        assert!(c.acquired(false));
        assert!(!c.wants(), "the window closed after 2");
        assert!(!c.acquired(false));
    }

    #[test]
    fn always_and_never_ignore_contention() {
        let a = Contention::new(Policy::Always);
        let n = Contention::new(Policy::Never);
        for contended in [false, true] {
            assert!(a.acquired(contended) && a.wants() && !a.tracks());
            assert!(!n.acquired(contended) && !n.wants() && !n.tracks());
        }
    }
}
