//! The study end to end, small: `--service` with the bundled service as a
//! command, `--replot` from runs.jsonl alone, and `--resume` after a
//! SIGINT. It starts real processes for ~15 s, so it is `#[ignore]`d (the
//! guest suite runs every test binary): `cargo test -p
//! rseq-slice-study --test study -- --ignored`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn study(out: &Path, extra: &[&str]) -> Command {
    let service = format!(
        "{} --variant {{variant}} --port {{port}}",
        env!("CARGO_BIN_EXE_service")
    );
    let mut c = Command::new(env!("CARGO_BIN_EXE_study"));
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c.args([
        "--service",
        &service,
        "--noise",
        "quiet",
        "--variants",
        "off,locks",
    ])
    .args(["--rates", "300", "--samples", "300", "--min-secs", "1"])
    .arg("--out")
    .arg(out)
    .args(extra);
    c
}

fn lines(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("runs.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rseq-slice-study-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
#[ignore = "runs the study for ~15 s"]
fn service_command_replot_and_resume() {
    let out = dir("a");
    let ok = study(&out, &["--repeats", "1"]).status().unwrap();
    assert!(ok.success());
    let runs = lines(&out);
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r["ok"] == true && r["report"]["hist"].as_str().is_some_and(|h| !h.is_empty())));
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    for f in [
        "table.md",
        "results.csv",
        "runs.csv",
        "results.json",
        "latency.png",
        "p999_vs_load.png",
    ] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    let replot = Command::new(env!("CARGO_BIN_EXE_study"))
        .args(["--replot", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(replot.status.success());
    assert_eq!(
        std::fs::read_to_string(out.join("table.md")).unwrap(),
        table
    );
    assert!(
        std::fs::metadata(out.join("p999_vs_load.png"))
            .unwrap()
            .len()
            > 0
    );
    assert!(
        study(&out, &["--repeats", "1", "--resume"])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(lines(&out).len(), 2, "resume ran nothing new");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
#[ignore = "runs the study for ~15 s"]
fn interrupted_matrix_resumes() {
    let out = dir("b");
    let mut child = study(&out, &["--repeats", "2"]).spawn().unwrap();
    let limit = Instant::now() + Duration::from_secs(60);
    while lines(&out).is_empty() && Instant::now() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signals our own child, by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(!child.wait().unwrap().success());
    let before = lines(&out).len();
    assert!(
        (1..4).contains(&before),
        "{before} runs before the interrupt"
    );
    assert!(
        study(&out, &["--repeats", "2", "--resume"])
            .status()
            .unwrap()
            .success()
    );
    let after = lines(&out);
    let keys: std::collections::HashSet<&str> =
        after.iter().filter_map(|r| r["key"].as_str()).collect();
    assert_eq!((after.len(), keys.len()), (4, 4));
    std::fs::remove_dir_all(&out).unwrap();
}
