//! Why the extension is off on a thread, in words a user can act on.

use core::fmt;

/// An error number from a system call (`ENOSYS`, `EPERM`, …), shown as the
/// system's message. Convert it with `std::io::Error::from` for `kind()`.
///
/// The crate's own type, so that no dependency's major version becomes part
/// of this API.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

impl Errno {
    pub(crate) const BUSY: Errno = Errno(libc::EBUSY);
    pub(crate) const FAULT: Errno = Errno(libc::EFAULT);
    pub(crate) const INVAL: Errno = Errno(libc::EINVAL);
    pub(crate) const NOMEM: Errno = Errno(libc::ENOMEM);
    pub(crate) const NOSYS: Errno = Errno(libc::ENOSYS);

    /// The error `raw` (`libc::ENOSYS`, …).
    pub const fn from_raw(raw: i32) -> Errno {
        Errno(raw)
    }

    /// The number (`libc::ENOSYS`, …).
    pub fn raw(self) -> i32 {
        self.0
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({}: {self})", self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        std::io::Error::from_raw_os_error(self.0).fmt(f)
    }
}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> std::io::Error {
        std::io::Error::from_raw_os_error(e.0)
    }
}

/// Why the time slice extension is not in effect on the calling thread.
///
/// Every variant's `Display` says what to do about it. Guards keep working
/// whatever the reason: they are inert (one load and a branch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unavailable {
    /// [`init`](crate::init) has not run on this thread yet.
    NotInitialized,
    /// The kernel predates the extension (Linux < 7.0): its
    /// `AT_RSEQ_FEATURE_SIZE` has no `slice_ctrl` (0 means no value at all),
    /// or `prctl(PR_RSEQ_SLICE_EXTENSION)` is unknown to it (EINVAL).
    KernelTooOld {
        /// `getauxval(AT_RSEQ_FEATURE_SIZE)`.
        feature_size: u32,
    },
    /// Linux ≥ 7.0 built without `CONFIG_RSEQ_SLICE_EXTENSION` (prctl ENOTSUPP).
    NotBuiltIn,
    /// The kernel has the feature but it was switched off at boot
    /// (`rseq_slice_ext=off` on the kernel command line).
    DisabledAtBoot,
    /// libc registered rseq in legacy (v1) mode, which never gets the
    /// extension, and a thread cannot register twice.
    LibcLegacy {
        /// libc's `__rseq_size` (20 or 32).
        size: u32,
    },
    /// Something other than libc and this copy of the crate registered rseq
    /// on this thread: another library, or another copy of this crate in the
    /// process (a second shared library built with its own) that registered
    /// its own area.
    ForeignRegistration,
    /// The `rseq` system call is missing (ENOSYS) or refused (EPERM or
    /// another error from a seccomp filter or an LSM).
    RseqUnavailable(Errno),
    /// `rseq_slice_yield()` (syscall 471) is refused, typically by a seccomp
    /// profile older than Linux 7.0: a grant could never be handed back, so
    /// the extension stays off.
    YieldBlocked(Errno),
    /// Registering the crate's own rseq area failed.
    RegistrationFailed(Errno),
    /// The kernel accepted the registration only in legacy mode (an
    /// architecture without the generic entry code).
    LegacyOnly,
    /// `prctl(PR_RSEQ_SLICE_EXTENSION, SET, ENABLE)` failed.
    EnableFailed(Errno),
    /// [`disable`](crate::disable) switched it off on this thread.
    Disabled,
    /// The thread is exiting: its rseq area was already unregistered.
    ThreadExiting,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NotInitialized => f.write_str(
                "rseq-slice is not initialised on this thread: call rseq_slice_core::init() \
                 once on it (runtime adapters do this from their thread-start hooks)",
            ),
            Unavailable::KernelTooOld { feature_size } => write!(
                f,
                "the kernel has no rseq time slice extension (AT_RSEQ_FEATURE_SIZE is \
                 {feature_size}, the extension needs 33): run Linux 7.0 or later built with \
                 CONFIG_RSEQ_SLICE_EXTENSION=y"
            ),
            Unavailable::NotBuiltIn => f.write_str(
                "the kernel was built without CONFIG_RSEQ_SLICE_EXTENSION (prctl answers \
                 ENOTSUPP): run a kernel configured with it",
            ),
            Unavailable::DisabledAtBoot => f.write_str(
                "the rseq time slice extension was disabled at boot (rseq_slice_ext=off on \
                 the kernel command line): remove that option",
            ),
            Unavailable::LibcLegacy { size } => write!(
                f,
                "libc registered rseq in legacy mode (__rseq_size = {size}), which never gets \
                 the extension: run with GLIBC_TUNABLES=glibc.pthread.rseq=0 so rseq-slice \
                 registers its own area, or use glibc 2.41 or later"
            ),
            Unavailable::ForeignRegistration => f.write_str(
                "another library (or another copy of rseq-slice-core in this process) registered \
                 rseq on this thread and libc does not describe it: rseq-slice leaves foreign \
                 registrations alone",
            ),
            Unavailable::RseqUnavailable(e) if e.raw() == libc::ENOSYS => write!(
                f,
                "the rseq system call is unavailable ({e}): the kernel lacks CONFIG_RSEQ, or \
                 a seccomp filter answers ENOSYS for it: allow rseq (syscall {})",
                libc::SYS_rseq
            ),
            Unavailable::RseqUnavailable(e) => write!(
                f,
                "the rseq system call is refused ({e}): a seccomp filter or an LSM denies it: \
                 allow rseq (syscall {})",
                libc::SYS_rseq
            ),
            Unavailable::YieldBlocked(e) => write!(
                f,
                "rseq_slice_yield (syscall {}) is refused ({e}), so a grant could not be handed \
                 back: the seccomp profile predates Linux 7.0; allow that system call",
                crate::abi::SYS_RSEQ_SLICE_YIELD
            ),
            Unavailable::RegistrationFailed(e) => {
                write!(f, "registering this thread's rseq area failed: {e}")
            }
            Unavailable::LegacyOnly => f.write_str(
                "the kernel registered rseq only in legacy mode on this architecture, which \
                 has no time slice extension",
            ),
            Unavailable::EnableFailed(e) => {
                write!(f, "prctl(PR_RSEQ_SLICE_EXTENSION, SET, ENABLE) failed: {e}")
            }
            Unavailable::Disabled => f.write_str(
                "the extension was disabled on this thread with rseq_slice_core::disable(); \
                 enable() turns it back on",
            ),
            Unavailable::ThreadExiting => {
                f.write_str("the thread is exiting and its rseq area is already unregistered")
            }
        }
    }
}

impl std::error::Error for Unavailable {}

/// An operation that cannot run in the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The extension is not in effect on this thread.
    Unavailable(Unavailable),
    /// Called inside a critical section; switching the extension there could
    /// leave a request behind that the kernel later treats as a violation.
    InCriticalSection,
    /// The kernel refused the prctl.
    Prctl(Errno),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unavailable(u) => u.fmt(f),
            Error::InCriticalSection => f.write_str(
                "cannot switch the time slice extension inside a critical section: drop the \
                 guard first",
            ),
            Error::Prctl(e) => write!(f, "prctl(PR_RSEQ_SLICE_EXTENSION) failed: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Unavailable> for Error {
    fn from(u: Unavailable) -> Self {
        Error::Unavailable(u)
    }
}

#[cfg(test)]
mod tests {
    use super::Errno;

    #[test]
    fn an_errno_reads_as_the_system_says() {
        let e = Errno(libc::ENOSYS);
        assert_eq!(e.raw(), libc::ENOSYS);
        assert_eq!(std::io::Error::from(e).raw_os_error(), Some(libc::ENOSYS));
        assert!(e.to_string().contains("not implemented"), "{e}");
        assert!(format!("{e:?}").starts_with("Errno(38: "), "{e:?}");
    }
}
