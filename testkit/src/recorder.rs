//! One `tracing` recorder for every test binary: a global subscriber that
//! keeps each event's level, target and fields as text.

use std::fmt::Debug;
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One recorded event.
#[derive(Debug, Clone)]
pub struct Recorded {
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

    /// How many events so far satisfy `f`.
    pub fn count(&self, f: impl Fn(&Recorded) -> bool) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|e| f(e))
            .count()
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
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut fields = Fields(Vec::new());
        e.record(&mut fields);
        let r = Recorded {
            level: *e.metadata().level(),
            target: e.metadata().target().to_string(),
            fields: fields.0,
        };
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(r);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
