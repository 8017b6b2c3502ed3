//! The service's shared state: a sharded cache whose shards sit behind the
//! hot lock (parking_lot's mutex, a spin-then-park mutex or a spinlock, see
//! [`LockKind`]), and a counter map behind a plain `std::sync::Mutex` (as
//! services have). In the `locks` variant the shard locks request an
//! extension while held ([`Policy::Always`]) and the counter map's holds go
//! through [`StdMutexExt::lock_slice`]; otherwise the same locks run with
//! [`Policy::Never`] and plain `lock()`.
//!
//! A hold does its LRU update, then busy-waits until `hold` has passed
//! since it acquired the lock (read from the clock, so the hold time is the
//! same on any machine); at `hold` 0 the update is the whole hold, a real
//! hot structure's. Every hold is timed for [`crate::lockstats`].

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lock_api::RawMutex as _;
use lru::LruCache;
use rseq_slice_core::lock::{self, Policy, RawSpin, SpinMutex, StdMutexExt, WithSlice};

use crate::lockstats;
use crate::spin_park::RawSpinPark;

/// Which lock guards the shards (the service's hot lock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// `parking_lot::RawMutex` (spins a little, then parks).
    Parking,
    /// A bounded spin, then parking_lot's lock (`RawSpinPark`).
    Spinpark,
    /// `rseq_slice_core::lock::RawSpin`: spins until it gets the lock.
    Spin,
}

/// One cache entry: a small value and its hit count.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    value: u64,
    hits: u64,
}

/// One shard: a least-recently-used cache ([`lru::LruCache`]) of
/// [`SHARD_CAPACITY`] entries. Against loadgen's default 4 096 uniform keys
/// over 4 shards, three requests in four miss and evict. In virtual time an
/// instruction is a nanosecond whatever memory it touches, so a larger cache
/// would not make a longer hold, only a higher hit rate.
#[derive(Debug)]
pub struct Shard(LruCache<u64, Entry>);

/// Entries per shard before the least recently used goes.
const SHARD_CAPACITY: NonZeroUsize = NonZeroUsize::new(256).unwrap();

impl Shard {
    fn new() -> Shard {
        Shard(LruCache::new(SHARD_CAPACITY))
    }
}

#[derive(Debug)]
enum Shards {
    Parking(Vec<lock::Mutex<parking_lot::RawMutex, Shard>>),
    Spinpark(Vec<lock::Mutex<RawSpinPark, Shard>>),
    Spin(Vec<SpinMutex<Shard>>),
}

/// How the service's state is set up.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Shards (few shards: more contention).
    pub shards: usize,
    /// The hot lock.
    pub lock: LockKind,
    /// Busy time inside each hold.
    pub hold: Duration,
    /// A hold longer than this counts as preempted.
    pub preempted: Duration,
    /// Rounds of hashing in the handler's task-level section (no lock).
    pub work: u32,
    /// Whether holds are slice-extension sections (the `locks` variant).
    pub slice_locks: bool,
}

/// The service's state: a sharded cache, a counter map under a plain
/// `std::sync::Mutex`, and the knobs.
#[derive(Debug)]
pub struct State {
    shards: Shards,
    counters: Mutex<HashMap<&'static str, u64>>,
    /// The setup it was made with.
    pub setup: Setup,
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

/// The hold's real work: find or insert `key` (evicting the least recently
/// used entry when full), mark it used, update its value.
fn update(s: &mut Shard, key: u64) -> u64 {
    let e = s.0.get_or_insert_mut(key, Entry::default);
    e.hits += 1;
    e.value = mix(e.value ^ key ^ e.hits, 4);
    e.value
}

impl State {
    /// The state for `setup`.
    pub fn new(setup: Setup) -> State {
        let n = setup.shards.max(1);
        let p = if setup.slice_locks {
            Policy::Always
        } else {
            Policy::Never
        };
        let shards = match setup.lock {
            LockKind::Parking => Shards::Parking(
                (0..n)
                    .map(|_| {
                        let raw = WithSlice::new(parking_lot::RawMutex::INIT, p);
                        lock::Mutex::from_raw(raw, Shard::new())
                    })
                    .collect(),
            ),
            LockKind::Spinpark => Shards::Spinpark(
                (0..n)
                    .map(|_| {
                        lock::Mutex::from_raw(WithSlice::new(RawSpinPark::INIT, p), Shard::new())
                    })
                    .collect(),
            ),
            LockKind::Spin => Shards::Spin(
                (0..n)
                    .map(|_| SpinMutex::from_raw(RawSpin::new(p), Shard::new()))
                    .collect(),
            ),
        };
        State {
            shards,
            counters: Mutex::new(HashMap::new()),
            setup,
            requests: AtomicU64::new(0),
        }
    }

    fn hold<R: lock_api::RawMutex>(&self, m: &lock_api::Mutex<R, Shard>, key: u64) -> u64 {
        let asked = Instant::now();
        let mut s = m.lock();
        let got = Instant::now();
        let v = update(&mut s, key);
        let until = got + self.setup.hold;
        let mut now = Instant::now();
        while now < until {
            std::hint::spin_loop();
            now = Instant::now();
        }
        drop(s);
        lockstats::record(got - asked, now - got, self.setup.preempted);
        v
    }

    /// Look `key` up under its shard's lock, creating or refreshing its
    /// entry in the shard's LRU, then busy-wait out the hold time (none at
    /// `hold` 0: the hold is the LRU update alone).
    pub fn touch(&self, key: u64) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let i = mix(key, 1) as usize;
        match &self.shards {
            Shards::Parking(v) => self.hold(&v[i % v.len()], key),
            Shards::Spinpark(v) => self.hold(&v[i % v.len()], key),
            Shards::Spin(v) => self.hold(&v[i % v.len()], key),
        }
    }

    /// Count one request of `kind` (a plain `std::sync::Mutex`, as services do).
    pub fn count(&self, kind: &'static str) {
        if self.setup.slice_locks {
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
