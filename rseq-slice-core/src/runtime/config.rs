//! What every adapter's `SliceConfig` has, written once: where its metrics
//! go, how its threads turn the extension on, and the user's start and stop
//! hooks ([`ThreadConfig`]), with the builder methods that set them
//! ([`slice_config_methods!`](super::slice_config_methods)).

use std::fmt;
use std::sync::Arc;

use super::SliceMetrics;
use crate::diagnostics::EnableVia;

/// A user's hook, run on a runtime thread.
pub type Hook = Arc<dyn Fn() + Send + Sync + 'static>;

/// The part of an adapter's `SliceConfig` that every adapter has.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ThreadConfig {
    /// Where the runtime's threads report.
    pub metrics: SliceMetrics,
    /// How each thread turns the extension on where the crate registers.
    pub enable_via: EnableVia,
    /// The user's hook, run on each runtime thread after the adapter
    /// registers it.
    pub on_thread_start: Option<Hook>,
    /// The user's hook, run on each runtime thread as it stops, before the
    /// adapter publishes its final counters.
    pub on_thread_stop: Option<Hook>,
}

impl fmt::Debug for ThreadConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadConfig")
            .field("enable_via", &self.enable_via)
            .field("on_thread_start", &self.on_thread_start.is_some())
            .field("on_thread_stop", &self.on_thread_stop.is_some())
            .finish_non_exhaustive()
    }
}

/// The builder methods every adapter's `SliceConfig` has, for a field
/// `$field` of type [`ThreadConfig`]: `metrics`, `with_metrics`,
/// `enable_via`, `on_thread_start` and `on_thread_stop`. The doc lines
/// after each hook's name say when the adapter runs it.
#[doc(hidden)]
#[macro_export]
macro_rules! __slice_config_methods {
    ($field:ident; on_thread_start: $(#[$start:meta])* ; on_thread_stop: $(#[$stop:meta])*) => {
        /// The runtime's per-thread metrics (a handle; clone it freely).
        pub fn metrics(&self) -> $crate::runtime::SliceMetrics {
            self.$field.metrics.clone()
        }

        /// Record into `metrics` (e.g. one registry shared by several
        /// runtimes).
        pub fn with_metrics(mut self, metrics: $crate::runtime::SliceMetrics) -> Self {
            self.$field.metrics = metrics;
            self
        }

        /// How each thread turns the extension on where this crate
        /// registers its rseq area
        /// ([`init_with`](rseq_slice_core::diagnostics::init_with)); the
        /// default is one system call at registration.
        pub fn enable_via(mut self, via: $crate::diagnostics::EnableVia) -> Self {
            self.$field.enable_via = via;
            self
        }

        /// Your hook, run on each runtime thread after the adapter registers
        /// it.
        $(#[$start])*
        pub fn on_thread_start(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
            self.$field.on_thread_start = Some(::std::sync::Arc::new(f));
            self
        }

        /// Your hook, run on each runtime thread as it stops, before the
        /// adapter publishes the thread's final counters (which it does even
        /// if your hook panics).
        $(#[$stop])*
        pub fn on_thread_stop(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
            self.$field.on_thread_stop = Some(::std::sync::Arc::new(f));
            self
        }
    };
}
