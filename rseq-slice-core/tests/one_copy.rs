//! Cargo refuses a binary with two semver-incompatible copies of this crate
//! (`links = "rseq_slice"`): each would keep its own guard depth over the
//! thread's one `request` byte.
//!
//! Resolves (offline) a throwaway package that depends on this crate and on
//! a copy of its manifest at version 0.2.0. Needs `cargo` (`CARGO`, which
//! `cargo test` sets); skips, saying why, where it is not set (the guest
//! runs test binaries without cargo).

use rseq_slice_testkit as common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::say;

const CRATE: &str = env!("CARGO_MANIFEST_DIR");

/// A fresh directory of our own under the system's temporary directory.
fn scratch() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "rseq-slice-one-copy-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir(&dir).expect("creating the scratch directory");
    dir
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// This crate's manifest as a later, incompatible release would have it:
/// version 0.2.0, the workspace's values spelled out, no test targets or
/// dev-dependencies.
fn copy_at_0_2(dir: &Path) {
    let manifest = std::fs::read_to_string(Path::new(CRATE).join("Cargo.toml")).unwrap();
    let mut out = String::new();
    for section in manifest.split("\n[") {
        let head = section.lines().next().unwrap_or("");
        if [
            "[[bench]]",
            "[bench]]",
            "[[test]]",
            "[test]]",
            "lints]",
            "dev-dependencies]",
        ]
        .contains(&head)
        {
            continue;
        }
        let text = if out.is_empty() {
            section.to_string()
        } else {
            format!("\n[{section}")
        };
        out += &text
            .replace("version = \"0.1.0\"", "version = \"0.2.0\"")
            .replace("edition.workspace = true", "edition = \"2024\"")
            .replace("rust-version.workspace = true", "")
            .replace("license.workspace = true", "")
            .replace("repository.workspace = true", "");
    }
    assert!(out.contains("version = \"0.2.0\""), "{out}");
    write(&dir.join("Cargo.toml"), &out);
    write(&dir.join("src/lib.rs"), "");
    write(&dir.join("build.rs"), "fn main() {}\n");
}

/// Resolve a package depending on this crate, and on `second` if given.
fn resolve(cargo: &str, dir: &Path, second: Option<&Path>) -> Output {
    let mut deps = format!("first = {{ package = \"rseq-slice-core\", path = {CRATE:?} }}\n");
    if let Some(p) = second {
        deps += &format!("second = {{ package = \"rseq-slice-core\", path = {p:?} }}\n");
    }
    write(
        &dir.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"two-copies\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
             [dependencies]\n{deps}\n[workspace]\n"
        ),
    );
    write(&dir.join("src/main.rs"), "fn main() {}\n");
    let _ = std::fs::remove_file(dir.join("Cargo.lock"));
    Command::new(cargo)
        .args(["generate-lockfile", "--offline"])
        .current_dir(dir)
        .output()
        .expect("running cargo")
}

#[test]
fn cargo_refuses_two_incompatible_copies() {
    let Ok(cargo) = std::env::var("CARGO") else {
        say(format_args!(
            "SKIPPED cargo_refuses_two_incompatible_copies: needs cargo (run by `cargo test`; \
             CARGO is not set)"
        ));
        return;
    };
    let root = scratch();
    copy_at_0_2(&root.join("core-0.2"));
    // One copy resolves: the registry is reachable offline.
    let one = resolve(&cargo, &root.join("app"), None);
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(one.status.success(), "one copy: {}", stderr(&one));
    let two = resolve(&cargo, &root.join("app"), Some(&root.join("core-0.2")));
    let _ = std::fs::remove_dir_all(&root);
    say(format_args!(
        "two copies: cargo {} ({})",
        two.status,
        stderr(&two)
            .lines()
            .find(|l| l.contains("links"))
            .unwrap_or("")
    ));
    assert!(!two.status.success(), "cargo accepted two copies");
    assert!(
        stderr(&two).contains("links to the native library `rseq_slice`"),
        "{}",
        stderr(&two)
    );
}
