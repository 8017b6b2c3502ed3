//! Per-thread registration and enablement.
//!
//! [`init`] finds or makes the thread's rseq area and turns the extension on:
//! - libc registered an optimized (v2, `__rseq_size` > 32) area: adopt it
//!   (thread pointer + `__rseq_offset`) and enable with prctl;
//! - libc registered a legacy one (20 or 32 bytes): report
//!   [`Unavailable::LibcLegacy`], never re-register;
//! - nobody registered: register the crate's own area (length
//!   `AT_RSEQ_FEATURE_SIZE`, alignment `AT_RSEQ_ALIGN`) with
//!   `RSEQ_FLAG_SLICE_EXT_DEFAULT_ON`, and unregister it in a thread-local
//!   destructor before the thread's memory is freed.

use core::cell::RefCell;
use core::ptr::NonNull;
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::sync::OnceLock;

use rustix::io::Errno;

use crate::abi::{self, Rseq};
use crate::local::{LOCAL, State};
use crate::reason::{Error, Unavailable};
use crate::sys::{self, LibcRseq};

/// Who registered the rseq area the thread's guards use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Registrar {
    /// libc, in optimized (v2) mode: glibc 2.41 or later.
    LibcV2,
    /// This crate, on a thread libc left unregistered.
    Crate,
}

/// How [`init_with`] turns the extension on for an area this crate registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EnableVia {
    /// `RSEQ_FLAG_SLICE_EXT_DEFAULT_ON` at registration: one system call.
    #[default]
    RegistrationFlag,
    /// Register plainly, then `prctl(PR_RSEQ_SLICE_EXTENSION, SET, ENABLE)`.
    Prctl,
}

/// Register (or adopt) this thread's rseq area and enable the extension.
///
/// Idempotent: later calls return the first call's outcome (or the state
/// [`enable`]/[`disable`] left). Guards work either way: on `Err` they
/// are inert.
///
/// ```
/// match rseq_slice_core::init() {
///     Ok(who) => println!("slice extension on, area registered by {who:?}"),
///     Err(why) => println!("slice extension off: {why}"),
/// }
/// ```
pub fn init() -> Result<Registrar, Unavailable> {
    init_with(EnableVia::default())
}

/// [`init`], choosing how the extension is enabled on the crate's own area.
pub fn init_with(via: EnableVia) -> Result<Registrar, Unavailable> {
    match LOCAL.with(|l| l.state()) {
        State::On(r) => return Ok(r),
        State::Off(Unavailable::NotInitialized) => {}
        State::Off(why) => return Err(why),
    }
    let outcome = register(via);
    let state = match outcome {
        Ok((r, _)) => State::On(r),
        Err(why) => State::Off(why),
    };
    LOCAL.with(|l| l.set(outcome.ok().map(|(_, ctrl)| ctrl), state));
    outcome.map(|(r, _)| r)
}

/// Whether the extension is on for this thread: who registered its area, or
/// why it is off.
pub fn state() -> Result<Registrar, Unavailable> {
    match LOCAL.with(|l| l.state()) {
        State::On(r) => Ok(r),
        State::Off(why) => Err(why),
    }
}

/// Switch the extension off for this thread (prctl SET 0); guards fall back
/// are inert. Refused inside a critical section.
pub fn disable() -> Result<(), Error> {
    state()?;
    outside_section()?;
    sys::slice_ext_set(false).map_err(|e| Error::Prctl(crate::Errno::from_rustix(e)))?;
    LOCAL.with(|l| l.set(None, State::Off(Unavailable::Disabled)));
    Ok(())
}

/// Switch the extension back on after [`disable`].
pub fn enable() -> Result<(), Error> {
    let registrar = match state() {
        Ok(_) => return Ok(()),
        Err(Unavailable::Disabled) => registered_by(),
        Err(why) => return Err(why.into()),
    };
    outside_section()?;
    let area = area_of(registrar);
    if area.is_null() {
        return Err(Unavailable::ThreadExiting.into());
    }
    sys::slice_ext_set(true).map_err(|e| Error::Prctl(crate::Errno::from_rustix(e)))?;
    LOCAL.with(|l| l.set(Some(ctrl_of(area)), State::On(registrar)));
    Ok(())
}

fn outside_section() -> Result<(), Error> {
    if LOCAL.with(|l| l.depth()) == 0 {
        Ok(())
    } else {
        Err(Error::InCriticalSection)
    }
}

// ---------------------------------------------------------------------------
// The kernel's verdict, the same for every thread of the process.

/// Whether the running kernel offers the extension at all, judged once per
/// process from the auxiliary vector, `prctl(GET)` and the command line.
pub fn kernel_support() -> Result<(), Unavailable> {
    static VERDICT: OnceLock<Result<(), Unavailable>> = OnceLock::new();
    *VERDICT.get_or_init(|| {
        let (feature_size, _) = sys::auxv_feature_size_align();
        if (feature_size as usize) < abi::FEATURE_SIZE_SLICE {
            return Err(Unavailable::KernelTooOld { feature_size });
        }
        match sys::slice_ext_get() {
            Ok(_) if disabled_on_cmdline() => Err(Unavailable::DisabledAtBoot),
            Ok(_) => Ok(()),
            Err(Errno::INVAL | Errno::NOSYS) => Err(Unavailable::KernelTooOld { feature_size }),
            Err(e) if e.raw_os_error() == abi::ENOTSUPP => Err(Unavailable::NotBuiltIn),
            Err(e) => Err(Unavailable::EnableFailed(crate::Errno::from_rustix(e))),
        }
    })
}

/// `rseq_slice_ext=` with a false value (`kstrtobool`: 0, n, N, f, F, off).
/// Any such word disables it: the kernel's handler only ever switches off.
fn disabled_on_cmdline() -> bool {
    cmdline_says_off(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default())
}

fn cmdline_says_off(cmdline: &str) -> bool {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix("rseq_slice_ext="))
        .any(|v| {
            matches!(v.as_bytes().first(), Some(b'0' | b'n' | b'N' | b'f' | b'F'))
                || v.eq_ignore_ascii_case("off")
        })
}

// ---------------------------------------------------------------------------
// Registration.

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

fn register(via: EnableVia) -> Result<(Registrar, *mut u8), Unavailable> {
    kernel_support()?;
    let registered = sys::rseq_is_registered()
        .map_err(|e| Unavailable::RseqUnavailable(crate::Errno::from_rustix(e)))?;
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
    // SAFETY: libc's area lives in the thread's control block, valid for
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
    let area = Area::register(flags)
        .map_err(|e| Unavailable::RegistrationFailed(crate::Errno::from_rustix(e)))?;
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
    sys::slice_ext_set(true).map_err(|e| Unavailable::EnableFailed(crate::Errno::from_rustix(e)))
}

fn registered_by() -> Registrar {
    if OWNED.try_with(|o| o.borrow().is_some()).unwrap_or(false) {
        Registrar::Crate
    } else {
        Registrar::LibcV2
    }
}

fn area_of(r: Registrar) -> *mut Rseq {
    match r {
        Registrar::Crate => OWNED
            .try_with(|o| o.borrow().as_ref().map(|o| o.0.ptr.as_ptr()))
            .ok()
            .flatten()
            .unwrap_or(core::ptr::null_mut()),
        Registrar::LibcV2 => LibcRseq::get().map_or(core::ptr::null_mut(), |l| l.area()),
    }
}

fn ctrl_of(area: *mut Rseq) -> *mut u8 {
    area.cast::<u8>().wrapping_add(abi::SLICE_CTRL_OFFSET)
}

// ---------------------------------------------------------------------------
// Reading the area back.

/// The feature bits of `struct rseq::flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaFlags(pub u32);

impl AreaFlags {
    /// `RSEQ_CS_FLAG_SLICE_EXT_AVAILABLE`.
    pub fn available(self) -> bool {
        self.0 & abi::FLAG_SLICE_EXT_AVAILABLE != 0
    }
    /// `RSEQ_CS_FLAG_SLICE_EXT_ENABLED`.
    pub fn enabled(self) -> bool {
        self.0 & abi::FLAG_SLICE_EXT_ENABLED != 0
    }
}

fn flags_of(area: *mut Rseq) -> AreaFlags {
    // SAFETY: `area` is the calling thread's registered area.
    AreaFlags(unsafe { sys::read_u32(&raw const (*area).flags) })
}

/// What the kernel and libc say about this thread, read afresh: the
/// probe example prints it, tests assert on it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThreadReport {
    /// `getauxval(AT_RSEQ_FEATURE_SIZE)`.
    pub feature_size: u32,
    /// `getauxval(AT_RSEQ_ALIGN)`.
    pub align: u32,
    /// libc's `__rseq_*` symbols, where it exports them.
    pub libc: Option<LibcRseq>,
    /// Whether the thread has an rseq registration (anyone's).
    pub registered: Result<bool, crate::Errno>,
    /// The flags of the area guards use, when the extension is on.
    pub flags: Option<AreaFlags>,
    /// `prctl(PR_RSEQ_SLICE_EXTENSION, GET)`.
    pub prctl_enabled: Result<bool, crate::Errno>,
    /// [`state`]: who registered, or why the extension is off.
    pub state: Result<Registrar, Unavailable>,
}

impl ThreadReport {
    /// Read it all for the calling thread.
    pub fn read() -> ThreadReport {
        let (feature_size, align) = sys::auxv_feature_size_align();
        let state = state();
        ThreadReport {
            feature_size,
            align,
            libc: LibcRseq::get(),
            registered: sys::rseq_is_registered().map_err(crate::Errno::from_rustix),
            flags: state.ok().map(|r| flags_of(area_of(r))),
            prctl_enabled: sys::slice_ext_get().map_err(crate::Errno::from_rustix),
            state,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cmdline_values_follow_kstrtobool() {
        let off = |c: &str| super::cmdline_says_off(c);
        assert!(off("quiet rseq_slice_ext=off"));
        assert!(off("rseq_slice_ext=0 loglevel=1"));
        assert!(off("rseq_slice_ext=n"));
        assert!(!off("rseq_slice_ext=on"));
        assert!(!off("rseq_slice_ext=1"));
        assert!(!off("quiet rseq_debug=1"));
        // The kernel's handler only switches off, so a later "on" cannot undo it.
        assert!(off("rseq_slice_ext=off rseq_slice_ext=on"));
    }
}
