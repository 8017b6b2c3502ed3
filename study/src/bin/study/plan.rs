//! The matrix: configurations (noise, lock, hold time, workers, CPU limit) x levels
//! (loads or absolute rates) x variants x repeats, and the order runs go in.

use serde::{Deserialize, Serialize};

use crate::args::{Args, Noise, Variant, name};
use rseq_slice_study::state::LockKind;

/// Everything a run depends on but the variant, the level and the repeat.
/// Calibration is per configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Config {
    pub(crate) noise: String,
    pub(crate) lock: String,
    pub(crate) hold_us: u64,
    pub(crate) workers: u16,
    /// The service's `cpu.max` in percent of its CPUs (100 ms period); 0:
    /// no limit.
    #[serde(default)]
    pub(crate) cpu_max: u32,
    /// A `--service`'s label (empty: the bundled service).
    #[serde(default)]
    pub(crate) service: String,
}

impl Config {
    /// A stable key (part of every run's plan key).
    pub(crate) fn key(&self) -> String {
        let limit = match self.cpu_max {
            0 => String::new(),
            p => format!(" cpu_max={p}"),
        };
        let service = match self.service.as_str() {
            "" => String::new(),
            s => format!(" service={s}"),
        };
        format!(
            "noise={} lock={} hold_us={} workers={}{limit}{service}",
            self.noise, self.lock, self.hold_us, self.workers
        )
    }

    /// For titles and tables.
    pub(crate) fn label(&self) -> String {
        let limit = match self.cpu_max {
            0 => String::new(),
            p => format!(", cpu.max {p} %"),
        };
        if !self.service.is_empty() {
            return format!(
                "{}: {} noise, {} workers{limit}",
                self.service, self.noise, self.workers
            );
        }
        let holds = match self.hold_us {
            0 => "LRU-update holds".to_string(),
            h => format!("{h} µs holds"),
        };
        format!(
            "{} noise, {} lock, {holds}, {} workers{limit}",
            self.noise, self.lock, self.workers
        )
    }
}

/// One run of the matrix.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Cell {
    pub(crate) config: Config,
    /// A fraction of capacity, or an absolute rate (req/s) if `absolute`.
    pub(crate) level: f64,
    pub(crate) absolute: bool,
    pub(crate) variant: String,
    pub(crate) repeat: u32,
}

impl Cell {
    /// The plan key `--resume` matches on.
    pub(crate) fn key(&self) -> String {
        let l = if self.absolute { "rate" } else { "load" };
        format!(
            "{} {l}={} variant={} repeat={}",
            self.config.key(),
            self.level,
            self.variant,
            self.repeat
        )
    }
}

/// The matrix after defaults.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Plan {
    pub(crate) configs: Vec<Config>,
    pub(crate) levels: Vec<f64>,
    pub(crate) absolute: bool,
    pub(crate) variants: Vec<String>,
    /// What every variant is compared with, and calibrated with.
    pub(crate) baseline: String,
    pub(crate) repeats: u32,
    pub(crate) samples: u64,
    pub(crate) min_secs: f64,
    pub(crate) warmup: f64,
    pub(crate) calibrate_secs: f64,
    /// Calibrations of each configuration in this boot.
    pub(crate) calibrations: u32,
    pub(crate) cpus: usize,
}

impl Plan {
    /// The plan for `a` on `cpus` CPUs. Lists given on the command line are
    /// crossed; `--full` varies one axis at a time around the defaults.
    pub(crate) fn new(a: &Args, cpus: usize) -> Plan {
        let (noise, variants, repeats, samples, min_secs, cal) = if a.smoke {
            (
                vec![Noise::Quiet, Noise::Both],
                vec![Variant::Off, Variant::Locks],
                1,
                2_000,
                1.5,
                1.0,
            )
        } else if a.full {
            let v = vec![
                Variant::Off,
                Variant::Control,
                Variant::Oneliner,
                Variant::Sched,
                Variant::Polls,
                Variant::Locks,
            ];
            (vec![Noise::Batch], v, 5, 8_000, 1.0, 3.0)
        } else {
            // The default answers one question in two boots side by side
            // (docs/study.md, "The matrix"): one configuration, two loads,
            // off, the control and locks, five repeats a boot.
            (
                vec![Noise::Batch],
                vec![Variant::Off, Variant::Control, Variant::Locks],
                5,
                5_000,
                1.0,
                2.0,
            )
        };
        let d_lock = [LockKind::Parking];
        let (d_hold, d_wpc) = ([5u64], [1u16]);
        let noise = match (&a.noise_cmd, &a.noise) {
            (Some(_), _) => vec![Noise::Command],
            (None, n) => n.clone().unwrap_or(noise),
        };
        let locks = a.locks.clone().unwrap_or(d_lock.to_vec());
        let holds = a.hold_us.clone().unwrap_or(d_hold.to_vec());
        let wpc = a.workers_per_cpu.clone().unwrap_or(d_wpc.to_vec());
        let limits = a.cpu_max.clone().unwrap_or(vec![0]);
        let config = |n: Noise, l: LockKind, h: u64, w: u16| Config {
            noise: name(n),
            lock: name(l),
            hold_us: h,
            workers: w.saturating_mul(cpus.clamp(1, 4096) as u16),
            cpu_max: 0,
            service: match (&a.service, &a.label) {
                (None, _) => String::new(),
                (Some(_), Some(l)) => l.clone(),
                (Some(_), None) => "service".into(),
            },
        };
        let mut configs = Vec::new();
        if a.full {
            let all_noise = [
                Noise::Quiet,
                Noise::Batch,
                Noise::BatchNice19,
                Noise::BatchIdle,
                Noise::BatchWeight1,
                Noise::Wakers,
                Noise::Both,
                Noise::Service,
            ];
            let all_locks = [LockKind::Parking, LockKind::Spinpark, LockKind::Spin];
            let (n0, l0, h0, w0) = (noise[0], locks[0], holds[0], wpc[0]);
            let ns = match &a.noise_cmd {
                Some(_) => vec![Noise::Command],
                None => a.noise.clone().unwrap_or(all_noise.to_vec()),
            };
            let ls = a.locks.clone().unwrap_or(all_locks.to_vec());
            let hs = a.hold_us.clone().unwrap_or(vec![0, 1, 5, 20]);
            let ws = a.workers_per_cpu.clone().unwrap_or(vec![1, 2]);
            configs.extend(ns.iter().map(|&n| config(n, l0, h0, w0)));
            configs.extend(ls.iter().map(|&l| config(n0, l, h0, w0)));
            configs.extend(hs.iter().map(|&h| config(n0, l0, h, w0)));
            configs.extend(ws.iter().map(|&w| config(n0, l0, h0, w)));
            // CPU limits only when asked: the shared guest kernel has no
            // CFS bandwidth control.
            let cs = a.cpu_max.clone().unwrap_or_default();
            configs.extend(cs.iter().filter(|&&c| c > 0).map(|&c| Config {
                cpu_max: c,
                ..config(n0, l0, h0, w0)
            }));
        } else {
            for &n in &noise {
                for &l in &locks {
                    for &h in &holds {
                        for &w in &wpc {
                            for &c in &limits {
                                configs.push(Config {
                                    cpu_max: c,
                                    ..config(n, l, h, w)
                                });
                            }
                        }
                    }
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        configs.retain(|c| seen.insert(c.clone()));
        let (levels, absolute) = match (&a.rates, &a.loads) {
            (Some(r), _) => (r.clone(), true),
            (None, Some(l)) => (l.clone(), false),
            (None, None) if a.smoke => (vec![0.5], false),
            (None, None) if a.full => (vec![0.3, 0.5, 0.7, 0.8, 0.9], false),
            (None, None) => (vec![0.5, 0.8], false),
        };
        let mut variants: Vec<String> = a
            .variants
            .clone()
            .unwrap_or_else(|| variants.into_iter().map(name).collect());
        variants.dedup();
        Plan {
            configs,
            levels,
            absolute,
            variants,
            baseline: a.baseline.clone(),
            repeats: a.repeats.unwrap_or(repeats),
            samples: a.samples.unwrap_or(samples),
            min_secs: a.min_secs.unwrap_or(min_secs),
            warmup: a.warmup,
            calibrate_secs: a.calibrate_secs.unwrap_or(cal),
            calibrations: a.calibrations.unwrap_or(if a.full { 2 } else { 1 }),
            cpus,
        }
    }

    /// Seconds of load for a run at `rate`: enough for `samples` after the
    /// warm-up, and at least `min_secs` (at most a day).
    pub(crate) fn duration(&self, rate: f64) -> f64 {
        (self.samples as f64 / rate + self.warmup)
            .max(self.min_secs)
            .min(86_400.0)
    }

    /// Every run, repeat by repeat (so an interrupted matrix has whole
    /// repeats of every cell), the variants alternating: which goes first
    /// rotates from cell to cell.
    pub(crate) fn order(&self) -> Vec<Cell> {
        let mut out = Vec::new();
        let n = self.variants.len().max(1);
        let mut k = 0usize;
        for repeat in 0..self.repeats {
            for config in &self.configs {
                for &level in &self.levels {
                    for i in 0..self.variants.len() {
                        out.push(Cell {
                            config: config.clone(),
                            level,
                            absolute: self.absolute,
                            variant: self.variants[(i + k) % n].clone(),
                            repeat,
                        });
                    }
                    k += 1;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn plan(args: &[&str]) -> Plan {
        let a = Args::try_parse_from(std::iter::once("study").chain(args.iter().copied())).unwrap();
        Plan::new(&a, 2)
    }

    #[test]
    fn default_matrix_alternates_variants_with_unique_keys() {
        let p = plan(&[]);
        assert_eq!(
            (p.configs.len(), p.levels.len(), p.variants.len()),
            (1, 2, 3)
        );
        assert_eq!(p.configs[0].workers, 2);
        let order = p.order();
        assert_eq!(p.variants, ["off", "control", "locks"]);
        assert_eq!(order.len(), 30);
        let keys: std::collections::HashSet<String> = order.iter().map(Cell::key).collect();
        assert_eq!(keys.len(), 30);
        for group in order.chunks(3) {
            let v: std::collections::HashSet<&str> =
                group.iter().map(|c| c.variant.as_str()).collect();
            assert_eq!(v.len(), 3);
        }
        assert_ne!(
            order[0].variant, order[3].variant,
            "the first variant rotates"
        );
        assert_eq!(p.duration(1000.0), 5.5);
        assert_eq!(p.duration(1e6), 1.0);
    }

    #[test]
    fn full_varies_one_axis_at_a_time_and_lists_cross() {
        let p = plan(&["--full"]);
        assert_eq!(p.configs.len(), 8 + 2 + 3 + 1);
        assert_eq!(p.levels, [0.3, 0.5, 0.7, 0.8, 0.9]);
        assert_eq!(
            p.variants,
            ["off", "control", "oneliner", "sched", "polls", "locks"]
        );
        let p = plan(&[
            "--noise",
            "quiet,both",
            "--hold-us",
            "1,20",
            "--rates",
            "100",
        ]);
        assert_eq!((p.configs.len(), p.absolute), (4, true));
        assert!(p.order()[0].key().contains("rate=100"));
        let s = plan(&["--smoke"]);
        assert_eq!(
            (s.configs.len(), s.levels.as_slice(), s.repeats),
            (2, &[0.5][..], 1)
        );
    }
}
