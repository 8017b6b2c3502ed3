//! The service's shared state: a sharded cache whose shards sit behind a
//! slice-aware `parking_lot` mutex ([`ShardLock`]), and a counter map behind a
//! plain `std::sync::Mutex` (as services have). In the `locks` variant the
//! shard locks request an extension while held ([`Policy::Always`]) and the
//! counter map's holds go through [`StdMutexExt::lock_slice`]; otherwise the
//! same locks run with [`Policy::Never`] and plain `lock()`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use lock_api::RawMutex as _;
use rseq_slice_core::{Policy, RawSlice, SliceMutex, StdMutexExt};

/// The shard lock: `parking_lot`'s raw mutex, wrapped.
pub type ShardLock<T> = SliceMutex<parking_lot::RawMutex, T>;

fn shard_lock<T>(value: T, slice: bool) -> ShardLock<T> {
    let policy = if slice { Policy::Always } else { Policy::Never };
    ShardLock::from_raw(RawSlice::new(parking_lot::RawMutex::INIT, policy), value)
}

/// One cache entry: a small value, its hit count and its last use.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    value: u64,
    hits: u64,
    stamp: u64,
}

/// One shard: entries, a clock for LRU-ish eviction, and a capacity.
#[derive(Debug, Default)]
pub struct Shard {
    map: HashMap<u64, Entry>,
    clock: u64,
}

/// Entries per shard before the least recently used of a sample goes.
const SHARD_CAPACITY: usize = 256;

/// The service's state: a sharded cache, a counter map under a plain
/// `std::sync::Mutex`, and the work knob.
#[derive(Debug)]
pub struct State {
    shards: Vec<ShardLock<Shard>>,
    counters: Mutex<HashMap<&'static str, u64>>,
    /// Rounds of hashing done while a shard lock is held.
    pub work: u32,
    /// Whether holds are slice-extension sections (the `locks` variant).
    pub slice_locks: bool,
    requests: AtomicU64,
}

/// A small, deterministic amount of CPU work: `rounds` of a 64-bit mix.
#[inline]
pub fn mix(mut x: u64, rounds: u32) -> u64 {
    for i in 0..rounds {
        x ^= x >> 33;
        x = x
            .wrapping_mul(0xff51_afd7_ed55_8ccd)
            .wrapping_add(u64::from(i));
        x ^= x >> 29;
    }
    std::hint::black_box(x)
}

impl State {
    /// `shards` shards, `work` rounds of hashing per hold.
    pub fn new(shards: usize, work: u32, slice_locks: bool) -> State {
        State {
            shards: (0..shards.max(1))
                .map(|_| shard_lock(Shard::default(), slice_locks))
                .collect(),
            counters: Mutex::new(HashMap::new()),
            work,
            slice_locks,
            requests: AtomicU64::new(0),
        }
    }

    /// Look `key` up, creating or refreshing its entry (LRU-ish: when the
    /// shard is full, the oldest of a few sampled entries is evicted).
    pub fn touch(&self, key: u64) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let shard = &self.shards[(mix(key, 1) as usize) % self.shards.len()];
        let work = self.work;
        let mut s = shard.lock();
        {
            s.clock += 1;
            let clock = s.clock;
            if s.map.len() >= SHARD_CAPACITY && !s.map.contains_key(&key) {
                let victim = s
                    .map
                    .iter()
                    .take(8)
                    .min_by_key(|(_, e)| e.stamp)
                    .map(|(k, _)| *k);
                if let Some(v) = victim {
                    s.map.remove(&v);
                }
            }
            let e = s.map.entry(key).or_default();
            e.hits += 1;
            e.stamp = clock;
            e.value = mix(e.value ^ key, work);
            e.value
        }
    }

    /// Count one request of `kind` (a plain `std::sync::Mutex`, as services do).
    pub fn count(&self, kind: &'static str) {
        if self.slice_locks {
            let mut c = self
                .counters
                .lock_slice()
                .unwrap_or_else(|p| p.into_inner());
            *c.entry(kind).or_default() += 1;
        } else {
            let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            *c.entry(kind).or_default() += 1;
        }
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The counter map, copied.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = c.iter().map(|(k, n)| (*k, *n)).collect();
        v.sort();
        v
    }
}
