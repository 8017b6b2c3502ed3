//! Minimal HTTP/1.1 over keep-alive connections: one GET and its
//! `Content-Length` body at a time.

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long a connect or the final `/metrics` fetch may take: neither may
/// hold a run past its budget (a service that stops answering loses its
/// counters, not the run).
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) async fn connect(addr: &str) -> Result<BufReader<TcpStream>> {
    let s = tokio::time::timeout(PATIENCE, TcpStream::connect(addr))
        .await
        .with_context(|| format!("connecting to {addr}: no answer in {PATIENCE:?}"))?
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_nodelay(true)?;
    Ok(BufReader::new(s))
}

/// One request/response on a keep-alive connection; returns the body length.
pub(crate) async fn exchange(
    c: &mut BufReader<TcpStream>,
    path: &str,
    measured: bool,
    line: &mut String,
) -> Result<usize> {
    // A request of the measured window (after the warm-up) says so: a
    // service that times requests itself (the bundled one) times these.
    let mark = if measured { "x-measured: 1\r\n" } else { "" };
    let req = format!("GET {path} HTTP/1.1\r\nHost: loadgen\r\n{mark}\r\n");
    c.get_mut().write_all(req.as_bytes()).await?;
    line.clear();
    c.read_line(line).await?;
    if !line.starts_with("HTTP/1.1 200") {
        bail!("bad status line {line:?}");
    }
    let mut len = 0usize;
    loop {
        line.clear();
        if c.read_line(line).await? == 0 {
            bail!("connection closed in headers");
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().context("content-length")?;
        }
    }
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).await?;
    Ok(len)
}

pub(crate) async fn fetch(addr: &str, path: &str) -> Result<String> {
    tokio::time::timeout(PATIENCE, fetch_now(addr, path))
        .await
        .with_context(|| format!("GET {path}: no answer in {PATIENCE:?}"))?
}

async fn fetch_now(addr: &str, path: &str) -> Result<String> {
    let mut c = connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: loadgen\r\nConnection: close\r\n\r\n");
    c.get_mut().write_all(req.as_bytes()).await?;
    let mut all = String::new();
    c.read_to_string(&mut all).await?;
    Ok(all
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}
