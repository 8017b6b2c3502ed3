//! `cargo run -p rseq-slice-tokio --example hello`: a runtime built with
//! the one-liner, a few critical sections, then each thread's state (who
//! registered its rseq area, or why the extension is off) and counters.
//! Runs on any Linux: where the kernel lacks the feature, every thread says
//! why, and the sections cost about nothing.

use rseq_slice_tokio::{BuilderExt, SliceConfig};

fn main() -> std::io::Result<()> {
    let cfg = SliceConfig::new();
    let metrics = cfg.metrics();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .with_slice_config(cfg)
        .build()?;
    let sum = rt.block_on(async {
        let tasks: Vec<_> = (0..4u64)
            .map(|i| {
                tokio::spawn(rseq_slice_tokio::slice_critical(async move {
                    (0..1_000u64).map(|x| x * i).sum::<u64>()
                }))
            })
            .collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap_or(0);
        }
        sum
    });
    drop(rt); // the threads stop and publish their final counters
    println!("4 sections computed {sum}");
    for t in metrics.threads() {
        let state = match &t.state {
            Ok(registrar) => format!("extension on (area registered by {registrar:?})"),
            Err(why) => format!("extension off: {why}"),
        };
        println!(
            "thread {} {:?}: {state}; {} sections requested, {} granted",
            t.index,
            t.name.as_deref().unwrap_or("-"),
            t.stats.requested,
            t.stats.granted
        );
    }
    Ok(())
}
