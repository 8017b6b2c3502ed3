//! glibc's rseq area on the real kernel: glibc 2.41's own (optimized) area
//! is adopted and switched on with prctl, and a libc area that is not the
//! thread's registration is not adopted.
//!
//! On a kernel without the feature every test prints why it skips; `cargo
//! xtask test` runs them in a guest (`rseq_debug=1`) with
//! `RSEQ_SLICE_REQUIRE_KERNEL=1`: with the crate's own registration and glibc
//! 2.36's legacy one on the host's root, and glibc 2.41's own (adopted) in a
//! Debian root, and once more as a static glibc binary.

use rseq_slice_testkit as common;

use common::{Mode, kernel_mode, on_thread, say};
use rseq_slice_core::diagnostics::abi::{self, Rseq};
use rseq_slice_core::diagnostics::{LibcRseq, ThreadReport, request_ptr};
use rseq_slice_core::{Registrar, Unavailable, init};

/// glibc ≥ 2.41's own area: registered without the extension, adopted by
/// `init()` and switched on with prctl; guards then use that very area.
#[test]
fn libc_v2_area_is_adopted_and_enabled_by_prctl() {
    let Some(mode) = kernel_mode("libc_v2_area_is_adopted_and_enabled_by_prctl") else {
        return;
    };
    if mode != Mode::LibcV2 {
        say(format_args!(
            "SKIPPED libc_v2_area_is_adopted_and_enabled_by_prctl: libc registered no \
             optimized area here ({mode:?}; the Debian root's glibc 2.41 does)"
        ));
        return;
    }
    on_thread(|| {
        let libc = LibcRseq::get().expect("glibc 2.41 exports __rseq_*");
        assert!(libc.size >= 33, "{libc:?}");
        let area = libc.area();
        // SAFETY: glibc's area of this thread, in its thread control block.
        let flags_before = unsafe { (&raw const (*area).flags).read_volatile() };
        assert_eq!(
            flags_before & 0x30,
            0x10,
            "glibc registers with the extension AVAILABLE, not ENABLED: {flags_before:#x}"
        );
        assert_eq!(ThreadReport::read().prctl_enabled, Ok(false));
        assert_eq!(init(), Ok(Registrar::LibcV2));
        let ctrl = request_ptr().expect("an area in use");
        assert_eq!(
            ctrl.as_ptr(),
            area.cast::<u8>().wrapping_add(28),
            "guards must use glibc's slice_ctrl"
        );
        let r = ThreadReport::read();
        assert!(
            r.flags.is_some_and(|f| f.available() && f.enabled()),
            "{r:?}"
        );
        assert_eq!(r.prctl_enabled, Ok(true));
    });
}

/// `rseq(area, len, flags, RSEQ_SIG)` for the test below.
fn rseq(area: *mut Rseq, len: u32, flags: i32) -> Result<(), std::io::Error> {
    // SAFETY: the callers keep every area they register alive until they
    // unregister it, and unregister only areas of this thread.
    let ret = unsafe { libc::syscall(libc::SYS_rseq, area, len, flags, abi::RSEQ_SIG) };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `__rseq_size` says glibc registered, but on this thread another area is
/// the registration (another library unregistered glibc's and registered
/// its own; or glibc's registration failed, leaving
/// `RSEQ_CPU_ID_REGISTRATION_FAILED`): guards on glibc's area would never
/// be granted, so it must not be adopted.
#[test]
fn a_libc_area_that_is_not_the_registration_is_not_adopted() {
    let Some(mode) = kernel_mode("a_libc_area_that_is_not_the_registration_is_not_adopted") else {
        return;
    };
    if mode != Mode::LibcV2 {
        say(format_args!(
            "SKIPPED a_libc_area_that_is_not_the_registration_is_not_adopted: libc registered \
             no optimized area here ({mode:?})"
        ));
        return;
    }
    // With cpu_id as the kernel leaves it after unregistering (-1), and as
    // glibc leaves it after a failed registration (-2).
    for cpu_id in [
        abi::RSEQ_CPU_ID_UNINITIALIZED,
        abi::RSEQ_CPU_ID_REGISTRATION_FAILED,
    ] {
        on_thread(move || {
            let libc = LibcRseq::get().unwrap();
            let glibc = libc.area();
            rseq(glibc, libc.size, abi::RSEQ_FLAG_UNREGISTER).expect("unregistering glibc's area");
            // SAFETY: glibc's area of this thread, unregistered: only we write it.
            unsafe { (&raw mut (*glibc).cpu_id).write_volatile(cpu_id) };
            // AT_RSEQ_ALIGN (64) for a 33-byte registration.
            #[repr(C, align(64))]
            struct Aligned(Rseq);
            let foreign = Box::into_raw(Box::new(Aligned(Rseq {
                cpu_id_start: 0,
                cpu_id: abi::RSEQ_CPU_ID_UNINITIALIZED,
                rseq_cs: 0,
                flags: 0,
                node_id: 0,
                mm_cid: 0,
                slice_ctrl: 0,
                reserved: 0,
            })));
            // SAFETY: `foreign` is live; its first field is at offset 0.
            let foreign_area = unsafe { &raw mut (*foreign).0 };
            rseq(foreign_area, 33, 0).expect("registering another area");
            let outcome = init();
            let ctrl = request_ptr();
            // Put glibc's registration back before the thread exits.
            rseq(foreign_area, 33, abi::RSEQ_FLAG_UNREGISTER)
                .expect("unregistering the other area");
            // SAFETY: unregistered above; allocated by Box::into_raw.
            drop(unsafe { Box::from_raw(foreign) });
            rseq(glibc, libc.size, 0).expect("registering glibc's area again");
            assert_eq!(
                outcome,
                Err(Unavailable::ForeignRegistration),
                "glibc's area (cpu_id {cpu_id:#x}) is not this thread's registration"
            );
            assert!(ctrl.is_none());
        });
    }
}
