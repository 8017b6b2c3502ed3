//! Which qemu boots the guest: Debian 12's own (7.2), trixie's (10.0), run
//! from a root of its own in the cache through that root's dynamic loader,
//! libraries and firmware, or 7.2 with bounded turns, built by the xtask
//! ([`crate::qemu_bounded`]).
//!
//! They differ where several vCPUs share one host thread (`-icount`): 7.2
//! gives each round's whole instruction budget (up to the next timer) to the
//! first vCPU that has work, so the others run only when it halts; 10.0
//! splits it evenly between them (upstream commit 83ecdb18, qemu 8.1);
//! bounded turns end each vCPU's turn after a quantum of Q instructions.

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
    /// Debian 12's qemu 7.2 with each vCPU's turn capped at `--quantum`
    /// instructions, built into the cache from source.
    Bounded,
}

/// The environment variable the patched qemu reads its quantum from.
pub(crate) const QUANTUM_ENV: &str = "QEMU_ICOUNT_QUANTUM";
/// The smallest quantum: TCG's largest translation block (the patch
/// refuses less: a turn could end before its first block).
pub(crate) const MIN_QUANTUM: u32 = 512;
/// The quantum unless `--quantum` says otherwise.
pub(crate) const DEFAULT_QUANTUM: u32 = 5000;

/// A qemu and, for bounded turns, its quantum: what boots the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Emulator {
    qemu: Qemu,
    /// Instructions per vCPU turn (`Qemu::Bounded` only).
    quantum: Option<u32>,
}

impl Emulator {
    /// `qemu`, with `quantum` for bounded turns (default
    /// [`DEFAULT_QUANTUM`]); a quantum for another qemu is an error.
    pub(crate) fn new(qemu: Qemu, quantum: Option<u32>) -> Result<Self> {
        match (qemu, quantum) {
            (Qemu::Bounded, q) => {
                let q = q.unwrap_or(DEFAULT_QUANTUM);
                if q < MIN_QUANTUM {
                    return Err(format!("--quantum must be at least {MIN_QUANTUM}, not {q}").into());
                }
                Ok(Emulator {
                    qemu,
                    quantum: Some(q),
                })
            }
            (_, Some(_)) => Err("--quantum needs --qemu bounded".into()),
            (_, None) => Ok(Emulator {
                qemu,
                quantum: None,
            }),
        }
    }

    /// Debian 12's own qemu.
    pub(crate) fn host() -> Self {
        Emulator {
            qemu: Qemu::Host,
            quantum: None,
        }
    }

    /// What results carry (`RSEQ_SLICE_QEMU`, the conditions' `qemu`).
    pub(crate) fn describe(self) -> String {
        match (self.qemu, self.quantum) {
            (Qemu::Host, _) => "qemu 7.2 (Debian 12)".into(),
            (Qemu::Trixie, _) => "qemu 10.0 (Debian trixie)".into(),
            (Qemu::Bounded, q) => format!(
                "qemu 7.2 + bounded turns (Q={}, Debian {})",
                q.unwrap_or(DEFAULT_QUANTUM),
                crate::qemu_bounded::DEBIAN_VERSION
            ),
        }
    }

    /// A name for files.
    pub(crate) fn slug(self) -> String {
        match (self.qemu, self.quantum) {
            (Qemu::Host, _) => "qemu7.2".into(),
            (Qemu::Trixie, _) => "qemu10.0".into(),
            (Qemu::Bounded, q) => format!("qemu7.2-q{}", q.unwrap_or(DEFAULT_QUANTUM)),
        }
    }

    /// The binary for `vng --qemu`, or `None` for vng's own choice (PATH).
    pub(crate) fn binary(self) -> Result<Option<PathBuf>> {
        match self.qemu {
            Qemu::Host => Ok(None),
            Qemu::Trixie => trixie().map(Some),
            Qemu::Bounded => crate::qemu_bounded::binary().map(Some),
        }
    }

    /// What qemu's environment must hold (vng passes its own on).
    pub(crate) fn env(self) -> Option<(&'static str, String)> {
        match (self.qemu, self.quantum) {
            (Qemu::Bounded, Some(q)) => Some((QUANTUM_ENV, q.to_string())),
            _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quantum_belongs_to_bounded_turns_and_is_recorded() {
        let b = Emulator::new(Qemu::Bounded, None).unwrap();
        assert_eq!(
            b.describe(),
            format!(
                "qemu 7.2 + bounded turns (Q=5000, Debian {})",
                crate::qemu_bounded::DEBIAN_VERSION
            )
        );
        assert_eq!(b.slug(), "qemu7.2-q5000");
        assert_eq!(b.env(), Some((QUANTUM_ENV, "5000".to_string())));
        let b = Emulator::new(Qemu::Bounded, Some(20_000)).unwrap();
        assert_eq!(b.slug(), "qemu7.2-q20000");
        assert!(Emulator::new(Qemu::Bounded, Some(511)).is_err());
        assert!(Emulator::new(Qemu::Host, Some(5000)).is_err());
        let h = Emulator::new(Qemu::Host, None).unwrap();
        assert_eq!(h, Emulator::host());
        assert_eq!((h.slug().as_str(), h.env()), ("qemu7.2", None));
    }
}
