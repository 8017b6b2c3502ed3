//! The locks under test, behind one trait.

use std::sync::Arc;

use rseq_slice_core::lock::{self, Policy, RawSpin, SpinMutex, StdMutexExt, WithSlice};

use crate::{Kind, Variant};

/// One lock under test: run `f` while holding it.
pub(crate) trait Lock: Send + Sync {
    fn locked(&self, f: &mut dyn FnMut());
}

impl Lock for SpinMutex<()> {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _g = self.lock();
        f()
    }
}
impl Lock for parking_lot::Mutex<()> {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _g = self.lock();
        f()
    }
}
impl Lock for lock::Mutex<parking_lot::RawMutex, ()> {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _g = self.lock();
        f()
    }
}
impl Lock for spin::Mutex<()> {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _g = self.lock();
        f()
    }
}
impl Lock for lock::v0_4::Mutex<spin::Mutex<()>, ()> {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _g = self.lock();
        f()
    }
}
impl Lock for std::sync::Mutex<()> {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _g = self.lock().unwrap_or_else(|p| p.into_inner());
        f()
    }
}
/// Any lock under one `SliceGuard` from before locking to after unlocking.
struct Naive(Arc<dyn Lock>);
impl Lock for Naive {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _s = rseq_slice_core::SliceGuard::new();
        self.0.locked(f)
    }
}

/// std's mutex through `lock_slice`.
struct StdSlice(std::sync::Mutex<()>);
impl Lock for StdSlice {
    fn locked(&self, f: &mut dyn FnMut()) {
        let _g = self.0.lock_slice().unwrap_or_else(|p| p.into_inner());
        f()
    }
}

/// The lock for a cell; `None` for a combination that does not exist.
pub(crate) fn make(kind: Kind, variant: Variant, window: u32) -> Option<Arc<dyn Lock>> {
    let policy = match variant {
        Variant::Off => Policy::Never,
        Variant::Always => Policy::Always,
        Variant::Adaptive => Policy::Adaptive { window },
        Variant::Naive => return Some(Arc::new(Naive(make(kind, Variant::Off, window)?))),
    };
    let pl = || <parking_lot::RawMutex as lock_api::RawMutex>::INIT;
    // spin's `Mutex<()>` is its own raw lock for lock_api 0.4.
    let sp = || spin::Mutex::new(());
    Some(match (kind, variant) {
        (Kind::Spin, _) => Arc::new(SpinMutex::from_raw(RawSpin::new(policy), ())),
        (Kind::ParkingLot, Variant::Off) => Arc::new(parking_lot::Mutex::new(())),
        (Kind::ParkingLot, _) => Arc::new(lock::Mutex::from_raw(WithSlice::new(pl(), policy), ())),
        (Kind::SpinCrate, Variant::Off) => Arc::new(spin::Mutex::new(())),
        (Kind::SpinCrate, _) => Arc::new(lock::v0_4::Mutex::from_raw(
            WithSlice::new(sp(), policy),
            (),
        )),
        (Kind::Std, Variant::Off) => Arc::new(std::sync::Mutex::new(())),
        (Kind::Std, Variant::Always) => Arc::new(StdSlice(std::sync::Mutex::new(()))),
        (Kind::Std, Variant::Adaptive | Variant::Naive) => return None,
    })
}
