//! Why an executor could not start.

use std::fmt;

use glommio::{GlommioError, ReactorErrorKind};

/// The locked memory glommio demands before it builds its io_uring rings
/// (`RLIMIT_MEMLOCK`, bytes): 512 KiB in glommio 0.9.
pub const MIN_MEMLOCK: u64 = 512 * 1024;

/// Why [`SliceExecutorBuilder`](crate::SliceExecutorBuilder) or
/// [`SlicePoolBuilder`](crate::SlicePoolBuilder) could not start an executor.
///
/// The slice extension itself never stops an executor: where it is missing
/// the executor runs without it (see [`ThreadMetrics::state`](crate::ThreadMetrics)).
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The process may lock less memory than glommio requires. Checked with
    /// `getrlimit(RLIMIT_MEMLOCK)` before any executor thread starts.
    MemlockTooLow {
        /// The soft limit, bytes.
        have: u64,
        /// What glommio needs, bytes ([`MIN_MEMLOCK`]).
        need: u64,
    },
    /// glommio refused for another reason (placement, io_uring, threads...).
    Glommio(GlommioError<()>),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::MemlockTooLow { have, need } => write!(
                f,
                "glommio needs {} KiB of locked memory (RLIMIT_MEMLOCK) for its io_uring rings, \
                 but this process may lock only {} KiB: raise the limit (`ulimit -l {}`, \
                 systemd `LimitMEMLOCK=`, docker `--ulimit memlock=`)",
                need / 1024,
                have / 1024,
                need / 1024
            ),
            StartError::Glommio(e) => write!(f, "glommio could not start an executor: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Glommio(e) => Some(e),
            StartError::MemlockTooLow { .. } => None,
        }
    }
}

impl From<GlommioError<()>> for StartError {
    fn from(e: GlommioError<()>) -> Self {
        match e {
            GlommioError::ReactorError(ReactorErrorKind::MemLockLimit(have, need)) => {
                StartError::MemlockTooLow { have, need }
            }
            e => StartError::Glommio(e),
        }
    }
}

/// Refuse early, with a clear error, where glommio would refuse inside its
/// executor thread (where `spawn` reports it only at `join`).
pub(crate) fn check_memlock() -> Result<(), StartError> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Memlock);
    match limit.current {
        Some(have) if have < MIN_MEMLOCK => Err(StartError::MemlockTooLow {
            have,
            need: MIN_MEMLOCK,
        }),
        _ => Ok(()),
    }
}
