//! The README's lock example as written: one crate, the `locks` feature.

use rseq_slice_tokio::lock::{self, SpinMutex, StdMutexExt};

#[test]
fn readme_locks_example() {
    let map: lock::Mutex<parking_lot::RawMutex, Vec<u8>> = lock::Mutex::new(Vec::new());
    let spin: SpinMutex<u64> = SpinMutex::new(0); // clear-and-recheck spinlock
    let counts = std::sync::Mutex::new(0u64);
    *counts.lock_slice().unwrap() += 1; // std::sync::Mutex
    map.lock().push(1);
    *spin.lock() += 2;
    assert_eq!(
        (map.lock().len(), *spin.lock(), *counts.lock().unwrap()),
        (1, 2, 1)
    );
}
