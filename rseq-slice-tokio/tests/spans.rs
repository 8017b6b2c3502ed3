//! What the one-liner does to a process, seen from outside the library: the
//! user's spans keep their own parents (no span of the library is entered
//! across user code), the reason the extension is off is logged once per
//! process, and nothing is bound where `/proc/net/unix` would show it. Runs
//! on any kernel; `cargo xtask test` also runs it in the guest with the
//! feature on. Its own binary: it installs the global subscriber (testkit's
//! recorder).

use std::collections::HashSet;

use rseq_slice_testkit::{LibraryTrace, Recorder, say};
use rseq_slice_tokio::{BuilderExt, SliceConfig, slice_critical};
use tracing::Instrument;

/// The sockets this process has open.
fn sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| t.to_string_lossy().starts_with("socket:"))
        .count()
}

/// A runtime of two workers, with the one-liner's defaults (`SliceConfig::new()`
/// is what `with_slice_extension()` installs) where `slice` is given.
fn runtime(slice: Option<SliceConfig>) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).enable_all();
    if let Some(cfg) = slice {
        b.with_slice_config(cfg);
    }
    b.build().expect("a runtime")
}

/// Eight tasks, each in a `user_request` span of its own, with a section
/// inside; and a few blocking-pool threads.
async fn user_work() {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            tokio::spawn(async move {
                let span = tracing::info_span!(target: "user", "user_request", i);
                span.in_scope(|| tracing::info!(target: "user", "handling"));
                slice_critical(async { std::hint::black_box(i) })
                    .instrument(span)
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    for _ in 0..4 {
        tokio::task::spawn_blocking(|| ()).await.expect("blocking");
    }
}

#[test]
fn the_one_liner_leaves_user_spans_sockets_and_logs_alone() {
    let rec = Recorder::global();
    let plain = {
        let rt = runtime(None);
        rt.block_on(user_work());
        sockets()
    };
    let start = rec.recorded().len();
    let cfg = SliceConfig::new();
    let metrics = cfg.metrics();
    let rt = runtime(Some(cfg));
    rt.block_on(user_work());
    let with = sockets();
    let unix = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    drop(rt);
    let recorded = rec.recorded()[start..].to_vec();

    let LibraryTrace {
        parents,
        library_spans,
        warnings: warns,
    } = LibraryTrace::of(&recorded, "user_request");
    let reasons: HashSet<_> = metrics
        .threads()
        .iter()
        .filter_map(|t| t.state.err())
        .collect();
    say(format_args!(
        "user spans' parents {parents:?}; library spans {library_spans}; sockets {plain} plain, \
         {with} with the one-liner; WARNs {warns} for {} distinct reasons over {} threads",
        reasons.len(),
        metrics.threads().len()
    ));
    assert_eq!(parents.len(), 8, "{recorded:#?}");
    assert!(parents.iter().all(Option::is_none), "{parents:?}");
    assert_eq!(library_spans, 0, "{recorded:#?}");
    assert_eq!(with, plain, "the one-liner opened sockets");
    assert!(!unix.contains("rseq"), "{unix}");
    assert_eq!(warns, reasons.len(), "{recorded:#?}");
}
