//! The tracing the adapter shares with tokio's (core's `runtime`): no span
//! of the library around the executor's work (a user span opened in a task
//! keeps its own parent), and the reason the extension is off logged at
//! `WARN` once per process for each distinct reason. Its own binary: it
//! installs the global subscriber (testkit's recorder).

use std::collections::HashSet;

use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use rseq_slice_glommio::{BuilderExt, slice_critical};
use rseq_slice_testkit::{LibraryTrace, Recorder, say};

#[test]
fn user_spans_keep_their_parents_and_the_reason_is_said_once() {
    let rec = Recorder::global();
    let pool = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(2)).with_slice_extension();
    let metrics = pool.metrics();
    for r in pool
        .on_all_shards(|| async {
            for i in 0..10 {
                let span = tracing::info_span!(target: "user", "user_request", i);
                span.in_scope(|| tracing::info!(target: "user", "handling"));
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
    let LibraryTrace {
        parents,
        library_spans,
        warnings: warns,
    } = LibraryTrace::of(&recorded, "user_request");
    let reasons: HashSet<_> = threads.iter().filter_map(|t| t.state.err()).collect();
    say(format_args!(
        "glommio: user spans {}, their parents {:?}; library spans {library_spans}; WARNs \
         {warns} for {} distinct reasons",
        parents.len(),
        parents.iter().collect::<HashSet<_>>(),
        reasons.len()
    ));
    assert_eq!(parents.len(), 20, "{recorded:?}");
    assert!(parents.iter().all(Option::is_none), "{parents:?}");
    assert_eq!(library_spans, 0, "{recorded:?}");
    assert_eq!(warns, reasons.len(), "{threads:?} {recorded:?}");
}
