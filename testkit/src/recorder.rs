//! One `tracing` recorder for every test binary: a global subscriber that
//! keeps each event's and each new span's level, target, fields and parent
//! span as text.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// The name of the span it belongs to: the explicit parent, or the span
    /// entered on the thread when it was made; `None` for a root.
    pub parent: Option<&'static str>,
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

/// What the library did to a program's tracing, read from its records.
#[derive(Debug)]
pub struct LibraryTrace {
    /// The parent of each span named as asked (the user's spans).
    pub parents: Vec<Option<&'static str>>,
    /// Spans of the library's targets (`rseq_slice*`).
    pub library_spans: usize,
    /// `WARN` events of target `rseq_slice`.
    pub warnings: usize,
}

impl LibraryTrace {
    /// Read `records`, taking spans named `user_span` as the user's.
    pub fn of(records: &[Recorded], user_span: &str) -> LibraryTrace {
        LibraryTrace {
            parents: records
                .iter()
                .filter(|r| r.span == Some(user_span))
                .map(|r| r.parent)
                .collect(),
            library_spans: records
                .iter()
                .filter(|r| r.span.is_some() && r.target.starts_with("rseq_slice"))
                .count(),
            warnings: records
                .iter()
                .filter(|r| r.target == "rseq_slice" && r.level == Level::WARN)
                .count(),
        }
    }
}

/// The process's recorder (installed as the global default on first use).
#[derive(Debug, Default)]
pub struct Recorder {
    records: Mutex<Vec<Recorded>>,
    /// Every span's name, by id.
    names: Mutex<HashMap<u64, &'static str>>,
    next_id: AtomicU64,
}

thread_local! {
    /// The spans entered on this thread, innermost last.
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

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
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn name_of(&self, id: u64) -> Option<&'static str> {
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        names.get(&id).copied()
    }

    /// The parent's name: `explicit`, or the innermost span entered here
    /// when `contextual`.
    fn parent(&self, explicit: Option<&Id>, contextual: bool) -> Option<&'static str> {
        match explicit {
            Some(id) => self.name_of(id.into_u64()),
            None if contextual => ENTERED
                .with(|e| e.borrow().last().copied())
                .and_then(|id| self.name_of(id)),
            None => None,
        }
    }

    fn push(
        &self,
        span: Option<&'static str>,
        m: &Metadata<'_>,
        fields: Fields,
        parent: Option<&'static str>,
    ) {
        self.lock().push(Recorded {
            span,
            level: *m.level(),
            target: m.target().to_string(),
            fields: fields.0,
            parent,
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
        let parent = self.parent(a.parent(), a.is_contextual());
        self.push(Some(a.metadata().name()), a.metadata(), fields, parent);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        names.insert(id, a.metadata().name());
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut fields = Fields(Vec::new());
        e.record(&mut fields);
        let parent = self.parent(e.parent(), e.is_contextual());
        self.push(None, e.metadata(), fields, parent);
    }
    fn enter(&self, id: &Id) {
        ENTERED.with(|e| e.borrow_mut().push(id.into_u64()));
    }
    fn exit(&self, id: &Id) {
        ENTERED.with(|e| {
            let mut e = e.borrow_mut();
            if let Some(i) = e.iter().rposition(|&x| x == id.into_u64()) {
                e.remove(i);
            }
        });
    }
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
        let outer = tracing::debug_span!(target: "user", "outer", index = 1usize).entered();
        let _inner = tracing::debug_span!(target: "user", "inner").entered();
        tracing::trace!(target: "rseq_slice", granted = 5u64, yielded = true, kind = "unpark", "x");
        drop(_inner);
        drop(outer);
        tracing::trace!(target: "rseq_slice", "y");
        let got = &rec.recorded()[start..];
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0].span, Some("outer"));
        assert_eq!(got[0].field("index"), Some("1"));
        assert_eq!(got[0].parent, None);
        assert_eq!(got[1].parent, Some("outer"));
        assert_eq!(got[2].span, None);
        assert_eq!(got[2].parent, Some("inner"));
        assert_eq!(got[3].parent, None, "exited spans are no parents");
        assert_eq!(got[2].level, Level::TRACE);
        assert_eq!(got[2].target, "rseq_slice");
        assert_eq!(got[2].field("granted"), Some("5"));
        assert_eq!(got[2].field("yielded"), Some("true"));
        assert_eq!(got[2].field("kind"), Some("unpark"));
        assert_eq!(got[2].field("message"), Some("x"));
    }
}
