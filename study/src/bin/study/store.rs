//! runs.jsonl: one JSON object per line, appended (and synced) as soon as a
//! run or a calibration ends, failed ones included. `--resume` skips the
//! plan keys it holds; `--replot` rebuilds every output from it alone.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rseq_slice_study::report::LoadReport;
use serde::{Deserialize, Serialize};

use crate::cgroup::Throttling;
use crate::plan::{Cell, Config};

/// The kernel's `rseq/stats` deltas around a run.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Kernel {
    pub(crate) sgrant: u64,
    pub(crate) sexpir: u64,
    pub(crate) srevok: u64,
    pub(crate) syield: u64,
    pub(crate) sabort: u64,
}

/// One line of runs.jsonl.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    /// `run` or `calibration`.
    pub(crate) kind: String,
    /// The plan key (a run's [`Cell::key`], or `calibrate <config key>`).
    pub(crate) key: String,
    pub(crate) config: Config,
    /// The run's cell (none for a calibration).
    pub(crate) cell: Option<Cell>,
    /// Offered rate (req/s); for a calibration, the measured capacity.
    pub(crate) rate: f64,
    /// The capacity the rate was derived from (none with absolute rates).
    pub(crate) capacity: Option<f64>,
    /// Seconds of load, warm-up included.
    pub(crate) duration: f64,
    pub(crate) ok: bool,
    pub(crate) error: Option<String>,
    /// loadgen's report: latencies, the histogram, the service's counters.
    pub(crate) report: Option<LoadReport>,
    /// A calibration's open-loop check at the closed-loop rate.
    #[serde(default)]
    pub(crate) check: Option<LoadReport>,
    /// debugfs `rseq/stats` deltas, or why there are none.
    pub(crate) kernel: Option<Kernel>,
    pub(crate) kernel_error: Option<String>,
    /// The service cgroup's `cpu.stat` throttling over the run (only with
    /// a cgroup: `--cpu-max`, `batch-weight1`).
    #[serde(default)]
    pub(crate) throttling: Option<Throttling>,
    /// The conditions line, and its fields.
    pub(crate) conditions: String,
    pub(crate) conditions_detail: serde_json::Value,
    /// The service: `bundled` or the `--service` command.
    pub(crate) service: String,
    /// Unix time at the end, seconds.
    pub(crate) finished: u64,
    /// The boot (guest) the run came from (`--boot`; empty: not said).
    #[serde(default)]
    pub(crate) boot: String,
    /// The variant the others are compared with (`--baseline`).
    #[serde(default = "off")]
    pub(crate) baseline: String,
}

fn off() -> String {
    "off".into()
}

impl Record {
    /// The key calibration `repeat` of `config` is stored under.
    pub(crate) fn calibration_key(config: &Config, repeat: u32) -> String {
        format!("calibrate {} repeat={repeat}", config.key())
    }
}

/// The file, open for appending.
#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
    file: std::fs::File,
}

impl Store {
    /// Open `dir/runs.jsonl`. Unless `resume`, a previous file is kept as
    /// `runs.jsonl.prev` and a new one started.
    pub(crate) fn open(dir: &Path, resume: bool) -> Result<Store> {
        let path = dir.join("runs.jsonl");
        if !resume && path.exists() {
            let prev = dir.join("runs.jsonl.prev");
            std::fs::rename(&path, &prev).with_context(|| format!("moving {}", path.display()))?;
            eprintln!("study: kept the previous runs as {}", prev.display());
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Store { path, file })
    }

    /// Append one record, on its own line, and sync it to disk.
    pub(crate) fn append(&mut self, r: &Record) -> Result<()> {
        let mut line = serde_json::to_string(r)?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("appending to {}", self.path.display()))
    }
}

/// What `runs.jsonl` holds.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) records: Vec<Record>,
    /// Lines that are not a record (a run cut off while it was written, or
    /// something else), as `path:line: why`: reported in table.md too.
    pub(crate) skipped: Vec<String>,
}

/// Every record in `dir/runs.jsonl`; a line that does not parse is skipped
/// and reported (on stderr, and in [`Loaded::skipped`]).
pub(crate) fn load(dir: &Path) -> Result<Loaded> {
    let path = dir.join("runs.jsonl");
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut out = Loaded::default();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(&line) {
            Ok(r) => out.records.push(r),
            Err(e) => {
                let why = format!("{}:{}: not a run, skipped ({e})", path.display(), i + 1);
                eprintln!("study: {why}");
                out.skipped.push(why);
            }
        }
    }
    Ok(out)
}

/// The last successful record of each key, in file order.
pub(crate) fn latest_ok(records: &[Record]) -> Vec<&Record> {
    let mut last = std::collections::HashMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.ok {
            last.insert(r.key.as_str(), i);
        }
    }
    let mut idx: Vec<usize> = last.into_values().collect();
    idx.sort_unstable();
    idx.into_iter().map(|i| &records[i]).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record for tests.
    pub(crate) fn record(key: &str, ok: bool) -> Record {
        Record {
            kind: "run".into(),
            key: key.into(),
            config: Config {
                noise: "quiet".into(),
                lock: "parking".into(),
                hold_us: 5,
                workers: 2,
                cpu_max: 0,
                service: String::new(),
            },
            cell: None,
            rate: 100.0,
            capacity: None,
            duration: 1.0,
            ok,
            error: (!ok).then(|| "boom".into()),
            report: None,
            check: None,
            kernel: None,
            kernel_error: Some("no debugfs".into()),
            throttling: None,
            baseline: off(),
            conditions: "test".into(),
            conditions_detail: serde_json::Value::Null,
            service: "bundled".into(),
            finished: 0,
            boot: String::new(),
        }
    }

    #[test]
    fn appends_survive_a_cut_line_and_resume_keeps_the_file() {
        let dir = std::env::temp_dir().join(format!("rseq-slice-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = Store::open(&dir, false).unwrap();
        s.append(&record("a", false)).unwrap();
        s.append(&record("a", true)).unwrap();
        s.append(&record("b", true)).unwrap();
        drop(s);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("runs.jsonl"))
            .unwrap();
        f.write_all(b"{\"kind\":\"run\",\"key\":\"c\"").unwrap();
        let loaded = load(&dir).unwrap();
        assert_eq!(loaded.skipped.len(), 1, "the cut line is reported");
        let all = loaded.records;
        assert_eq!(all.len(), 3);
        let ok: Vec<&str> = latest_ok(&all).iter().map(|r| r.key.as_str()).collect();
        assert_eq!(ok, ["a", "b"]);
        drop(Store::open(&dir, true).unwrap());
        assert_eq!(load(&dir).unwrap().records.len(), 3);
        drop(Store::open(&dir, false).unwrap());
        assert!(load(&dir).unwrap().records.is_empty() && dir.join("runs.jsonl.prev").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
