//! The closed loop (`--closed`): every connection sends its next request as
//! soon as the previous answer arrives, for capacity; latency runs from send
//! to answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;
use rseq_slice_study::report::{LoadReport, summarize};

use crate::http::{connect, exchange};
use crate::{Args, Hist, Statuses, count, mix_of, service_metrics};

/// Closed loop: every connection back-to-back until the end; latency is
/// from send to answer.
pub(crate) async fn closed(args: &Args) -> Result<LoadReport> {
    let start = Instant::now();
    let cpu0 = (rseq_slice_study::report::cpu_time(), start);
    let warm = start + Duration::from_secs_f64(args.warmup.min(args.duration));
    let end = start + Duration::from_secs_f64(args.duration);
    let hist: Hist = Arc::new(Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?));
    let (ok, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let statuses = Statuses::default();
    let mix = Arc::new(mix_of(args)?);
    let conns = u64::from(args.connections);
    // Each connection cycles through 64 requests of its own.
    let plan = Arc::new(mix.plan(conns * 64)?);
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..conns {
        let mut c = connect(&args.addr).await?;
        let (hist, ok, errors) = (hist.clone(), ok.clone(), errors.clone());
        let (mix, plan, statuses) = (mix.clone(), plan.clone(), statuses.clone());
        let addr = args.addr.clone();
        tasks.spawn(async move {
            let mut j = 0u64;
            while Instant::now() < end {
                let sent = Instant::now();
                j = (j + 1) % 64;
                let Ok(req) = mix.request(plan[(k * 64 + j) as usize], false) else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let answer = exchange(&mut c, req).await;
                if let Ok(status) = answer {
                    count(&statuses, &errors, status);
                }
                match answer {
                    Ok(status) if status < 500 && sent >= warm => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        let us = (sent.elapsed().as_micros() as u64).max(1);
                        if let Ok(mut h) = hist.lock() {
                            h.saturating_record(us);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        match connect(&addr).await {
                            Ok(n) => c = n,
                            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                }
            }
        });
    }
    let all = async { while tasks.join_next().await.is_some() {} };
    let limit = end + Duration::from_secs_f64(args.grace);
    let _ = tokio::time::timeout_at(limit.into(), all).await;
    tasks.abort_all();
    let service = service_metrics(args).await;
    let h = hist
        .lock()
        .map_err(|_| anyhow::anyhow!("histogram lock poisoned"))?;
    let measured = (args.duration - args.warmup.min(args.duration)).max(1e-3);
    let n = ok.load(Ordering::Relaxed);
    let mut r = summarize(
        &h,
        n as f64 / measured,
        args.duration,
        n,
        n,
        errors.load(Ordering::Relaxed),
        0,
        measured,
        service,
    );
    r.mode = "closed".into();
    r.statuses = statuses.lock().map(|s| s.clone()).unwrap_or_default();
    r.client_cpu = crate::cpu_share(cpu0);
    Ok(r)
}
