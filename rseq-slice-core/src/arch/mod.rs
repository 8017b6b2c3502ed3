//! The only architecture-specific code: clearing `request` in one
//! instruction at a section's end, reading the thread pointer (the base of
//! glibc's `__rseq_offset`), and `rseq_slice_yield()` as a raw system call
//! (no `errno`). One file per architecture.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
pub(crate) use aarch64::{rseq_slice_yield, take_request, thread_pointer};
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::{rseq_slice_yield, take_request, thread_pointer};
