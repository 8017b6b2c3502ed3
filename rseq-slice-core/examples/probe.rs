//! What this thread and this kernel offer: `cargo run --example probe`.
//!
//! `--expect crate|libc-v2|libc-legacy` exits with status 1 unless the
//! extension is on in the crate's own area / on in libc's adopted optimized
//! area / off because libc's area is legacy (`cargo xtask probe` uses it).

use rseq_slice_core::diagnostics::ThreadReport;
use rseq_slice_core::{Registrar, Unavailable};

/// The `--expect` value, or the reason the command line is wrong.
fn expectation() -> Result<Option<String>, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(None),
        [flag, v]
            if flag == "--expect" && ["crate", "libc-v2", "libc-legacy"].contains(&v.as_str()) =>
        {
            Ok(Some(v.clone()))
        }
        _ => Err(format!(
            "usage: probe [--expect crate|libc-v2|libc-legacy] (got {args:?})"
        )),
    }
}

fn main() {
    let expect = match expectation() {
        Ok(e) => e,
        Err(usage) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let outcome = rseq_slice_core::init();
    let r = ThreadReport::read();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("kernel release        {}", release.trim());
    println!(
        "AT_RSEQ_FEATURE_SIZE  {} (the extension needs 33)",
        r.feature_size
    );
    println!("AT_RSEQ_ALIGN         {}", r.align);
    match r.libc {
        Some(l) => println!(
            "libc __rseq_*         size {} offset {} flags {:#x}",
            l.size, l.offset, l.flags
        ),
        None => println!("libc __rseq_*         not exported (libc without rseq support)"),
    }
    let libc_size = r.libc.map_or(0, |l| l.size);
    let who = match (&outcome, r.registered) {
        (Ok(Registrar::Crate), _) => "this crate".to_string(),
        (Ok(Registrar::LibcV2), _) => "libc, optimized (v2)".to_string(),
        (Ok(other), _) => format!("{other:?}"),
        (Err(_), Ok(true)) if libc_size > 32 => "libc, optimized (v2)".to_string(),
        (Err(_), Ok(true)) if libc_size > 0 => format!("libc, legacy ({libc_size} bytes)"),
        (Err(_), Ok(true)) => "another library".to_string(),
        (Err(_), Ok(false)) => "nobody".to_string(),
        (Err(_), Err(e)) => format!("unknown: rseq() fails with {e}"),
    };
    println!("rseq registered by    {who}");
    match r.flags {
        Some(f) => println!(
            "area flags            {:#x}: AVAILABLE {} ENABLED {}",
            f.0,
            f.available(),
            f.enabled()
        ),
        None => println!("area flags            (no area in use)"),
    }
    match r.prctl_enabled {
        Ok(on) => println!("prctl GET             enabled = {on}"),
        Err(e) => println!("prctl GET             error: {e} (errno {})", e.raw()),
    }
    match &outcome {
        Ok(_) => println!("time slice extension  ON"),
        Err(why) => println!("time slice extension  OFF: {why}"),
    }
    let nsec = std::fs::read_to_string("/sys/kernel/debug/rseq/slice_ext_nsec");
    match nsec {
        Ok(v) => println!("slice_ext_nsec        {} ns", v.trim()),
        Err(e) => println!("slice_ext_nsec        unreadable ({e}; needs root and debugfs)"),
    }
    if let Some(want) = expect {
        let seen = match outcome {
            Ok(Registrar::Crate) => "crate",
            Ok(Registrar::LibcV2) => "libc-v2",
            Err(Unavailable::LibcLegacy { .. }) => "libc-legacy",
            _ => "something else",
        };
        if seen != want {
            eprintln!("probe: expected {want}, found {seen} ({outcome:?})");
            std::process::exit(1);
        }
        println!("expected              {want}: yes");
    }
}
