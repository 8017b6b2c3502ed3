//! Bad numbers on the command line: each binary exits with clap's one-line
//! error (status 2) before it starts anything, and never panics.

use std::path::PathBuf;
use std::process::Command;

fn rejects(bin: &str, args: &[&str]) {
    let out = Command::new(bin)
        .args(args)
        .output()
        .expect("run the binary");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{bin} {args:?}: {err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{bin} {args:?}: {err}");
    assert!(!err.contains("panicked"), "{bin} {args:?}: {err}");
    assert!(out.stdout.is_empty(), "{bin} {args:?} printed to stdout");
}

#[test]
fn loadgen_rejects_bad_numbers() {
    let b = env!("CARGO_BIN_EXE_loadgen");
    for a in [
        ["--rate", "inf"],
        ["--rate", "nan"],
        ["--rate", "0"],
        ["--rate", "-5"],
        ["--duration", "nan"],
        ["--duration", "inf"],
        ["--warmup", "-1"],
        ["--grace", "inf"],
        ["--connections", "0"],
        ["--keys", "0"],
    ] {
        rejects(b, &a);
    }
}

#[test]
fn noise_rejects_bad_numbers() {
    let b = env!("CARGO_BIN_EXE_noise");
    for a in [
        ["--secs", "inf"],
        ["--secs", "nan"],
        ["--secs", "0"],
        ["--level", "100"],
        ["--busy-us", "-1"],
        ["--wakers", "100000"],
    ] {
        rejects(b, &a);
    }
}

#[test]
fn service_rejects_bad_numbers() {
    let b = env!("CARGO_BIN_EXE_service");
    for a in [
        ["--workers", "0"],
        ["--shards", "0"],
        ["--hold-us", "1000000"],
        ["--max-secs", "0"],
        ["--lock", "ticket"],
    ] {
        rejects(b, &a);
    }
}

#[test]
fn study_rejects_bad_numbers_and_starts_nothing() {
    let b = env!("CARGO_BIN_EXE_study");
    let out = std::env::temp_dir().join(format!("rseq-slice-cli-{}", std::process::id()));
    let o = out.to_str().expect("utf-8 temp dir");
    for a in [
        ["--duration", "nan"],
        ["--min-secs", "inf"],
        ["--loads", "0.5,nan"],
        ["--loads", "0"],
        ["--loads", "3"],
        ["--rates", "inf"],
        ["--warmup", "-1"],
        ["--repeats", "0"],
        ["--samples", "0"],
        ["--resamples", "5"],
        ["--hold-us", "1e9"],
        ["--workers-per-cpu", "0"],
        ["--calibrate-secs", "nan"],
        ["--noise", "loud"],
    ] {
        rejects(b, &[a[0], a[1], "--out", o]);
    }
    assert!(
        !PathBuf::from(&out).exists(),
        "a rejected study created {o}"
    );
}

#[test]
fn study_refuses_more_cpus_than_it_may_use() {
    let out = std::env::temp_dir().join(format!("rseq-slice-cli-cpus-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_study"))
        .args(["--cpus", "4096", "--out"])
        .arg(&out)
        .output()
        .expect("run the study");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "--cpus 4096 was accepted: {err}");
    assert!(
        err.contains("--cpus 4096, but this process may run on"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists(), "a refused study created {}", out.display());
}

#[test]
fn a_study_in_which_every_run_failed_exits_non_zero_and_keeps_its_outputs() {
    let out = std::env::temp_dir().join(format!("rseq-slice-cli-exit3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let o = Command::new(env!("CARGO_BIN_EXE_study"))
        .args([
            "--service",
            "exit 3",
            "--noise",
            "quiet",
            "--variants",
            "off,locks",
        ])
        .args(["--rates", "300", "--samples", "300", "--min-secs", "1"])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run the study");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "every run failed, yet exit 0: {err}");
    assert!(err.contains("no run succeeded"), "{err}");
    assert!(
        out.join("runs.csv").is_file(),
        "the failed runs' record is lost"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_service_of_your_own_runs_with_its_own_variants_mix_and_labels() {
    let out = std::env::temp_dir().join(format!("rseq-slice-cli-kv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let kv = env!("CARGO_BIN_EXE_kv");
    let o = Command::new(env!("CARGO_BIN_EXE_study"))
        .arg("--service")
        .arg(format!("{kv} --variant {{variant}} --port {{port}}"))
        .args(["--variants", "plain,control,sliced", "--baseline", "plain"])
        .args(["--label", "kv", "--noise", "quiet", "--zipf", "1.0"])
        .args([
            "--request",
            "4 GET /{key}",
            "--request",
            "1 PUT /{key} v{key}",
        ])
        .args(["--rates", "200", "--samples", "200", "--min-secs", "1"])
        .args([
            "--metrics-path",
            "/none",
            "--connections",
            "8",
            "--repeats",
            "1",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run the study");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let table = std::fs::read_to_string(out.join("table.md")).expect("table.md");
    assert!(table.contains("### kv: quiet noise"), "{table}");
    assert!(
        !table.contains("µs holds"),
        "the bundled service's labels: {table}"
    );
    for v in ["| plain |", "| control |", "| sliced |"] {
        assert!(table.contains(v), "{v} missing: {table}");
    }
    assert!(table.contains("Ratios against `plain`"), "{table}");
    // A GET before its key's PUT is a 404: counted, not an error.
    assert!(table.contains("404: "), "{table}");
    let runs = std::fs::read_to_string(out.join("runs.jsonl")).expect("runs.jsonl");
    assert_eq!(runs.lines().count(), 3, "{runs}");
    for l in runs.lines() {
        let r: serde_json::Value = serde_json::from_str(l).expect("json");
        assert_eq!(r["ok"], true, "{l}");
        assert_eq!(r["report"]["errors"], 0, "{l}");
        assert!(r["report"]["statuses"]["200"].as_u64() > Some(0), "{l}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn study_refuses_variants_the_bundled_service_lacks_and_a_stray_baseline() {
    let out = std::env::temp_dir().join(format!("rseq-slice-cli-var-{}", std::process::id()));
    for (args, says) in [
        (&["--variants", "off,turbo"][..], "no variant \"turbo\""),
        (
            &["--variants", "off,locks", "--baseline", "sched"][..],
            "is not among the variants",
        ),
        (&["--noise", "command"][..], "needs --noise-cmd"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_study"))
            .args(args)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("run the study");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} was accepted: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "a refused study created {}", out.display());
    }
}

#[test]
fn a_stock_build_refuses_tokio_locks_and_says_how_to_get_it() {
    if rseq_slice_study::tokio_locks::AVAILABLE {
        println!("skipped: this build's tokio has the lock hooks");
        return;
    }
    let how = "cargo xtask study --tokio lock-hooks";
    let out = std::env::temp_dir().join(format!("rseq-slice-cli-tl-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_study"))
        .args(["--variants", "off,tokio-locks", "--out"])
        .arg(&out)
        .output()
        .expect("run the study");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the study accepted tokio-locks: {err}");
    assert!(err.contains(how), "{err}");
    assert!(!out.exists(), "a refused study created {}", out.display());
    let o = Command::new(env!("CARGO_BIN_EXE_service"))
        .args(["--variant", "tokio-locks", "--max-secs", "5"])
        .output()
        .expect("run the service");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the service ran tokio-locks: {err}");
    assert!(err.contains(how), "{err}");
    assert!(o.stdout.is_empty(), "the service listened: {err}");
    assert!(!err.contains("panicked"), "{err}");
}
