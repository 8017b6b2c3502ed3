//! The kernel ABI, as `include/uapi/linux/rseq.h` and `include/uapi/linux/prctl.h`
//! of Linux 7.2 define it. Layout only: no code runs here.

use core::mem::{align_of, offset_of, size_of};

/// `struct rseq` as of Linux 7.0+ (the 33-byte "feature size" layout).
///
/// The kernel writes `cpu_id_start` .. `mm_cid` and `slice_ctrl.granted`;
/// user space writes `rseq_cs` and `slice_ctrl.request`. `flags` is read-only
/// for user space since 7.0: bit 4 `SLICE_EXT_AVAILABLE`, bit 5 `SLICE_EXT_ENABLED`.
#[repr(C, align(32))]
#[derive(Debug)]
pub struct Rseq {
    /// CPU the thread last ran on (kernel-written).
    pub cpu_id_start: u32,
    /// CPU id, or `RSEQ_CPU_ID_UNINITIALIZED` / `RSEQ_CPU_ID_REGISTRATION_FAILED`.
    pub cpu_id: u32,
    /// Pointer to the active `struct rseq_cs` (unused by this crate).
    pub rseq_cs: u64,
    /// Feature status bits, written by the kernel.
    pub flags: u32,
    /// NUMA node id (kernel-written).
    pub node_id: u32,
    /// Memory-map concurrency id (kernel-written).
    pub mm_cid: u32,
    /// Time slice extension control: byte 0 `request` (user), byte 1 `granted` (kernel).
    pub slice_ctrl: u32,
    /// First byte past the 7.2 feature set (`offsetof(struct rseq, end) == 33`).
    pub reserved: u8,
}

// The layout is the ABI: pin it at compile time.
const _: () = {
    assert!(offset_of!(Rseq, cpu_id_start) == 0);
    assert!(offset_of!(Rseq, cpu_id) == 4);
    assert!(offset_of!(Rseq, rseq_cs) == 8);
    assert!(offset_of!(Rseq, flags) == 16);
    assert!(offset_of!(Rseq, node_id) == 20);
    assert!(offset_of!(Rseq, mm_cid) == 24);
    assert!(offset_of!(Rseq, slice_ctrl) == SLICE_CTRL_OFFSET);
    assert!(offset_of!(Rseq, reserved) + 1 == FEATURE_SIZE_SLICE);
    assert!(align_of::<Rseq>() == ORIG_RSEQ_SIZE as usize);
    assert!(size_of::<Rseq>() == 64);
};

/// Offset of `slice_ctrl` in `struct rseq`.
pub const SLICE_CTRL_OFFSET: usize = 28;
/// Offset of `granted` relative to `slice_ctrl` (`request` is at 0; bytes, so any endianness).
pub const GRANTED_OFFSET: usize = 1;
/// The smallest `AT_RSEQ_FEATURE_SIZE` that includes `slice_ctrl`.
pub const FEATURE_SIZE_SLICE: usize = 33;
/// The original ("legacy", v1) registration length and alignment.
pub const ORIG_RSEQ_SIZE: u32 = 32;

/// Signature the crate registers with (the value glibc and the selftests use on x86).
pub const RSEQ_SIG: u32 = 0x5305_3053;

/// `RSEQ_FLAG_UNREGISTER`.
pub const RSEQ_FLAG_UNREGISTER: i32 = 1 << 0;
/// `RSEQ_FLAG_SLICE_EXT_DEFAULT_ON`: enable the extension at registration.
pub const RSEQ_FLAG_SLICE_EXT_DEFAULT_ON: i32 = 1 << 1;

/// `RSEQ_CPU_ID_UNINITIALIZED` as the kernel stores it in `cpu_id`.
pub const RSEQ_CPU_ID_UNINITIALIZED: u32 = -1i32 as u32;
/// `RSEQ_CPU_ID_REGISTRATION_FAILED` as glibc stores it in `cpu_id`.
pub const RSEQ_CPU_ID_REGISTRATION_FAILED: u32 = -2i32 as u32;

/// `RSEQ_CS_FLAG_SLICE_EXT_AVAILABLE` in `struct rseq::flags`.
pub const FLAG_SLICE_EXT_AVAILABLE: u32 = 1 << 4;
/// `RSEQ_CS_FLAG_SLICE_EXT_ENABLED` in `struct rseq::flags`.
pub const FLAG_SLICE_EXT_ENABLED: u32 = 1 << 5;

/// `PR_RSEQ_SLICE_EXTENSION`.
pub const PR_RSEQ_SLICE_EXTENSION: i32 = 79;
/// `PR_RSEQ_SLICE_EXTENSION_GET`.
pub const PR_RSEQ_SLICE_EXTENSION_GET: u64 = 1;
/// `PR_RSEQ_SLICE_EXTENSION_SET`.
pub const PR_RSEQ_SLICE_EXTENSION_SET: u64 = 2;
/// `PR_RSEQ_SLICE_EXT_ENABLE`.
pub const PR_RSEQ_SLICE_EXT_ENABLE: u64 = 1;

/// `__NR_rseq_slice_yield` (x86_64 and asm-generic).
pub const SYS_RSEQ_SLICE_YIELD: libc::c_long = 471;

/// `AT_RSEQ_FEATURE_SIZE`.
pub const AT_RSEQ_FEATURE_SIZE: libc::c_ulong = 27;
/// `AT_RSEQ_ALIGN`.
pub const AT_RSEQ_ALIGN: libc::c_ulong = 28;

/// The kernel-internal `ENOTSUPP` (not `ENOTSUP`), which prctl returns.
pub const ENOTSUPP: i32 = 524;
