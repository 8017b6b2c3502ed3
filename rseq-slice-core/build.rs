//! No build step: this script exists because Cargo accepts a `links` key
//! only in a package with a build script.
//!
//! `links = "rseq_slice"` in Cargo.toml makes Cargo refuse a dependency
//! graph with two semver-incompatible copies of this crate: each copy would
//! keep its own guard `depth` but share the thread's one `slice_ctrl.request`
//! byte, so an inner guard of one copy would clear the request of an outer
//! guard of the other (docs/abi.md, "One copy per binary").

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
}
