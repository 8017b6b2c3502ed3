//! The kernel's verdict, the same for every thread of the process.

use std::sync::OnceLock;

use crate::Errno;

use crate::abi;
use crate::reason::Unavailable;
use crate::sys;

/// Whether the running kernel offers the extension at all, judged once per
/// process from the auxiliary vector, `prctl(GET)` and the command line.
pub fn kernel_support() -> Result<(), Unavailable> {
    static VERDICT: OnceLock<Result<(), Unavailable>> = OnceLock::new();
    *VERDICT.get_or_init(|| {
        let (feature_size, _) = sys::auxv_feature_size_align();
        if (feature_size as usize) < abi::FEATURE_SIZE_SLICE {
            return Err(Unavailable::KernelTooOld { feature_size });
        }
        match sys::slice_ext_get() {
            Ok(_) if disabled_on_cmdline() => Err(Unavailable::DisabledAtBoot),
            Ok(_) => Ok(()),
            Err(Errno::INVAL | Errno::NOSYS) => Err(Unavailable::KernelTooOld { feature_size }),
            Err(e) if e.raw() == abi::ENOTSUPP => Err(Unavailable::NotBuiltIn),
            Err(e) => Err(Unavailable::EnableFailed(e)),
        }
    })
}

/// `rseq_slice_ext=` with a false value (`kstrtobool`: 0, n, N, f, F, off).
/// Any such word disables it: the kernel's handler only ever switches off.
fn disabled_on_cmdline() -> bool {
    cmdline_says_off(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default())
}

fn cmdline_says_off(cmdline: &str) -> bool {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix("rseq_slice_ext="))
        .any(|v| {
            matches!(v.as_bytes().first(), Some(b'0' | b'n' | b'N' | b'f' | b'F'))
                || v.eq_ignore_ascii_case("off")
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cmdline_values_follow_kstrtobool() {
        let off = |c: &str| super::cmdline_says_off(c);
        assert!(off("quiet rseq_slice_ext=off"));
        assert!(off("rseq_slice_ext=0 loglevel=1"));
        assert!(off("rseq_slice_ext=n"));
        assert!(!off("rseq_slice_ext=on"));
        assert!(!off("rseq_slice_ext=1"));
        assert!(!off("quiet rseq_debug=1"));
        // The kernel's handler only switches off, so a later "on" cannot undo it.
        assert!(off("rseq_slice_ext=off rseq_slice_ext=on"));
    }
}
