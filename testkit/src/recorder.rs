//! One `tracing` recorder for every test binary: a global subscriber that
//! keeps each event's and each new span's level, target and fields as text.

use std::fmt::Debug;
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One recorded event, or span opened.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The span's name where one was opened; `None` for an event.
    pub span: Option<&'static str>,
    pub level: Level,
    pub target: String,
    /// `(name, value)`; the message is the field `message`.
    pub fields: Vec<(String, String)>,
}

impl Recorded {
    /// The field `name`, as text.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The process's recorder (installed as the global default on first use).
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Vec<Recorded>>);

impl Recorder {
    /// The recorder, installed as the global subscriber the first time.
    pub fn global() -> &'static Recorder {
        static R: OnceLock<&'static Recorder> = OnceLock::new();
        R.get_or_init(|| {
            let r: &'static Recorder = Box::leak(Box::default());
            tracing::subscriber::set_global_default(r)
                .expect("another global tracing subscriber was set first");
            r
        })
    }

    /// How many records so far satisfy `f`.
    pub fn count(&self, f: impl Fn(&Recorded) -> bool) -> usize {
        self.lock().iter().filter(|e| f(e)).count()
    }

    /// Every record so far, in order (one index per record: a test keeps
    /// `len()` as a mark, then reads what came after it).
    pub fn recorded(&self) -> Vec<Recorded> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Recorded>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, span: Option<&'static str>, m: &Metadata<'_>, fields: Fields) {
        self.lock().push(Recorded {
            span,
            level: *m.level(),
            target: m.target().to_string(),
            fields: fields.0,
        });
    }
}

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, f: &Field, v: &dyn Debug) {
        self.0.push((f.name().to_string(), format!("{v:?}")));
    }
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.push((f.name().to_string(), v.to_string()));
    }
}

impl Subscriber for &'static Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, a: &Attributes<'_>) -> Id {
        let mut fields = Fields(Vec::new());
        a.record(&mut fields);
        self.push(Some(a.metadata().name()), a.metadata(), fields);
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut fields = Fields(Vec::new());
        e.record(&mut fields);
        self.push(None, e.metadata(), fields);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the tests read back: numbers and flags as their text, spans
    /// with their name and fields.
    #[test]
    fn events_and_spans_are_kept_as_text() {
        let rec = Recorder::global();
        let start = rec.recorded().len();
        let _span = tracing::debug_span!(target: "rseq_slice", "rseq_slice_thread", index = 1usize)
            .entered();
        tracing::trace!(target: "rseq_slice", grants = 5u64, yielded = true, kind = "unpark", "x");
        let got = &rec.recorded()[start..];
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].span, Some("rseq_slice_thread"));
        assert_eq!(got[0].field("index"), Some("1"));
        assert_eq!(got[1].span, None);
        assert_eq!(got[1].level, Level::TRACE);
        assert_eq!(got[1].target, "rseq_slice");
        assert_eq!(got[1].field("grants"), Some("5"));
        assert_eq!(got[1].field("yielded"), Some("true"));
        assert_eq!(got[1].field("kind"), Some("unpark"));
        assert_eq!(got[1].field("message"), Some("x"));
    }
}
