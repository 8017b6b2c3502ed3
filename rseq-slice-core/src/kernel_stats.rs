//! The kernel's own slice-extension counters: debugfs `rseq/stats`
//! (`CONFIG_RSEQ_STATS`, readable by root), for tests, benchmarks and
//! tooling that compare a process's [`SliceStats`](crate::SliceStats) with
//! the kernel's.

/// Where the kernel publishes its counters.
pub const KERNEL_STATS_PATH: &str = "/sys/kernel/debug/rseq/stats";

/// The slice lines of `rseq/stats` (system-wide, since boot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KernelStats {
    /// `sgrant`: extensions granted.
    pub granted: u64,
    /// `sexpir`: grants whose timer fired before the thread yielded.
    pub expired: u64,
    /// `srevok`: grants revoked (another interrupt, a reschedule).
    pub revoked: u64,
    /// `syield`: grants ended by `rseq_slice_yield()` in time.
    pub yielded: u64,
    /// `sabort`: grants ended by another system call.
    pub aborted: u64,
}

impl KernelStats {
    /// Read [`KERNEL_STATS_PATH`]. Fails where debugfs is not mounted, the
    /// caller is not root, or the kernel lacks `CONFIG_RSEQ_STATS`.
    pub fn read() -> std::io::Result<KernelStats> {
        std::fs::read_to_string(KERNEL_STATS_PATH).map(|t| KernelStats::parse(&t))
    }

    /// Parse the file's text (`name: value` lines; others are ignored).
    ///
    /// ```
    /// let k = rseq_slice_core::diagnostics::KernelStats::parse("exit: 9\nsgrant: 5\nsyield: 4\nsrevok: 1\n");
    /// assert_eq!((k.granted, k.yielded, k.revoked, k.expired), (5, 4, 1, 0));
    /// ```
    pub fn parse(text: &str) -> KernelStats {
        let mut s = KernelStats::default();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(name), Some(Ok(v))) = (it.next(), it.next().map(str::parse)) else {
                continue;
            };
            match name {
                "sgrant:" => s.granted = v,
                "sexpir:" => s.expired = v,
                "srevok:" => s.revoked = v,
                "syield:" => s.yielded = v,
                "sabort:" => s.aborted = v,
                _ => {}
            }
        }
        s
    }

    /// The counts between `before` and `self`.
    pub fn since(self, before: KernelStats) -> KernelStats {
        KernelStats {
            granted: self.granted.wrapping_sub(before.granted),
            expired: self.expired.wrapping_sub(before.expired),
            revoked: self.revoked.wrapping_sub(before.revoked),
            yielded: self.yielded.wrapping_sub(before.yielded),
            aborted: self.aborted.wrapping_sub(before.aborted),
        }
    }
}
