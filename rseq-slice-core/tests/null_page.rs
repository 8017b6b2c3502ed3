//! The registration probe on a process that maps page 0 (possible for root,
//! or anyone where `vm.mmap_min_addr` is 0). Its own binary: the mapping
//! stays for the rest of the process when the check fails.
//!
//! Runs wherever page 0 can be mapped (the guest runs as root); elsewhere
//! it skips, saying why. The page is read and written through
//! `/proc/self/mem`, never through a null pointer.

use rseq_slice_testkit as common;

use std::fs::File;
use std::os::unix::fs::FileExt;

use common::{on_thread, say};
use rseq_slice_core::diagnostics::{LibcRseq, ThreadReport};
use rseq_slice_core::init;

const PATTERN: [u8; 64] = [0xa5; 64];

#[test]
fn the_registration_probe_leaves_a_mapped_page_zero_alone() {
    on_thread(|| {
        // SAFETY: an anonymous private mapping at address 0, where nothing
        // else lives (the kernel refuses if it may not).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if !p.is_null() {
            say(format_args!(
                "SKIPPED the_registration_probe_leaves_a_mapped_page_zero_alone: page 0 cannot \
                 be mapped here (needs root or vm.mmap_min_addr=0): {}",
                std::io::Error::last_os_error()
            ));
            return;
        }
        let mem = File::options()
            .read(true)
            .write(true)
            .open("/proc/self/mem")
            .expect("/proc/self/mem");
        mem.write_all_at(&PATTERN, 0).expect("filling page 0");
        // Probe on a thread nobody registered yet (the guest suite runs with
        // glibc's registration off; with it on, the probe finds glibc's).
        let before = ThreadReport::read();
        let mut page = [0u8; 64];
        mem.read_exact_at(&mut page, 0).expect("reading page 0");
        let libc_registers = LibcRseq::get().is_some_and(|l| l.size > 0);
        say(format_args!(
            "probe with page 0 mapped: registered {:?}, page 0 {}",
            before.registered,
            if page == PATTERN {
                "untouched"
            } else {
                "WRITTEN"
            }
        ));
        assert_eq!(page, PATTERN, "the probe wrote to page 0");
        assert_eq!(before.registered, Ok(libc_registers));
        // Registration works afterwards, and the probe then sees it.
        if init().is_ok() {
            assert_eq!(ThreadReport::read().registered, Ok(true));
        }
        // SAFETY: unmapping the page mapped above; nothing points into it.
        assert_eq!(unsafe { libc::munmap(p, 4096) }, 0);
    });
}
