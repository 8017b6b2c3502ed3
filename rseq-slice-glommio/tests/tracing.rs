//! The tracing the adapter shares with tokio's (core's `runtime`): one
//! `rseq_slice_thread` span per executor thread, and one `WARN` per thread
//! where the extension is off. Its own binary: it installs the global
//! subscriber.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use rseq_slice_glommio::{BuilderExt, slice_critical};
use tracing::{Level, Metadata, span};

#[derive(Default)]
struct Seen {
    next_id: AtomicU64,
    /// Indices of the `rseq_slice_thread` spans.
    thread_spans: Mutex<Vec<String>>,
    warns: AtomicUsize,
}

struct Index(Option<String>);
impl tracing::field::Visit for Index {
    fn record_u64(&mut self, f: &tracing::field::Field, v: u64) {
        if f.name() == "index" {
            self.0 = Some(v.to_string());
        }
    }
    fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
        if f.name() == "index" {
            self.0 = Some(format!("{v:?}"));
        }
    }
}

impl tracing::Subscriber for &'static Seen {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.target() == "rseq_slice"
    }
    fn new_span(&self, a: &span::Attributes<'_>) -> span::Id {
        if a.metadata().name() == "rseq_slice_thread" {
            let mut v = Index(None);
            a.record(&mut v);
            self.thread_spans
                .lock()
                .unwrap()
                .push(v.0.unwrap_or_default());
        }
        span::Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        if *e.metadata().level() == Level::WARN {
            self.warns.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

#[test]
fn each_executor_gets_a_thread_span_and_says_once_why_the_extension_is_off() {
    let seen: &'static Seen = Box::leak(Box::default());
    tracing::subscriber::set_global_default(seen).unwrap();
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
    let mut spans = seen.thread_spans.lock().unwrap().clone();
    spans.sort();
    assert_eq!(spans, ["0", "1"]);
    let off = threads.iter().filter(|t| t.state.is_err()).count();
    assert_eq!(seen.warns.load(Ordering::Relaxed), off, "{threads:?}");
}
