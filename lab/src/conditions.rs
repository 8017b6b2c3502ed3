//! The conditions a measurement ran under, read from the running system.

use std::fmt;

use serde::Serialize;

/// Where and how a result was measured: printed with every table and stored
/// in every result file.
///
/// The clock comes from `RSEQ_SLICE_CLOCK`, which `cargo xtask` sets in its
/// guests (`virtual (icount shift=0)` or `real (host wall clock)`); anywhere
/// else the run is native, on real time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Conditions {
    /// CPUs this process may run on.
    pub cpus: usize,
    /// Virtual (instruction-counted) or real time.
    pub clock: String,
    /// The emulator that runs the guest (`RSEQ_SLICE_QEMU`), or `native`.
    pub qemu: String,
    /// What `cargo xtask fidelity` said of this platform mode and vCPU
    /// count (`RSEQ_SLICE_FIDELITY`: `passed (…)`, `FAILED (…)`, `not
    /// checked`); `native` outside a guest.
    pub fidelity: String,
    /// The kernel's clocksource (`tsc`; `hpet` makes every clock read a
    /// system call, which ends a grant).
    pub clocksource: String,
    /// debugfs `rseq/slice_ext_nsec`, or `?` where debugfs is not mounted.
    pub slice_ext_nsec: String,
    /// Whether the kernel checks the protocol (`rseq_debug=1` on its command line).
    pub rseq_debug: bool,
    /// The kernel's preemption model (`lazy`, `full`, `voluntary`, `none`):
    /// debugfs `sched/preempt`, else `preempt=` on the command line, else `?`.
    pub preempt: String,
    /// `uname -r`.
    pub kernel: String,
    /// Whose rseq area this thread uses, or why the extension is off.
    pub rseq_area: String,
}

impl Conditions {
    /// Read them now. Calls [`rseq_slice_core::init`] on this thread to
    /// learn whose area a registered thread uses.
    pub fn detect() -> Conditions {
        let read = |p: &str| {
            std::fs::read_to_string(p).map_or_else(|_| "?".to_string(), |s| s.trim().to_string())
        };
        let rseq_area = match rseq_slice_core::init() {
            Ok(r) => format!("{r:?} (extension on)"),
            Err(why) => format!("extension off: {why:?}"),
        };
        Conditions {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            clock: std::env::var("RSEQ_SLICE_CLOCK").unwrap_or_else(|_| "real (native)".into()),
            qemu: std::env::var("RSEQ_SLICE_QEMU").unwrap_or_else(|_| "native".into()),
            fidelity: std::env::var("RSEQ_SLICE_FIDELITY").unwrap_or_else(|_| "native".into()),
            clocksource: read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
            slice_ext_nsec: read(&format!("{}/slice_ext_nsec", DEBUGFS_RSEQ)),
            rseq_debug: read("/proc/cmdline")
                .split_whitespace()
                .any(|w| w == "rseq_debug=1" || w == "rseq_debug"),
            preempt: preempt_model(
                &read("/sys/kernel/debug/sched/preempt"),
                &read("/proc/cmdline"),
            ),
            kernel: read("/proc/sys/kernel/osrelease"),
            rseq_area,
        }
    }

    /// `(column, value)` pairs, for a CSV header and rows.
    pub fn columns(&self) -> [(&'static str, String); 10] {
        [
            ("cpus", self.cpus.to_string()),
            ("clock", self.clock.clone()),
            ("qemu", self.qemu.clone()),
            ("fidelity", self.fidelity.clone()),
            ("clocksource", self.clocksource.clone()),
            ("slice_ext_nsec", self.slice_ext_nsec.clone()),
            ("rseq_debug", u8::from(self.rseq_debug).to_string()),
            ("preempt", self.preempt.clone()),
            ("kernel", self.kernel.clone()),
            ("rseq_area", self.rseq_area.clone()),
        ]
    }
}

const DEBUGFS_RSEQ: &str = "/sys/kernel/debug/rseq";

/// The preemption model from debugfs' `sched/preempt` (the current one in
/// parentheses: `none voluntary full (lazy)`), else from `preempt=` on the
/// kernel command line, else `?`.
fn preempt_model(debugfs: &str, cmdline: &str) -> String {
    let current = debugfs
        .split_whitespace()
        .find_map(|w| w.strip_prefix('(')?.strip_suffix(')'));
    let asked = cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("preempt="))
        .next_back();
    current.or(asked).unwrap_or("?").to_string()
}

impl Conditions {
    /// Whether the fidelity checks failed for this platform: the platform
    /// bends what it measures, so a result from it supports no claim.
    pub fn unfaithful(&self) -> bool {
        self.fidelity.starts_with("FAILED")
    }

    /// A loud warning for a result measured where fidelity failed or was
    /// never checked; `None` where it passed, and natively.
    pub fn warning(&self) -> Option<String> {
        if self.unfaithful() {
            Some(format!(
                "WARNING: this platform FAILED its fidelity checks ({}, {} vCPU: {}): it does not \
                 schedule like hardware, and these results support no claim (docs/guest.md)",
                self.qemu, self.cpus, self.fidelity
            ))
        } else if self.fidelity == "not checked" {
            Some(format!(
                "WARNING: no fidelity checks for this platform ({}, {} vCPU): run `cargo xtask \
                 fidelity` with the same options before trusting these results",
                self.qemu, self.cpus
            ))
        } else {
            None
        }
    }
}

impl fmt::Display for Conditions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}, {} time, {}{}, clocksource {}, slice_ext_nsec {}, rseq_debug {}, preempt {}, Linux {}, rseq area: {}",
            self.cpus,
            if self.qemu == "native" {
                "CPUs"
            } else {
                "vCPUs"
            },
            self.clock,
            self.qemu,
            if self.fidelity == "native" {
                String::new()
            } else {
                format!(", fidelity checks {}", self.fidelity)
            },
            self.clocksource,
            self.slice_ext_nsec,
            if self.rseq_debug { "on" } else { "off" },
            self.preempt,
            self.kernel,
            self.rseq_area
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_reads_this_machine() {
        let c = Conditions::detect();
        assert!(c.cpus >= 1);
        assert!(!c.kernel.is_empty() && c.kernel != "?", "{c:?}");
        let line = c.to_string();
        assert!(line.contains(&c.kernel) && line.contains("time"), "{line}");
        let cols = c.columns();
        assert_eq!(cols[0], ("cpus", c.cpus.to_string()));
    }

    #[test]
    fn the_preemption_model_is_the_bracketed_one() {
        assert_eq!(preempt_model("none voluntary full (lazy)", ""), "lazy");
        assert_eq!(
            preempt_model("none voluntary (full) lazy", "preempt=lazy"),
            "full"
        );
        assert_eq!(preempt_model("?", "quiet preempt=full"), "full");
        assert_eq!(preempt_model("?", "quiet"), "?");
    }
}
