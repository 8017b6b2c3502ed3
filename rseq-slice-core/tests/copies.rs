//! Two shared libraries, each with its own copy of the crate, in one
//! process, beside the test binary's own copy: no copy ever touches a
//! section of another, without any file descriptor, name or system call of
//! their own to find each other.
//!
//! - With the crate's own area (glibc's registration off), the first copy to
//!   initialise a thread registers its area; every other copy finds the
//!   thread registered by someone libc does not describe and reports
//!   `ForeignRegistration`: one copy is on.
//! - With glibc ≥ 2.41's area, every copy adopts it and is on; an outermost
//!   section of one that finds another's request or grant in `slice_ctrl`
//!   stays inert and counts it (`SliceStats::foreign`).
//!
//! The library is `testkit/second-copy` (`cargo xtask test` builds it),
//! loaded under two file names so that the loader keeps two copies.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rseq_slice_core::{Registrar, Unavailable};
use rseq_slice_testkit::{Mode, kernel_mode, on_thread, say};

const LIB: &str = "librseq_slice_second_copy.so";

/// The built library: beside the test binary's `deps/` directory.
fn library() -> PathBuf {
    let lib = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join(LIB)));
    match lib {
        Some(lib) if lib.is_file() => lib,
        _ => panic!(
            "{LIB} is not built beside the test binary: `cargo build -p rseq-slice-second-copy` \
             (cargo xtask test does)"
        ),
    }
}

struct Copy {
    init: extern "C" fn() -> i32,
    section: extern "C" fn(extern "C" fn()) -> i32,
    requested: extern "C" fn() -> u64,
    foreign: extern "C" fn() -> u64,
}

/// Load `lib` under the name `as_name` (a fresh file, so a copy of its own).
fn load(lib: &Path, as_name: &Path) -> Copy {
    std::fs::copy(lib, as_name).expect("copying the library");
    let path = CString::new(as_name.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; the library's initialisers are Rust's.
    let h = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!h.is_null(), "dlopen {}", as_name.display());
    let sym = |name: &std::ffi::CStr| {
        // SAFETY: `h` is a live handle (never closed), `name` NUL-terminated.
        let p = unsafe { libc::dlsym(h, name.as_ptr()) };
        assert!(!p.is_null(), "{name:?} missing");
        p
    };
    type Count = extern "C" fn() -> u64;
    // SAFETY: the library defines these four with exactly these types.
    unsafe {
        Copy {
            init: std::mem::transmute::<*mut libc::c_void, extern "C" fn() -> i32>(sym(
                c"copy_init",
            )),
            section: std::mem::transmute::<*mut libc::c_void, extern "C" fn(extern "C" fn()) -> i32>(
                sym(c"copy_section"),
            ),
            requested: std::mem::transmute::<*mut libc::c_void, Count>(sym(c"copy_requested")),
            foreign: std::mem::transmute::<*mut libc::c_void, Count>(sym(c"copy_foreign")),
        }
    }
}

/// The two copies, loaded once per process.
fn copies() -> &'static (Copy, Copy) {
    static COPIES: OnceLock<(Copy, Copy)> = OnceLock::new();
    COPIES.get_or_init(|| {
        let lib = library();
        let dir = std::env::temp_dir().join(format!("rseq-slice-copies-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let pair = (
            load(&lib, &dir.join("copy-a.so")),
            load(&lib, &dir.join("copy-b.so")),
        );
        let _ = std::fs::remove_dir_all(&dir);
        pair
    })
}

extern "C" fn nothing() {}

extern "C" fn section_of_a() {
    (copies().0.section)(nothing);
}

extern "C" fn section_of_b() {
    (copies().1.section)(nothing);
}

/// What `copy_init` answers in `mode` for the first copy to initialise a
/// thread and for a later one.
fn expected_init(mode: Mode) -> (i32, i32) {
    match mode {
        Mode::Crate => (0, 1),
        Mode::LibcV2 => (0, 0),
        Mode::LibcLegacy => (2, 2),
    }
}

/// Each copy's section with the other's nested in it; the checks that
/// failed (none: the copies left each other alone).
fn nest_both_ways(a_on: bool, b_on: bool) -> Vec<String> {
    let (a, b) = copies();
    let mut failed = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failed.push(what);
        }
    };
    for (outer, inner, outer_on, inner_on, name) in [
        (a, section_of_b as extern "C" fn(), a_on, b_on, "A around B"),
        (b, section_of_a as extern "C" fn(), b_on, a_on, "B around A"),
    ] {
        let other = if std::ptr::eq(outer, a) { b } else { a };
        let (requested, foreign) = ((other.requested)(), (other.foreign)());
        let request_after_inner = (outer.section)(inner);
        let (requested2, foreign2) = ((other.requested)(), (other.foreign)());
        check(
            request_after_inner == if outer_on { 1 } else { -1 },
            format!("{name}: the outer request after the inner section is {request_after_inner}"),
        );
        // Inside an outer copy that is off there is no section to leave
        // alone: an inner copy that is on requests as usual.
        let own = u64::from(!outer_on && inner_on);
        check(
            requested2 - requested == own,
            format!(
                "{name}: the inner copy made {} requests inside the outer's section, not {own}",
                requested2 - requested
            ),
        );
        // An inner copy that is on finds the outer's request; one that is
        // off never looks.
        let found = u64::from(outer_on && inner_on);
        check(
            foreign2 - foreign == found,
            format!(
                "{name}: the inner copy counted {} foreign sections, not {found}",
                foreign2 - foreign
            ),
        );
    }
    failed
}

#[test]
fn two_copies_never_touch_each_others_sections() {
    let Some(mode) = kernel_mode("two_copies_never_touch_each_others_sections") else {
        return;
    };
    on_thread(move || {
        let (a, b) = copies();
        let (first, later) = expected_init(mode);
        assert_eq!((a.init)(), first, "the first copy");
        assert_eq!((b.init)(), later, "the second copy");
        let own = rseq_slice_core::init();
        let as_expected = match mode {
            Mode::Crate => own == Err(Unavailable::ForeignRegistration),
            Mode::LibcV2 => own == Ok(Registrar::LibcV2),
            Mode::LibcLegacy => matches!(own, Err(Unavailable::LibcLegacy { .. })),
        };
        assert!(as_expected, "this binary's own copy: {own:?} ({mode:?})");
        let failed = nest_both_ways(first == 0, later == 0);
        say(format_args!(
            "two copies ({}): A on {}, B on {}, A requested {}, B requested {}, foreign A {} B {}",
            mode.name(),
            first == 0,
            later == 0,
            (a.requested)(),
            (b.requested)(),
            (a.foreign)(),
            (b.foreign)()
        ));
        assert!(failed.is_empty(), "{failed:#?}");
    });
}

/// Write `msg` to stderr with one system call (a fork child of a threaded
/// process must not take std's stderr lock).
fn child_say(msg: &str) {
    // SAFETY: a plain write of a live buffer to fd 2.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// A fork child of a thread on which one copy is on: the child's thread
/// keeps that copy's state and area; the other copy initialises there after
/// the fork (and after every descriptor from 3 up is closed, as a daemon
/// does), and still neither touches the other's sections.
#[test]
fn two_copies_in_a_fork_child() {
    let Some(mode) = kernel_mode("two_copies_in_a_fork_child") else {
        return;
    };
    let status = on_thread(move || {
        let (a, b) = copies();
        let (first, later) = expected_init(mode);
        assert_eq!((a.init)(), first, "the first copy, before the fork");
        // SAFETY: the child only makes system calls, runs the copies'
        // sections (no locks) and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let code = std::panic::catch_unwind(|| {
                // SAFETY: closes descriptors only; nothing of ours uses one.
                unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
                let b_init = (b.init)();
                let mut failed = nest_both_ways(first == 0, b_init == 0);
                if b_init != later {
                    failed.push(format!(
                        "the second copy in the child: {b_init}, not {later}"
                    ));
                }
                let on = u32::from(first == 0) + u32::from(b_init == 0);
                child_say(&format!(
                    "fork child ({}): copies on {on}; {failed:?}\n",
                    mode.name()
                ));
                i32::from(!failed.is_empty())
            })
            .unwrap_or(2);
            // SAFETY: ends the child without running the parent's atexit work.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        status
    });
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the fork child failed (wait status {status:#x}; its stderr says which check)"
    );
}
