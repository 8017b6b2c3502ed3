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
use crate::stats::SliceStats;
use crate::sys;
use crate::thread::Registrar;

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
    depth: Cell<u32>,
    requested: Cell<u64>,
    granted: Cell<u64>,
    yielded: Cell<u64>,
    revoked: Cell<u64>,
    cleared: Cell<u64>,
    /// Whether the last grant's yield returned 1.
    last_yielded: Cell<bool>,
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
            requested: Cell::new(0),
            granted: Cell::new(0),
            yielded: Cell::new(0),
            revoked: Cell::new(0),
            cleared: Cell::new(0),
            last_yielded: Cell::new(false),
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
    #[inline(always)]
    #[must_use]
    pub(crate) fn enter(&self) -> bool {
        let req = self.ctrl.get();
        if req.is_null() {
            return false;
        }
        let d = self.depth.get();
        self.depth.set(d.wrapping_add(1));
        if d == 0 {
            compiler_fence(SeqCst);
            // SAFETY: a non-null `ctrl` points at this thread's registered
            // area, alive until `set(None, ..)` clears it; the kernel writes
            // the byte too, hence volatile.
            unsafe { ptr::write_volatile(req, 1) };
            compiler_fence(SeqCst);
            self.requested.set(self.requested.get() + 1);
        }
        true
    }

    /// Leave an armed section: the outermost one clears `request`, then
    /// yields if the kernel granted an extension meanwhile. `depth` drops
    /// last. If the area went away meanwhile (thread exit), only `depth` drops.
    #[inline(always)]
    pub(crate) fn exit(&self) {
        let d = self.depth.get();
        let req = self.ctrl.get();
        if d == 1 && !req.is_null() {
            compiler_fence(SeqCst);
            // SAFETY: as in `enter`; `granted` is the next byte of the same
            // 4-byte `slice_ctrl` word.
            let (before, granted) = unsafe {
                let before = sys::take_request(req);
                (before, ptr::read_volatile(req.add(1)))
            };
            if granted != 0 {
                self.granted_slow();
            } else if before == 0 {
                self.cleared_slow();
            }
            compiler_fence(SeqCst);
        }
        self.depth.set(d.wrapping_sub(1));
    }

    #[cold]
    #[inline(never)]
    fn granted_slow(&self) {
        let yielded = sys::slice_yield();
        self.last_yielded.set(yielded);
        self.granted.set(self.granted.get() + 1);
        if yielded {
            self.yielded.set(self.yielded.get() + 1);
        } else {
            self.revoked.set(self.revoked.get() + 1);
        }
        #[cfg(feature = "tracing")]
        tracing::trace!(target: "rseq_slice", yielded, "time slice extension granted");
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
        self.cleared.set(self.cleared.get() + 1);
        sys::slice_yield();
    }

    /// Grants seen so far (cheaper than a whole [`SliceStats`] snapshot).
    pub(crate) fn granted_count(&self) -> u64 {
        self.granted.get()
    }

    /// Whether the last grant's `rseq_slice_yield()` returned 1.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn last_yielded(&self) -> bool {
        self.last_yielded.get()
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
        SliceStats {
            requested: self.requested.get(),
            granted: self.granted.get(),
            yielded: self.yielded.get(),
            revoked: self.revoked.get(),
            cleared: self.cleared.get(),
        }
    }
}
