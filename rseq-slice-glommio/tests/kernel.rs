//! The adapter on the real kernel (`cargo xtask test` runs this in the
//! guest). On a kernel without the feature the grant checks skip, saying
//! why; the soak and the start/stop loop run everywhere.

use rseq_slice_testkit as common;

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Noise, kernel_mode, say, spin};
use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use glommio::{LocalExecutorBuilder, LocalExecutorPoolBuilder, PoolPlacement};
use rseq_slice_core::diagnostics::KernelStats;
use rseq_slice_glommio::{BuilderExt, SliceStats, ThreadMetrics, Unavailable, slice_critical};

type Ends = (SharedSender<u64>, SharedReceiver<u64>);

/// This thread's (request, granted) bytes, or zeros where guards are
/// inert.
fn slice_ctrl() -> (u8, u8) {
    rseq_slice_core::diagnostics::slice_ctrl().unwrap_or((0, 0))
}

/// One shard of the traffic test: for `run`, send 2 µs `slice_critical`
/// sections' worth of numbers to the other shard, and handle each number
/// received from it in a 2 µs `slice_critical` section. (sent, received).
async fn shard(ends: Arc<Mutex<Vec<Ends>>>, run: Duration) -> (u64, u64) {
    let (tx, rx) = ends.lock().unwrap().pop().expect("one pair per shard");
    // Both shards connect both ends: connect the receiver in its own task
    // (glommio polls it right away), or each shard waits for the other.
    let rx = glommio::spawn_local(rx.connect());
    let tx = tx.connect().await;
    let rx = rx.await;
    let receiver = glommio::spawn_local(async move {
        let mut n = 0u64;
        while let Some(v) = rx.recv().await {
            slice_critical(async {
                spin(Duration::from_micros(2));
                black_box(v)
            })
            .await;
            n += 1;
        }
        n
    });
    let deadline = Instant::now() + run;
    let mut sent = 0;
    while Instant::now() < deadline {
        let pushed = slice_critical(async {
            spin(Duration::from_micros(2));
            tx.try_send(sent).is_ok()
        })
        .await;
        sent += u64::from(pushed);
        glommio::executor().yield_now().await;
    }
    drop(tx);
    (sent, receiver.await)
}

fn channel_pairs() -> Arc<Mutex<Vec<Ends>>> {
    let (ab_tx, ab_rx) = shared_channel::new_bounded(64);
    let (ba_tx, ba_rx) = shared_channel::new_bounded(64);
    Arc::new(Mutex::new(vec![(ab_tx, ba_rx), (ba_tx, ab_rx)]))
}

fn wait_all_stopped(threads: impl Fn() -> Vec<ThreadMetrics>) -> Vec<ThreadMetrics> {
    let t = Instant::now();
    loop {
        let seen = threads();
        if seen.iter().all(|t| !t.alive) || t.elapsed() > Duration::from_secs(10) {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn two_pinned_executors_get_grants_across_shared_channel_traffic() {
    let Some(mode) = kernel_mode("two_pinned_executors_get_grants_across_shared_channel_traffic")
    else {
        return;
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(cpus >= 2, "needs 2 CPUs (the guest boots 2 vCPUs)");
    let noise: Vec<_> = (0..2)
        .map(|cpu| Noise::start(cpu, Duration::from_micros(2), Duration::from_micros(50)))
        .collect();
    let k0 = KernelStats::read().expect("debugfs rseq/stats");
    let pool = LocalExecutorPoolBuilder::new(PoolPlacement::MaxSpread(2, None))
        .name("slice")
        .with_slice_extension();
    let metrics = pool.metrics();
    let ends = channel_pairs();
    let results: Vec<(u64, u64)> = pool
        .on_all_shards(move || shard(ends, Duration::from_secs(3)))
        .expect("pool start")
        .join_all()
        .into_iter()
        .map(|r| r.expect("shard"))
        .collect();
    let threads = wait_all_stopped(|| metrics.threads());
    let k = KernelStats::read().unwrap().since(k0);
    drop(noise);
    let total: SliceStats = metrics.cumulative().stats;
    say(format_args!(
        "glommio grants [{mode:?}]: shards (sent, received) {results:?}; total {total:?}; \
         per executor {:?}; kernel {k:?}",
        threads.iter().map(|t| t.stats.granted).collect::<Vec<_>>()
    ));
    // Every number sent was received (the receiver drains until close).
    assert_eq!(results[0].0, results[1].1);
    assert_eq!(results[1].0, results[0].1);
    // Traffic both ways. How much each way depends on how often glommio's
    // reactor notices the other executor's wake-ups while its own sender
    // keeps it busy: in virtual time one direction has sent as few as 66
    // (one 64-slot channel's worth and two more) against 199 779.
    assert!(results.iter().all(|r| r.0 > 0), "{results:?}");
    assert_eq!(threads.len(), 2);
    let Ok(registrar) = mode.registrar() else {
        assert!(
            threads
                .iter()
                .all(|t| matches!(t.state, Err(Unavailable::LibcLegacy { .. }))),
            "{threads:?}"
        );
        assert_eq!(total.granted, 0);
        return;
    };
    assert!(
        threads.iter().all(|t| t.state == Ok(registrar)),
        "{threads:?}"
    );
    assert!(
        threads.iter().all(|t| t.stats.granted > 0),
        "an executor got no grant: {threads:?}"
    );
    assert!(total.yielded > 0, "{total:?}");
    assert_eq!(k.yielded, total.yielded, "kernel syield vs the metrics");
    // Every kernel grant is seen: as granted, or (revoked before the section
    // ended) as cleared.
    let seen = total.granted + total.cleared;
    assert!(
        k.granted >= total.granted && k.granted <= seen,
        "kernel sgrant {} outside [{}, {seen}]",
        k.granted,
        total.granted
    );
}

#[test]
fn a_soak_of_many_polls_and_channel_traffic_leaves_no_request_behind() {
    let pool = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(2)).with_slice_extension();
    let metrics = pool.metrics();
    let ends = channel_pairs();
    let t = Instant::now();
    let results: Vec<(u64, u64, (u8, u8))> = pool
        .on_all_shards(move || async move {
            let traffic = glommio::spawn_local(shard(ends, Duration::from_millis(500)));
            let tasks: Vec<_> = (0..1000u32)
                .map(|i| {
                    glommio::spawn_local(async move {
                        let mut polls = 0u64;
                        for j in 0..250u32 {
                            if (i + j) % 100 == 0 {
                                glommio::timer::sleep(Duration::from_micros(200)).await;
                            } else if j % 10 == 0 {
                                slice_critical(async { black_box(j) }).await;
                            }
                            glommio::executor().yield_now().await;
                            polls += 1;
                        }
                        polls
                    })
                })
                .collect();
            let mut polls = 0;
            for t in tasks {
                polls += t.await;
            }
            let (sent, _) = traffic.await;
            (polls, sent, slice_ctrl())
        })
        .expect("pool start")
        .join_all()
        .into_iter()
        .map(|r| r.expect("shard"))
        .collect();
    let threads = wait_all_stopped(|| metrics.threads());
    say(format_args!(
        "glommio soak in {:?}: (polls, sent, slice_ctrl) {results:?}; {:?}",
        t.elapsed(),
        metrics.cumulative().stats
    ));
    for (polls, _, ctrl) in &results {
        assert_eq!(*polls, 250_000);
        assert_eq!(*ctrl, (0, 0), "request or granted left set");
    }
    assert!(threads.len() == 2 && threads.iter().all(|t| !t.alive));
}

#[test]
fn executors_started_and_stopped_repeatedly_leave_no_thread_behind() {
    // The area every executor thread must use, where the extension is on.
    let expected = kernel_mode("executors_started_and_stopped_repeatedly (state check)")
        .and_then(|m| m.registrar().ok());
    for _ in 0..20 {
        let single = LocalExecutorBuilder::default().with_slice_extension();
        let m1 = single.metrics();
        let h = single
            .spawn(|| async {
                slice_critical(async {}).await;
                slice_ctrl()
            })
            .expect("executor start");
        assert_eq!(h.join().unwrap(), (0, 0));
        let pool = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(2)).with_slice_extension();
        let m2 = pool.metrics();
        for r in pool
            .on_all_shards(|| async { slice_critical(async {}).await })
            .expect("pool start")
            .join_all()
        {
            r.unwrap();
        }
        for m in [m1, m2] {
            let threads = m.threads();
            assert!(threads.iter().all(|t| !t.alive), "{threads:?}");
            if let Some(r) = expected {
                assert!(threads.iter().all(|t| t.state == Ok(r)), "{threads:?}");
            }
        }
    }
}
