//! `cargo run -p rseq-slice-glommio --example hello`: an executor built
//! with the one-liner, a few critical sections, then its thread's state
//! (who registered its rseq area, or why the extension is off) and
//! counters. Runs on any Linux where glommio starts.

use glommio::LocalExecutorBuilder;
use rseq_slice_glommio::{BuilderExt, SliceConfig};

fn main() {
    let cfg = SliceConfig::new();
    let metrics = cfg.metrics();
    let handle = LocalExecutorBuilder::default()
        .with_slice_config(cfg)
        .spawn(|| async {
            let mut sum = 0u64;
            for i in 0..4u64 {
                sum += rseq_slice_glommio::slice_critical(async move {
                    (0..1_000u64).map(|x| x * i).sum::<u64>()
                })
                .await;
            }
            sum
        });
    match handle.map(|h| h.join()) {
        Ok(Ok(sum)) => println!("4 sections computed {sum}"),
        Ok(Err(e)) => eprintln!("the executor failed: {e}"),
        Err(e) => eprintln!("glommio could not start: {e}"),
    }
    for t in metrics.threads() {
        match &t.state {
            Ok(who) => print!("thread {}: extension on (area of {who:?})", t.index),
            Err(why) => print!("thread {}: extension off: {why}", t.index),
        }
        println!(
            "; {} requested, {} granted",
            t.stats.requested, t.stats.granted
        );
    }
}
