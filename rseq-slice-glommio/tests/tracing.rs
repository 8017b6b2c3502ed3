//! The tracing the adapter shares with tokio's (core's `runtime`): one
//! `rseq_slice_thread` span per executor thread, and one `WARN` per thread
//! where the extension is off. Its own binary: it installs the global
//! subscriber (testkit's recorder).

use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use rseq_slice_glommio::{BuilderExt, slice_critical};
use rseq_slice_testkit::Recorder;
use tracing::Level;

#[test]
fn each_executor_gets_a_thread_span_and_says_once_why_the_extension_is_off() {
    let rec = Recorder::global();
    let pool = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(2)).with_slice_extension();
    let metrics = pool.metrics();
    for r in pool
        .on_all_shards(|| async {
            for _ in 0..10 {
                slice_critical(async {}).await;
            }
        })
        .unwrap()
        .join_all()
    {
        r.unwrap();
    }
    let threads = metrics.threads();
    let recorded = rec.recorded();
    let ours = || recorded.iter().filter(|r| r.target == "rseq_slice");
    // The `index` of each `rseq_slice_thread` span.
    let mut spans: Vec<&str> = ours()
        .filter(|r| r.span == Some("rseq_slice_thread"))
        .map(|r| r.field("index").unwrap_or_default())
        .collect();
    spans.sort();
    assert_eq!(spans, ["0", "1"], "{recorded:?}");
    let warns = ours()
        .filter(|r| r.span.is_none() && r.level == Level::WARN)
        .count();
    let off = threads.iter().filter(|t| t.state.is_err()).count();
    assert_eq!(warns, off, "{threads:?} {recorded:?}");
}
