//! Two shared libraries, each with its own copy of the crate, in one
//! process: the first copy to initialise owns the threads' rseq areas, every
//! other one (this test binary's own included) reports `SecondCopy`, and a
//! guard of the second copy nested in the first's section leaves its request
//! alone.
//!
//! The library is `testkit/second-copy` (`cargo xtask test` builds it),
//! loaded under two file names so that the loader keeps two copies.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use rseq_slice_core::Unavailable;
use rseq_slice_testkit::{kernel_mode, say};

const LIB: &str = "librseq_slice_second_copy.so";

/// The built library: beside the test binary's `deps/` directory.
fn library() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let lib = exe.parent()?.parent()?.join(LIB);
    lib.is_file().then_some(lib)
}

struct Copy {
    init: extern "C" fn() -> i32,
    section: extern "C" fn(extern "C" fn()) -> i32,
    requested: extern "C" fn() -> u64,
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
    // SAFETY: the library defines these three with exactly these types.
    unsafe {
        Copy {
            init: std::mem::transmute::<*mut libc::c_void, extern "C" fn() -> i32>(sym(
                c"copy_init",
            )),
            section: std::mem::transmute::<*mut libc::c_void, extern "C" fn(extern "C" fn()) -> i32>(
                sym(c"copy_section"),
            ),
            requested: std::mem::transmute::<*mut libc::c_void, extern "C" fn() -> u64>(sym(
                c"copy_requested",
            )),
        }
    }
}

static SECOND: std::sync::OnceLock<Copy> = std::sync::OnceLock::new();

extern "C" fn nothing() {}

/// A section of the second copy, nested in the first's.
extern "C" fn second_section() {
    if let Some(b) = SECOND.get() {
        (b.section)(nothing);
    }
}

#[test]
fn a_second_copy_in_the_process_stays_off() {
    let Some(mode) = kernel_mode("a_second_copy_in_the_process_stays_off") else {
        return;
    };
    let Some(lib) = library() else {
        panic!(
            "{LIB} is not built beside the test binary: `cargo build -p rseq-slice-second-copy` (cargo xtask test does)"
        );
    };
    let dir = tempfile_dir();
    let a = load(&lib, &dir.join("copy-a.so"));
    let b = load(&lib, &dir.join("copy-b.so"));
    let on = mode.on();
    // The first copy to initialise is the owner; in legacy-glibc mode it is
    // still the owner, but its reason is libc's.
    assert_eq!((a.init)(), if on { 0 } else { 2 }, "the first copy");
    assert_eq!((b.init)(), 1, "the second copy must report SecondCopy");
    assert_eq!(
        rseq_slice_core::init(),
        Err(Unavailable::SecondCopy),
        "this binary's own copy"
    );
    let _ = SECOND.set(b);
    let b = SECOND.get().unwrap();
    let request_after_inner = (a.section)(second_section);
    say(format_args!(
        "two copies: A requested {}, B requested {}, A's request after B's section {request_after_inner}",
        (a.requested)(),
        (b.requested)()
    ));
    assert_eq!((b.requested)(), 0, "the second copy's guard is inert");
    if on {
        assert_eq!((a.requested)(), 1);
        assert_eq!(request_after_inner, 1, "B's guard cleared A's request");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A directory of this process's own under the temporary directory.
fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("rseq-slice-copies-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("a temporary directory");
    d
}
