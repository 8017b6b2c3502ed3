//! Per-thread registration and enablement.
//!
//! `support` judges the kernel once per process, `area` finds, adopts or
//! registers the thread's rseq area and owns the crate's own, `report` reads
//! it all back for diagnostics.
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

mod area;
mod report;
mod support;

pub use report::{AreaFlags, ThreadReport};
pub use support::kernel_support;

use crate::local::{LOCAL, Registrar, State};
use crate::reason::{Error, Unavailable};
use crate::sys;
use area::{area_of, ctrl_of, register, registered_by};

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

/// Switch the extension off for this thread (prctl SET 0); from then on its
/// guards are inert. Refused inside a critical section.
pub fn disable() -> Result<(), Error> {
    state()?;
    outside_section()?;
    sys::slice_ext_set(false).map_err(Error::Prctl)?;
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
    sys::slice_ext_set(true).map_err(Error::Prctl)?;
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
