//! What a thread is to the runtime whose metrics list it.

/// A runtime thread's role, as its adapter last saw it
/// ([`ThreadMetrics::role`](super::ThreadMetrics::role)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ThreadRole {
    /// Started by the runtime, and runs its tasks: a tokio worker (seen
    /// parking or polling a task), a glommio executor thread.
    Worker,
    /// Started by the runtime for blocking work (tokio's blocking pool), and
    /// not seen running the runtime's tasks.
    Blocking,
    /// Drives the runtime without having been started by it: the caller of a
    /// current-thread runtime's `block_on`.
    BlockOn,
    /// Another runtime's thread running this one for a while: a
    /// blocking-pool thread calling its `block_on`, a nested runtime.
    Visitor,
}

impl ThreadRole {
    /// A thread the runtime started (its home), rather than one that visits.
    pub(super) fn home(self) -> bool {
        matches!(self, ThreadRole::Worker | ThreadRole::Blocking)
    }

    pub(super) fn to_u8(self) -> u8 {
        self as u8
    }

    pub(super) fn from_u8(v: u8) -> ThreadRole {
        match v {
            0 => ThreadRole::Worker,
            1 => ThreadRole::Blocking,
            2 => ThreadRole::BlockOn,
            _ => ThreadRole::Visitor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ThreadRole;

    #[test]
    fn roles_survive_their_atomic_form() {
        for r in [
            ThreadRole::Worker,
            ThreadRole::Blocking,
            ThreadRole::BlockOn,
            ThreadRole::Visitor,
        ] {
            assert_eq!(ThreadRole::from_u8(r.to_u8()), r);
        }
        assert!(ThreadRole::Blocking.home() && !ThreadRole::BlockOn.home());
    }
}
