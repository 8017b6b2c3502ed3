//! What the known answers depend on in the running kernel, read from it: the
//! preemption model, whether two CPUs share a last-level cache, and the fair
//! class's base slice. docs/guest.md ("Known answers") derives each answer
//! from Linux 7.2's scheduler and cites the lines.

use std::path::Path;

/// One scheduler tick at the guest kernel's HZ=1000, µs.
pub(crate) const TICK_US: f64 = 1000.0;

/// The facts the answers turn on.
#[derive(Debug, Clone)]
pub(crate) struct Kernel {
    /// `lazy`, `full`, … (lab's `Conditions::preempt`).
    pub(crate) preempt: String,
    /// Whether CPU 0 and the last CPU share a last-level cache: then a
    /// wake-up across them is queued by the waker itself, and under `lazy`
    /// the target learns of it at its next tick (no IPI).
    pub(crate) llc_shared: bool,
    /// `sched/base_slice_ns` (µs): how long a fair task keeps the CPU against
    /// a waking one once its slice is protected (`RUN_TO_PARITY`).
    pub(crate) base_slice_us: f64,
    /// Where `base_slice_us` came from.
    pub(crate) base_slice_from: &'static str,
}

impl Kernel {
    pub(crate) fn detect(preempt: &str, cpus: usize) -> Kernel {
        let (base_slice_us, base_slice_from) =
            match std::fs::read_to_string("/sys/kernel/debug/sched/base_slice_ns") {
                Ok(s) if s.trim().parse::<f64>().is_ok() => {
                    (s.trim().parse::<f64>().unwrap_or(0.0) / 1000.0, "debugfs")
                }
                _ => (default_base_slice_us(cpus), "0.7 ms x (1 + log2 CPUs)"),
            };
        Kernel {
            preempt: preempt.to_string(),
            llc_shared: cpus > 1 && shares_llc(0, cpus - 1),
            base_slice_us,
            base_slice_from,
        }
    }

    /// Whether a wake-up that must preempt a fair task on another CPU waits
    /// for that CPU's tick: `lazy` sets only the lazy flag and sends no IPI
    /// (`__resched_curr`), where the waker queued the task itself (shared
    /// LLC).
    pub(crate) fn remote_wake_waits_a_tick(&self, cpus: usize) -> bool {
        cpus > 1 && self.llc_shared && self.preempt != "full"
    }

    /// What a fair wake-up beside `nice 19` hogs may add to the quiet tail:
    /// the hog's protected slice, plus a tick where the wake waits for one.
    pub(crate) fn nice19_allowance_us(&self, cpus: usize) -> f64 {
        self.base_slice_us + self.tick_if_remote(cpus)
    }

    /// What a fair wake-up beside `SCHED_IDLE` hogs may add to the quiet
    /// tail: on one CPU nothing (the hog is preempted at once); on several,
    /// a nice-0 wakee can wait out another nice-0 task's protected slice
    /// (the client's or another worker's: docs/guest.md, the experiment
    /// under "Verdict"), plus a tick where the wake waits for one.
    pub(crate) fn sched_idle_allowance_us(&self, cpus: usize) -> f64 {
        if cpus > 1 {
            self.base_slice_us + self.tick_if_remote(cpus)
        } else {
            0.0
        }
    }

    /// One tick where a cross-CPU wake-up waits for it, else 0.
    pub(crate) fn tick_if_remote(&self, cpus: usize) -> f64 {
        if self.remote_wake_waits_a_tick(cpus) {
            TICK_US
        } else {
            0.0
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "preempt {}, LLC {}, base slice {:.0} µs ({})",
            self.preempt,
            if self.llc_shared {
                "shared"
            } else {
                "not shared"
            },
            self.base_slice_us,
            self.base_slice_from
        )
    }
}

/// The kernel's default base slice: 0.7 ms scaled by 1 + log2 of the CPUs
/// (at most 8), `SCHED_TUNABLESCALING_LOG` (`get_update_sysctl_factor`).
fn default_base_slice_us(cpus: usize) -> f64 {
    700.0 * (1 + cpus.clamp(1, 8).ilog2()) as f64
}

/// Whether `a`'s highest-level cache lists `b` among the CPUs sharing it.
fn shares_llc(a: usize, b: usize) -> bool {
    let dir = format!("/sys/devices/system/cpu/cpu{a}/cache");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return false;
    };
    let level = |p: &Path| {
        std::fs::read_to_string(p.join("level"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    };
    let highest = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("index"))
        })
        .filter_map(|p| Some((level(&p)?, p)))
        .max_by_key(|(l, _)| *l);
    highest
        .and_then(|(_, p)| std::fs::read_to_string(p.join("shared_cpu_list")).ok())
        .is_some_and(|list| cpu_list_has(&list, b))
}

/// Whether a kernel CPU list (`0-3,6`) holds `cpu`.
fn cpu_list_has(list: &str, cpu: usize) -> bool {
    list.trim().split(',').any(|r| match r.split_once('-') {
        Some((lo, hi)) => matches!(
            (lo.parse::<usize>(), hi.parse::<usize>()),
            (Ok(lo), Ok(hi)) if (lo..=hi).contains(&cpu)
        ),
        None => r.parse::<usize>() == Ok(cpu),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_and_slices_read_as_the_kernel_writes_them() {
        assert!(cpu_list_has("0-3,6", 2) && cpu_list_has("0-3,6", 6));
        assert!(!cpu_list_has("0-3,6", 5) && !cpu_list_has("0", 1));
        assert_eq!(default_base_slice_us(1), 700.0);
        assert_eq!(default_base_slice_us(2), 1400.0);
        assert_eq!(default_base_slice_us(4), 2100.0);
        assert_eq!(default_base_slice_us(16), 2800.0);
    }

    #[test]
    fn only_a_lazy_remote_wake_with_a_shared_cache_waits_a_tick() {
        let k = |preempt: &str, llc_shared| Kernel {
            preempt: preempt.into(),
            llc_shared,
            base_slice_us: 1400.0,
            base_slice_from: "test",
        };
        assert!(k("lazy", true).remote_wake_waits_a_tick(2));
        assert!(!k("lazy", true).remote_wake_waits_a_tick(1));
        assert!(!k("lazy", false).remote_wake_waits_a_tick(2));
        assert!(!k("full", true).remote_wake_waits_a_tick(2));
        assert_eq!(k("lazy", true).nice19_allowance_us(2), 2400.0);
        assert_eq!(k("full", true).nice19_allowance_us(2), 1400.0);
        assert_eq!(k("lazy", true).sched_idle_allowance_us(1), 0.0);
        assert_eq!(k("lazy", true).sched_idle_allowance_us(2), 2400.0);
        assert_eq!(k("full", false).sched_idle_allowance_us(4), 1400.0);
    }
}
