//! cgroup v2 groups for the noise and the service, as an operator would
//! confine them: the `batch-weight1` noise's hogs in a group of
//! `cpu.weight` 1 beside the service's of 100, and the service under a
//! `cpu.max` limit (`--cpu-max`), whose throttling `cpu.stat` counts.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Where cgroup v2 is mounted.
const ROOT: &str = "/sys/fs/cgroup";
/// The study's own subtree.
const TOP: &str = "rseq-slice-study";
/// `cpu.max`'s period, µs.
pub(crate) const PERIOD_US: u64 = 100_000;

/// A cgroup the study made; a child process joins it as it starts.
#[derive(Debug)]
pub(crate) struct Group {
    dir: PathBuf,
}

/// `cpu.stat`'s bandwidth counters, or their change over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Throttling {
    /// Periods in which the group had work.
    pub(crate) periods: u64,
    /// Periods in which it ran out of quota and was stopped.
    pub(crate) throttled: u64,
    /// Time its threads spent stopped, µs.
    pub(crate) throttled_us: u64,
}

impl Throttling {
    /// The change from `before`.
    pub(crate) fn since(self, before: Throttling) -> Throttling {
        Throttling {
            periods: self.periods.saturating_sub(before.periods),
            throttled: self.throttled.saturating_sub(before.throttled),
            throttled_us: self.throttled_us.saturating_sub(before.throttled_us),
        }
    }

    /// The counters in a `cpu.stat` (none without bandwidth control).
    fn parse(stat: &str) -> Option<Throttling> {
        let field = |name: &str| {
            stat.lines()
                .filter_map(|l| l.split_once(' '))
                .find(|(k, _)| *k == name)
                .and_then(|(_, v)| v.trim().parse().ok())
        };
        Some(Throttling {
            periods: field("nr_periods")?,
            throttled: field("nr_throttled")?,
            throttled_us: field("throttled_usec")?,
        })
    }
}

impl Group {
    /// `/sys/fs/cgroup/rseq-slice-study/<name>`, with the cpu controller
    /// (made if missing).
    pub(crate) fn new(name: &str) -> Result<Group> {
        let root = Path::new(ROOT);
        if !root.join("cgroup.controllers").exists() {
            bail!("no cgroup v2 at {ROOT}: cpu.weight and cpu.max need one");
        }
        let top = root.join(TOP);
        enable_cpu(root)?;
        make(&top)?;
        enable_cpu(&top)?;
        let dir = top.join(name);
        make(&dir)?;
        Ok(Group { dir })
    }

    /// Set `cpu.weight` (1–10 000; the default is 100).
    pub(crate) fn weight(self, weight: u32) -> Result<Group> {
        write(&self.dir.join("cpu.weight"), &weight.to_string())?;
        Ok(self)
    }

    /// Set `cpu.max` to `percent` of `cpus` CPUs per 100 ms period (0: no
    /// limit).
    pub(crate) fn max(self, percent: u32, cpus: usize) -> Result<Group> {
        let file = self.dir.join("cpu.max");
        if percent == 0 {
            if file.exists() {
                write(&file, &format!("max {PERIOD_US}"))?;
            }
            return Ok(self);
        }
        if !file.exists() {
            bail!(
                "this kernel has no CFS bandwidth control (CONFIG_CFS_BANDWIDTH, no cpu.max): \
                 --cpu-max needs a kernel built with it"
            );
        }
        let quota = u64::from(percent) * PERIOD_US / 100 * cpus.max(1) as u64;
        write(&file, &format!("{quota} {PERIOD_US}"))?;
        Ok(self)
    }

    /// Its `cgroup.procs`, open for a child to write `0` to between fork
    /// and exec ([`crate::procs::spawn_in`]): the child joins before it
    /// runs, so nothing it starts escapes the group.
    pub(crate) fn procs(&self) -> Result<File> {
        let p = self.dir.join("cgroup.procs");
        OpenOptions::new()
            .write(true)
            .open(&p)
            .with_context(|| format!("opening {}", p.display()))
    }

    /// Its bandwidth counters now (none without bandwidth control).
    pub(crate) fn throttling(&self) -> Option<Throttling> {
        let text = std::fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
        Throttling::parse(&text)
    }
}

fn make(dir: &Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(e).with_context(|| format!("making the cgroup {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Give `dir`'s children the cpu controller.
fn enable_cpu(dir: &Path) -> Result<()> {
    let p = dir.join("cgroup.subtree_control");
    let now = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    if now.split_whitespace().any(|c| c == "cpu") {
        return Ok(());
    }
    write(&p, "+cpu")
}

fn write(p: &Path, what: &str) -> Result<()> {
    std::fs::write(p, what).with_context(|| format!("writing {what:?} to {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::Throttling;

    #[test]
    fn cpu_stat_counters_and_their_change() {
        let stat = "usage_usec 900\nnr_periods 12\nnr_throttled 5\nthrottled_usec 48000\n";
        let t = Throttling::parse(stat).unwrap();
        assert_eq!((t.periods, t.throttled, t.throttled_us), (12, 5, 48_000));
        let before = Throttling::parse("nr_periods 2\nnr_throttled 1\nthrottled_usec 8000\n");
        let d = t.since(before.unwrap());
        assert_eq!((d.periods, d.throttled, d.throttled_us), (10, 4, 40_000));
        // Without CONFIG_CFS_BANDWIDTH cpu.stat has no bandwidth fields.
        assert_eq!(Throttling::parse("usage_usec 1\nuser_usec 1\n"), None);
    }
}
