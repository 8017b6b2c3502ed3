//! The hot per-thread state every guard touches: where `request` lives, the
//! nesting depth, and the counters.
//!
//! `LOCAL` is a const-initialised thread-local with no destructor, so an
//! access is one `fs`-relative address and it stays valid until the thread is
//! gone (also inside other thread-local destructors and signal handlers).
//! While the extension is off, `ctrl` is null and the outermost guard skips
//! the rseq bytes with one predictable branch: it only counts.

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{Ordering::SeqCst, compiler_fence};

use crate::reason::Unavailable;
use crate::stats::{Cells, SliceStats};
use crate::sys;

/// Who registered the rseq area the thread's guards use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Registrar {
    /// libc, in optimized (v2) mode: glibc 2.41 or later.
    LibcV2,
    /// This crate, on a thread libc left unregistered.
    Crate,
}

/// Whether the extension is on for this thread, and who owns the area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    On(Registrar),
    Off(Unavailable),
}

pub(crate) struct Local {
    /// `&area.slice_ctrl` while the extension is on; null while it is off.
    ctrl: Cell<*mut u8>,
    /// Guards alive on this thread; only the outermost touches `request`.
    /// It never wraps: at `u32::MAX` further guards are inert.
    depth: Cell<u32>,
    counts: Cells,
    /// Whether the last grant's yield returned 1.
    last_yielded: Cell<bool>,
    /// `(granted, yielded)` as of the last [`take_unreported`](Local::take_unreported).
    reported: Cell<(u64, u64)>,
    state: Cell<State>,
}

thread_local! {
    pub(crate) static LOCAL: Local = const { Local::new() };
}

impl Local {
    const fn new() -> Local {
        Local {
            ctrl: Cell::new(ptr::null_mut()),
            depth: Cell::new(0),
            counts: Cells::new(),
            last_yielded: Cell::new(false),
            reported: Cell::new((0, 0)),
            state: Cell::new(State::Off(Unavailable::NotInitialized)),
        }
    }

    /// Enter a section, returning whether it is *armed*: true while the
    /// extension is on, and then [`exit`](Local::exit) must follow. While it
    /// is off this is one load and a predictable branch: nothing is written
    /// or counted, and the section stays inert even if the extension is
    /// switched on before it ends.
    ///
    /// Armed sections nest; only the outermost sets `request`. `depth` goes
    /// up before `request` is set, so a signal handler that interrupts in
    /// between sees a section in progress and leaves the flags alone. At
    /// depth 0 `granted` is always clear (the previous outermost section
    /// yielded or saw it clear), so setting `request` never meets a grant.
    ///
    /// `depth` never wraps: with `u32::MAX` sections open (leaked guards),
    /// a further one is inert. Wrapping to 0 would let the next guard set
    /// `request` while the kernel may hold a grant for the open section.
    ///
    /// An outermost section that finds `request` or `granted` already set
    /// stays inert and counts it in `foreign`: another copy of this crate in
    /// the process (a second shared library, sharing libc's area) has a
    /// section open on this thread, and only that copy may clear its
    /// request or yield its grant. This copy's own bytes are always clear at
    /// depth 0: its outermost exit clears `request`, and a grant ends in the
    /// exit's yield or the kernel's revocation, both of which clear the word.
    #[inline(always)]
    #[must_use]
    pub(crate) fn enter(&self) -> bool {
        let req = self.ctrl.get();
        if req.is_null() {
            return false;
        }
        let d = self.depth.get();
        // SAFETY: a non-null `ctrl` points at this thread's registered
        // `slice_ctrl`, alive until `set(None, ..)` clears it, and 4-byte
        // aligned (offset 28 of an area aligned to at least 32): `request`
        // and `granted` are read as one `u16`, volatile as the kernel writes
        // them.
        if d == 0 && unsafe { ptr::read_volatile(req.cast::<u16>()) } != 0 {
            Cells::bump(&self.counts.foreign);
            return false;
        }
        let Some(up) = d.checked_add(1) else {
            return false;
        };
        self.depth.set(up);
        if d == 0 {
            compiler_fence(SeqCst);
            // SAFETY: a non-null `ctrl` points at this thread's registered
            // area, alive until `set(None, ..)` clears it; the kernel writes
            // the byte too, hence volatile.
            unsafe { ptr::write_volatile(req, 1) };
            compiler_fence(SeqCst);
            Cells::bump(&self.counts.requested);
        }
        true
    }

    /// Leave an armed section: the outermost one clears `request`, then
    /// yields if the kernel granted an extension meanwhile. `depth` drops
    /// last. If the area went away meanwhile (thread exit), only `depth` drops.
    ///
    /// Async-signal-safe, like `enter`: thread-local cells, the rseq bytes
    /// and at most one system call. A grant is only counted here; its
    /// `tracing` event is emitted later, outside any guard
    /// ([`crate::diagnostics::report_grants`]).
    #[inline(always)]
    pub(crate) fn exit(&self) {
        let d = self.depth.get();
        let req = self.ctrl.get();
        if d == 1 && !req.is_null() {
            compiler_fence(SeqCst);
            // SAFETY: as in `enter`; `granted` is the next byte of the same
            // 4-byte `slice_ctrl` word.
            let (before, granted) = unsafe {
                let before = crate::arch::take_request(req);
                (before, ptr::read_volatile(req.add(1)))
            };
            if granted != 0 {
                self.granted_slow();
            } else if before == 0 {
                self.cleared_slow();
            }
            compiler_fence(SeqCst);
        }
        self.depth.set(d.saturating_sub(1));
    }

    #[cold]
    #[inline(never)]
    fn granted_slow(&self) {
        let yielded = sys::slice_yield();
        self.last_yielded.set(yielded);
        Cells::bump(&self.counts.granted);
        if yielded {
            Cells::bump(&self.counts.yielded);
        } else {
            Cells::bump(&self.counts.revoked);
        }
    }

    /// Whether a grant was counted since the last
    /// [`take_unreported`](Local::take_unreported): one compare, for the
    /// paths that report after every section.
    #[cfg(feature = "tracing")]
    #[inline(always)]
    pub(crate) fn has_unreported(&self) -> bool {
        self.counts.granted.get() != self.reported.get().0
    }

    /// The grants counted since the last call, as `(granted, yielded)`, and
    /// mark them reported; `None` when there were none. A grant a signal
    /// handler counts meanwhile is left for the next call.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn take_unreported(&self) -> Option<(u64, u64)> {
        let now = (self.counts.granted.get(), self.counts.yielded.get());
        let before = self.reported.get();
        if now.0 == before.0 {
            return None;
        }
        self.reported.set(now);
        Some((now.0.wrapping_sub(before.0), now.1.wrapping_sub(before.1)))
    }

    /// `(request, granted)` read afresh while the extension is on.
    pub(crate) fn ctrl_bytes(&self) -> Option<(u8, u8)> {
        let req = self.live_ctrl()?.as_ptr();
        // SAFETY: while the extension is on, `ctrl` is this thread's
        // registered `slice_ctrl` (mapped until the thread exits) and
        // `granted` is its next byte; volatile byte reads, because the
        // kernel writes them on this thread's return path.
        unsafe { Some((ptr::read_volatile(req), ptr::read_volatile(req.add(1)))) }
    }

    pub(crate) fn live_ctrl(&self) -> Option<core::ptr::NonNull<u8>> {
        core::ptr::NonNull::new(self.ctrl.get())
    }

    /// The kernel cleared `request` without a grant in sight: the thread was
    /// rescheduled, or a grant was revoked (another interrupt, the timer).
    /// A revoked grant can leave the kernel's slice syscall work armed, and
    /// under `rseq_debug` the next system call validates `slice_ctrl` against
    /// "no grant": a later section that makes a system call with `request`
    /// set would be killed with SIGSEGV. A yield now, with `request` clear,
    /// disarms it (and costs nothing next to the reschedule that got us here).
    #[cold]
    #[inline(never)]
    fn cleared_slow(&self) {
        Cells::bump(&self.counts.cleared);
        sys::slice_yield();
    }

    /// Grants seen so far (cheaper than a whole [`SliceStats`] snapshot).
    pub(crate) fn granted_count(&self) -> u64 {
        self.counts.granted.get()
    }

    /// Whether the last grant's `rseq_slice_yield()` returned 1.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn last_yielded(&self) -> bool {
        self.last_yielded.get()
    }

    /// Whether `init` never ran on this thread (guards are inert, and
    /// nothing decided so).
    #[inline(always)]
    pub(crate) fn never_initialised(&self) -> bool {
        self.ctrl.get().is_null()
            && matches!(self.state.get(), State::Off(Unavailable::NotInitialized))
    }

    pub(crate) fn depth(&self) -> u32 {
        self.depth.get()
    }

    pub(crate) fn state(&self) -> State {
        self.state.get()
    }

    /// Point guards at `ctrl` (`Some`) or make them inert (`None`), and record why.
    pub(crate) fn set(&self, ctrl: Option<*mut u8>, state: State) {
        self.ctrl.set(ctrl.unwrap_or(ptr::null_mut()));
        self.state.set(state);
    }

    pub(crate) fn stats(&self) -> SliceStats {
        self.counts.snapshot()
    }
}

#[cfg(test)]
mod tests {
    //! The protocol on a `Local` of the test's own, pointed at a 4-byte
    //! aligned buffer that stands in for `slice_ctrl` (the thread's real area
    //! is not touched).
    //! A "grant" is the test writing `granted`; the guard's yield then meets
    //! no grant (ENOSYS without the feature, 0 with it): counted as revoked.

    use super::Registrar;
    use super::{Local, State};

    fn on(ctrl: *mut u8) -> Local {
        let l = Local::new();
        l.set(Some(ctrl), State::On(Registrar::Crate));
        l
    }

    #[test]
    fn depth_saturates_instead_of_wrapping() {
        let mut word = [0u32; 1];
        let l = on(word.as_mut_ptr().cast());
        assert!(l.enter());
        // As if u32::MAX - 2 guards had been leaked inside this one.
        l.depth.set(u32::MAX - 1);
        assert!(l.enter());
        assert_eq!(l.depth(), u32::MAX);
        // One more would have wrapped to 0 and set `request` again.
        assert!(!l.enter(), "a guard past u32::MAX must be inert");
        assert_eq!(l.depth(), u32::MAX);
        assert_eq!(l.stats().requested, 1);
    }

    /// Another copy's open section (its `request`, or the kernel's grant for
    /// it) makes an outermost section inert: it neither clears the other's
    /// request nor yields its grant, and it is counted.
    #[test]
    fn another_copys_section_is_left_alone() {
        for (request, granted) in [(1u8, 0u8), (0, 1)] {
            // A u32 buffer: `slice_ctrl` is 4-byte aligned in a real area.
            let mut word = [0u32; 1];
            let ctrl = word.as_mut_ptr().cast::<u8>();
            // SAFETY: `ctrl` points at the 4 bytes of `word`, alive here.
            unsafe { (ctrl.write(request), ctrl.add(1).write(granted)) };
            let l = on(ctrl);
            assert!(!l.enter(), "entered over another copy's section");
            assert_eq!(l.depth(), 0);
            // SAFETY: as above.
            let after = unsafe { (ctrl.read(), ctrl.add(1).read()) };
            assert_eq!(after, (request, granted), "the other copy's bytes changed");
            let s = l.stats();
            assert_eq!((s.foreign, s.requested), (1, 0));
            // The other copy's section ends: this copy's next one is armed.
            // SAFETY: as above.
            unsafe { (ctrl.write(0), ctrl.add(1).write(0)) };
            assert!(l.enter());
            // SAFETY: as above.
            assert_eq!(unsafe { ctrl.read() }, 1);
            l.exit();
            assert_eq!(l.stats().requested, 1);
        }
    }

    /// Nested inside this copy's own section, another copy's bytes are not
    /// looked at: only the outermost section checks.
    #[test]
    fn only_the_outermost_section_checks() {
        let mut word = [0u32; 1];
        let ctrl = word.as_mut_ptr().cast::<u8>();
        let l = on(ctrl);
        assert!(l.enter());
        assert!(
            l.enter(),
            "a nested section saw its own outer request as foreign"
        );
        l.exit();
        l.exit();
        assert_eq!((l.stats().foreign, l.depth()), (0, 0));
    }

    #[cfg(feature = "tracing")]
    #[test]
    fn a_grant_is_counted_at_the_guard_and_reported_later() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};

        /// Sums the `grants` field of the events it sees.
        struct Grants(Arc<AtomicU64>, Arc<AtomicU64>);
        impl tracing::field::Visit for &Grants {
            fn record_u64(&mut self, f: &tracing::field::Field, v: u64) {
                if f.name() == "granted" {
                    self.1.fetch_add(v, Ordering::Relaxed);
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn core::fmt::Debug) {}
        }
        impl tracing::Subscriber for Grants {
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, e: &tracing::Event<'_>) {
                self.0.fetch_add(1, Ordering::Relaxed);
                e.record(&mut &*self);
            }
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }

        let (events, grants) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let _sub = tracing::subscriber::set_default(Grants(events.clone(), grants.clone()));
        let mut word = [0u32; 1];
        let p = word.as_mut_ptr().cast::<u8>();
        let l = on(p);
        for _ in 0..3 {
            assert!(l.enter());
            // SAFETY: `p` points at the 4-byte buffer above, alive here.
            unsafe { p.add(1).write_volatile(1) };
            l.exit();
            // SAFETY: as above; the kernel would clear it at the yield.
            unsafe { p.add(1).write_volatile(0) };
        }
        assert_eq!(l.stats().granted, 3);
        assert_eq!(
            events.load(Ordering::Relaxed),
            0,
            "the guard's exit emitted an event (not async-signal-safe)"
        );
        crate::grant_events::report(&l);
        assert_eq!(events.load(Ordering::Relaxed), 1);
        assert_eq!(grants.load(Ordering::Relaxed), 3);
        // Nothing new: nothing reported.
        crate::grant_events::report(&l);
        assert_eq!(events.load(Ordering::Relaxed), 1);
    }
}
