//! One copy of this crate per process, found at run time.
//!
//! Cargo's `links` key keeps two copies out of one dependency graph, but not
//! out of one process: two `cdylib`s (two Python extension modules, say),
//! each built with its own copy, share every thread's rseq area while each
//! keeps its own nesting depth. An inner guard of one copy would then set and
//! clear `request` over the other's section, and end its protection.
//!
//! The copies meet at an abstract Unix socket named after the process: the
//! first copy to initialise a thread binds it and keeps it open; any other
//! copy finds the name taken and stays off ([`Unavailable::SecondCopy`]). The
//! name holds the pid and the kernel's per-exec random bytes (`AT_RANDOM`),
//! so processes that share a network namespace but not a pid namespace (the
//! containers of one pod) never meet. Where sockets are refused (a seccomp
//! profile, say), copies cannot be told apart and each behaves as the only
//! one.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Mutex;

use crate::reason::Unavailable;
use crate::sys;

/// This process's verdict (a fork child's pid differs: it decides anew),
/// and the socket that holds the name while this copy owns it.
struct Verdict {
    pid: u32,
    sole: bool,
    _name: Option<UnixDatagram>,
}

static VERDICT: Mutex<Option<Verdict>> = Mutex::new(None);

/// `Ok` when this copy is the process's only one, or the first.
pub(super) fn sole_copy() -> Result<(), Unavailable> {
    let pid = std::process::id();
    let mut v = VERDICT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(v) = v.as_ref()
        && v.pid == pid
    {
        return if v.sole {
            Ok(())
        } else {
            Err(Unavailable::SecondCopy)
        };
    }
    let name = format!("rseq-slice-core/{pid}/{:032x}", sys::at_random());
    let bound = SocketAddr::from_abstract_name(name.as_bytes())
        .and_then(|addr| UnixDatagram::bind_addr(&addr));
    let (sole, socket) = match bound {
        Ok(s) => (true, Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => (false, None),
        // No sockets here: nobody can tell, so go on as the only copy.
        Err(_) => (true, None),
    };
    *v = Some(Verdict {
        pid,
        sole,
        _name: socket,
    });
    if sole {
        Ok(())
    } else {
        Err(Unavailable::SecondCopy)
    }
}
