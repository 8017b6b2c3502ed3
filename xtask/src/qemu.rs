//! Which qemu boots the guest: Debian 12's own (7.2), or trixie's (10.0),
//! run from a root of its own in the cache through that root's dynamic
//! loader, libraries and firmware.
//!
//! They differ where several vCPUs share one host thread (`-icount`): 7.2
//! gives each round's whole instruction budget (up to the next timer) to the
//! first vCPU that has work, so the others run only when it halts; 10.0
//! splits it evenly between them (upstream commit 83ecdb18, qemu 8.1).

use std::path::PathBuf;

use crate::Result;
use crate::debian_root::qemu_root;
use crate::kernel::rseq_slice_cache;

/// The qemu a guest boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Qemu {
    /// The host's `qemu-system-x86_64` (Debian 12: 7.2).
    #[default]
    Host,
    /// Debian trixie's qemu 10.0, from a root built into the cache.
    Trixie,
}

impl Qemu {
    /// What results carry.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Qemu::Host => "qemu 7.2 (Debian 12)",
            Qemu::Trixie => "qemu 10.0 (Debian trixie)",
        }
    }

    /// A name for files.
    pub(crate) fn slug(self) -> &'static str {
        match self {
            Qemu::Host => "qemu7.2",
            Qemu::Trixie => "qemu10.0",
        }
    }

    /// The binary for `vng --qemu`, or `None` for vng's own choice (PATH).
    pub(crate) fn binary(self) -> Result<Option<PathBuf>> {
        match self {
            Qemu::Host => Ok(None),
            Qemu::Trixie => trixie().map(Some),
        }
    }
}

/// A script that runs the trixie root's qemu with that root's loader,
/// libraries, modules and firmware.
fn trixie() -> Result<PathBuf> {
    let root = qemu_root()?;
    let r = root.display();
    let script = rseq_slice_cache().join("qemu-system-x86_64-trixie");
    // qemu also looks for modules in its compiled-in directory, which is
    // the host qemu's: a module found only there (one of 7.2's) aborts
    // qemu 10 ("Only modules from the same build can be loaded"). So it
    // runs in a mount namespace of its own, where that directory is the
    // trixie root's.
    let moddir = "/usr/lib/x86_64-linux-gnu/qemu";
    let body = format!(
        "#!/bin/sh\n\
         # qemu 10 from the Debian trixie root at {r} (made by cargo xtask).\n\
         export QEMU_MODULE_DIR='{r}{moddir}'\n\
         run() {{ exec '{r}/usr/lib64/ld-linux-x86-64.so.2' \
         --library-path '{r}/usr/lib/x86_64-linux-gnu:{r}/lib/x86_64-linux-gnu' \
         '{r}/usr/bin/qemu-system-x86_64' -L '{r}/usr/share/qemu' -L '{r}/usr/share/seabios' \"$@\"; }}\n\
         if [ -d '{moddir}' ] && [ -z \"$RSEQ_SLICE_QEMU_NS\" ]; then\n\
         \x20 RSEQ_SLICE_QEMU_NS=1 exec unshare --mount --propagation private \"$0\" \"$@\"\n\
         fi\n\
         if [ -n \"$RSEQ_SLICE_QEMU_NS\" ]; then mount --bind '{r}{moddir}' '{moddir}' || exit 1; fi\n\
         run \"$@\"\n"
    );
    if std::fs::read_to_string(&script).ok().as_deref() != Some(body.as_str()) {
        std::fs::write(&script, body)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(script)
}
