//! Sections at tokio's own lock holds (the service's `tokio-locks` variant),
//! through the hooks of a tokio patched for the study alone
//! (`xtask/tokio/lock-hooks.patch`, built by `cargo xtask study --tokio
//! lock-hooks`, which sets `--cfg rseq_slice_tokio_lock_hooks`).
//!
//! tokio calls `acquire` right after it takes one of its locks (or claims
//! a queue to steal from) and `release` right after it lets go. Holds nest,
//! so the hooks count: the outermost hold of a thread opens one
//! [`SliceGuard`], the last release drops it. Nothing allocates: the count
//! and the guard live in a const-initialised thread-local without a
//! destructor (no hold outlives its thread: tokio's guards end on unwind
//! too).

use std::cell::Cell;
use std::mem::ManuallyDrop;

use rseq_slice_core::SliceGuard;

/// What a stock build says when asked for the variant.
pub const UNAVAILABLE: &str = "the tokio-locks variant needs tokio patched with lock hooks: run it with `cargo xtask study --tokio lock-hooks`";

/// What a study built so puts first in its conditions line, so that its
/// results cannot pass for stock tokio's.
pub const PATCHED: &str =
    "tokio patched with hooks at its own lock holds (xtask/tokio/lock-hooks.patch)";

/// Whether this build's tokio has the lock hooks.
pub const AVAILABLE: bool = cfg!(rseq_slice_tokio_lock_hooks);

/// Nested holds as one section: the first [`enter`](Nest::enter) opens it,
/// the matching last [`exit`](Nest::exit) hands it back to be closed.
pub struct Nest<G> {
    depth: Cell<u32>,
    open: Cell<Option<G>>,
}

impl<G> Nest<G> {
    /// No hold.
    pub const fn new() -> Nest<G> {
        Nest {
            depth: Cell::new(0),
            open: Cell::new(None),
        }
    }

    /// A hold begins: the outermost one opens the section with `open`.
    #[inline]
    pub fn enter(&self, open: impl FnOnce() -> G) {
        let d = self.depth.get();
        if d == 0 {
            self.open.set(Some(open()));
        }
        self.depth.set(d.saturating_add(1));
    }

    /// A hold ends: the outermost one returns the section, for the caller
    /// to close. An exit without a hold returns nothing.
    #[inline]
    #[must_use = "the outermost exit returns the section to close"]
    pub fn exit(&self) -> Option<G> {
        match self.depth.get() {
            0 => None,
            1 => {
                self.depth.set(0);
                self.open.take()
            }
            d => {
                self.depth.set(d - 1);
                None
            }
        }
    }

    /// Holds open.
    pub fn depth(&self) -> u32 {
        self.depth.get()
    }
}

impl<G> std::fmt::Debug for Nest<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nest")
            .field("depth", &self.depth.get())
            .finish_non_exhaustive()
    }
}

impl<G> Default for Nest<G> {
    fn default() -> Self {
        Nest::new()
    }
}

thread_local! {
    // `ManuallyDrop`: no destructor to register, so the first hold of a
    // thread allocates nothing either.
    static HOLDS: Nest<ManuallyDrop<SliceGuard>> = const { Nest::new() };
}

/// tokio's `acquire` hook. A thread the adapter never registered gets an
/// inert guard.
pub fn acquire() {
    HOLDS.with(|h| h.enter(|| ManuallyDrop::new(SliceGuard::new())));
}

/// tokio's `release` hook.
pub fn release() {
    if let Some(g) = HOLDS.with(Nest::exit) {
        drop(ManuallyDrop::into_inner(g));
    }
}

/// Install [`acquire`] and [`release`] as tokio's lock hooks, once per
/// process.
///
/// # Errors
///
/// [`UNAVAILABLE`] in a build with stock tokio; a message if hooks were
/// set already.
pub fn install() -> Result<(), &'static str> {
    #[cfg(rseq_slice_tokio_lock_hooks)]
    {
        if tokio::runtime::set_lock_hooks(acquire, release) {
            Ok(())
        } else {
            Err("tokio's lock hooks were set already")
        }
    }
    #[cfg(not(rseq_slice_tokio_lock_hooks))]
    {
        Err(UNAVAILABLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_holds_are_one_section() {
        let nest = Nest::new();
        let mut opened = 0;
        nest.enter(|| {
            opened += 1;
            "outer"
        });
        nest.enter(|| unreachable!("an inner hold opens nothing"));
        assert_eq!((nest.depth(), opened), (2, 1));
        assert_eq!(nest.exit(), None, "inner release");
        assert_eq!(nest.depth(), 1);
        assert_eq!(nest.exit(), Some("outer"), "outer release");
        assert_eq!(nest.depth(), 0);
        nest.enter(|| "next");
        assert_eq!(nest.exit(), Some("next"), "the next hold opens afresh");
    }

    #[test]
    fn a_release_without_a_hold_does_nothing() {
        let nest = Nest::new();
        assert_eq!(nest.exit(), None);
        nest.enter(|| 1);
        assert_eq!(nest.exit(), Some(1));
        assert_eq!((nest.exit(), nest.depth()), (None, 0));
    }

    #[test]
    fn the_hooks_balance_on_a_thread() {
        std::thread::spawn(|| {
            acquire();
            acquire();
            release();
            assert_eq!(HOLDS.with(Nest::depth), 1);
            release();
            release();
            assert_eq!(HOLDS.with(Nest::depth), 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_hooks_need_no_thread_local_destructor() {
        assert!(!std::mem::needs_drop::<Nest<ManuallyDrop<SliceGuard>>>());
    }

    /// The patched tokio calls the hooks, balanced, at its inject queue
    /// (tasks spawned from outside), its idle bookkeeping and its timer
    /// wheel (sleeps). This process's hooks count instead of guarding.
    #[cfg(rseq_slice_tokio_lock_hooks)]
    #[test]
    fn the_patched_tokio_calls_the_hooks_balanced() {
        use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
        static ACQUIRED: AtomicU64 = AtomicU64::new(0);
        static RELEASED: AtomicU64 = AtomicU64::new(0);
        assert!(tokio::runtime::set_lock_hooks(
            || {
                ACQUIRED.fetch_add(1, Relaxed);
            },
            || {
                RELEASED.fetch_add(1, Relaxed);
            },
        ));
        assert!(!tokio::runtime::set_lock_hooks(|| {}, || {}), "set once");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                rt.spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_micros(i * 50)).await;
                })
            })
            .collect();
        rt.block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
        drop(rt);
        let (a, r) = (ACQUIRED.load(Relaxed), RELEASED.load(Relaxed));
        assert!(a >= 64, "{a} holds for 64 spawns and sleeps");
        assert_eq!(a, r, "every hold released");
    }

    #[test]
    fn a_stock_build_refuses_with_the_way_to_get_it() {
        if AVAILABLE {
            return;
        }
        let e = install().unwrap_err();
        assert!(e.contains("cargo xtask study --tokio lock-hooks"), "{e}");
    }
}
