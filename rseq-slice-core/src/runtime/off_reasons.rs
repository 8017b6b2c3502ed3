//! Why the extension is off, logged once per process for each distinct
//! reason (`WARN`) and once per thread (`DEBUG`): a blocking pool of
//! hundreds of threads on a kernel without the feature says it once.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::Unavailable;

/// The reasons already logged at `WARN`, as hashes (0: a free place). Far
/// more places than there are kinds of reason; once full, every further new
/// reason is logged at `WARN` too. Lock-free, so a `fork` cannot leave it
/// held.
static WARNED: [AtomicU64; 32] = [const { AtomicU64::new(0) }; 32];

/// Whether `why` is logged for the first time in this process.
fn first_time(why: Unavailable) -> bool {
    let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(why) | 1;
    for place in &WARNED {
        match place.compare_exchange(0, h, Relaxed, Relaxed) {
            Ok(_) => return true,
            Err(seen) if seen == h => return false,
            Err(_) => {}
        }
    }
    true
}

/// Runtime thread `thread` starts with the extension off, for `why`.
pub(super) fn thread_is_off(thread: usize, why: Unavailable) {
    if first_time(why) {
        tracing::warn!(
            target: "rseq_slice",
            thread,
            "slice extension off: {why} (logged once per process; each further thread that \
             finds it off says so at DEBUG)"
        );
    } else {
        tracing::debug!(target: "rseq_slice", thread, "slice extension off: {why}");
    }
}

#[cfg(test)]
mod tests {
    use super::first_time;
    use crate::Unavailable;
    use crate::diagnostics::Errno;

    #[test]
    fn each_distinct_reason_is_first_once() {
        let a = Unavailable::RseqUnavailable(Errno::from_raw(libc::EPERM));
        let b = Unavailable::RseqUnavailable(Errno::from_raw(libc::ENOSYS));
        assert!(first_time(a));
        assert!(!first_time(a));
        assert!(first_time(b), "another errno is another reason");
        assert!(!first_time(b));
    }
}
