//! The thread's rseq area: libc's adopted, or the crate's own, registered
//! here and unregistered by a thread-local destructor.

use core::cell::RefCell;
use core::ptr::NonNull;
use std::alloc::{Layout, alloc_zeroed, dealloc};

use crate::Errno;

use super::EnableVia;
use super::report::{AreaFlags, flags_of};
use super::support::kernel_support;
use crate::abi::{self, Rseq};
use crate::local::{LOCAL, Registrar, State};
use crate::reason::Unavailable;
use crate::sys::{self, LibcRseq};

/// A registered area of the crate's own: dropping it unregisters and frees it.
struct Area {
    ptr: NonNull<Rseq>,
    len: u32,
    layout: Layout,
}

impl Area {
    /// Allocate an area as the kernel asks (length `AT_RSEQ_FEATURE_SIZE`,
    /// alignment `AT_RSEQ_ALIGN`) and register it for the calling thread.
    fn register(flags: i32) -> Result<Area, Errno> {
        let (feature_size, align) = sys::auxv_feature_size_align();
        let len = feature_size.max(abi::ORIG_RSEQ_SIZE);
        let align = align.max(abi::ORIG_RSEQ_SIZE).next_power_of_two();
        let size = (len as usize).max(size_of::<Rseq>());
        let layout = Layout::from_size_align(size, align as usize).map_err(|_| Errno::INVAL)?;
        // SAFETY: the layout has a non-zero size.
        let ptr =
            NonNull::new(unsafe { alloc_zeroed(layout) }.cast::<Rseq>()).ok_or(Errno::NOMEM)?;
        // SAFETY: `len` bytes, aligned as AT_RSEQ_ALIGN asks; the `Area`
        // returned unregisters it before freeing it.
        match unsafe { sys::rseq_register(ptr.as_ptr(), len, flags) } {
            Ok(()) => Ok(Area { ptr, len, layout }),
            Err(e) => {
                // SAFETY: allocated above with this layout, never registered.
                unsafe { dealloc(ptr.as_ptr().cast(), layout) };
                Err(e)
            }
        }
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are this thread's own registration.
        if unsafe { sys::rseq_unregister(self.ptr.as_ptr(), self.len) }.is_ok() {
            // SAFETY: allocated in `register` with this layout; the kernel no
            // longer writes to it.
            unsafe { dealloc(self.ptr.as_ptr().cast(), self.layout) };
        }
        // If unregistering failed the kernel may still write there: leak it.
    }
}

/// The thread's area while it lives: at thread exit, guards become inert
/// (later thread-local destructors may still run some), then the area
/// goes.
struct ThreadArea(Area);

impl Drop for ThreadArea {
    fn drop(&mut self) {
        LOCAL.with(|l| l.set(None, State::Off(Unavailable::ThreadExiting)));
    }
}

thread_local! {
    static OWNED: RefCell<Option<ThreadArea>> = const { RefCell::new(None) };
}

pub(super) fn register(via: EnableVia) -> Result<(Registrar, *mut u8), Unavailable> {
    kernel_support()?;
    // Per thread: a seccomp filter may be a thread's own.
    sys::slice_yield_allowed().map_err(Unavailable::YieldBlocked)?;
    let registered = sys::rseq_is_registered().map_err(Unavailable::RseqUnavailable)?;
    if registered {
        adopt_libc()
    } else {
        register_own(via)
    }
}

/// The thread is registered: adopt libc's area if it is the registered one.
fn adopt_libc() -> Result<(Registrar, *mut u8), Unavailable> {
    match LibcRseq::get() {
        Some(libc) if libc.size as usize >= abi::FEATURE_SIZE_SLICE => {
            let area = libc.area();
            if !libc_registered(area, libc.size) {
                return Err(Unavailable::ForeignRegistration);
            }
            let f = flags_of(area);
            if !f.available() {
                return Err(Unavailable::LegacyOnly);
            }
            enable_unless(f)?;
            Ok((Registrar::LibcV2, ctrl_of(area)))
        }
        Some(libc) if libc.size > 0 => Err(Unavailable::LibcLegacy { size: libc.size }),
        _ => Err(Unavailable::ForeignRegistration),
    }
}

/// Whether libc's `area` is this thread's registration. `__rseq_size` is
/// process-wide: glibc sets it when the main thread registers, but a later
/// thread's registration can fail (it then stores
/// `RSEQ_CPU_ID_REGISTRATION_FAILED` in `cpu_id`), and another library may
/// have unregistered glibc's area and registered its own (the kernel then
/// left `RSEQ_CPU_ID_UNINITIALIZED` there). A registered area holds a CPU
/// number; the kernel confirms it.
fn libc_registered(area: *mut Rseq, size: u32) -> bool {
    // SAFETY: libc's area lies in the thread's static TLS (glibc >= 2.41:
    // its extra TLS block; 2.35-2.40: the thread control block), valid for
    // the thread's lifetime whether registered or not.
    let cpu_id = unsafe { sys::read_u32(&raw const (*area).cpu_id) };
    if cpu_id == abi::RSEQ_CPU_ID_REGISTRATION_FAILED || cpu_id == abi::RSEQ_CPU_ID_UNINITIALIZED {
        return false;
    }
    // SAFETY: the thread is registered (the caller checked); libc's area
    // is `size` bytes (glibc registers `__rseq_size` bytes) for the
    // thread's lifetime.
    unsafe { sys::rseq_is_current(area, size) }
}

fn register_own(via: EnableVia) -> Result<(Registrar, *mut u8), Unavailable> {
    let flags = match via {
        EnableVia::RegistrationFlag => abi::RSEQ_FLAG_SLICE_EXT_DEFAULT_ON,
        EnableVia::Prctl => 0,
    };
    // Every early return below drops `area`: unregistered and freed.
    let area = Area::register(flags).map_err(Unavailable::RegistrationFailed)?;
    let f = flags_of(area.ptr.as_ptr());
    if !f.available() {
        return Err(Unavailable::LegacyOnly);
    }
    enable_unless(f)?;
    let ctrl = ctrl_of(area.ptr.as_ptr());
    // A thread already tearing down its thread-locals cannot keep an area:
    // `try_with` fails and the area is dropped with the closure.
    OWNED
        .try_with(|o| *o.borrow_mut() = Some(ThreadArea(area)))
        .map_err(|_| Unavailable::ThreadExiting)?;
    Ok((Registrar::Crate, ctrl))
}

/// prctl-enable the extension unless the area's flags say it is on already.
fn enable_unless(f: AreaFlags) -> Result<(), Unavailable> {
    if f.enabled() {
        return Ok(());
    }
    sys::slice_ext_set(true).map_err(Unavailable::EnableFailed)
}

pub(super) fn registered_by() -> Registrar {
    if OWNED.try_with(|o| o.borrow().is_some()).unwrap_or(false) {
        Registrar::Crate
    } else {
        Registrar::LibcV2
    }
}

pub(super) fn area_of(r: Registrar) -> *mut Rseq {
    match r {
        Registrar::Crate => OWNED
            .try_with(|o| o.borrow().as_ref().map(|o| o.0.ptr.as_ptr()))
            .ok()
            .flatten()
            .unwrap_or(core::ptr::null_mut()),
        Registrar::LibcV2 => LibcRseq::get().map_or(core::ptr::null_mut(), |l| l.area()),
    }
}

pub(super) fn ctrl_of(area: *mut Rseq) -> *mut u8 {
    area.cast::<u8>().wrapping_add(abi::SLICE_CTRL_OFFSET)
}
