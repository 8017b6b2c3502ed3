//! HTTP/1.1 over keep-alive connections, through hyper's client
//! connection: any framing (`Content-Length`, chunked), any status.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long a connect or the final `/metrics` fetch may take: neither may
/// hold a run past its budget (a service that stops answering loses its
/// counters, not the run).
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// One keep-alive connection.
pub(crate) struct Conn(SendRequest<Full<Bytes>>);

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conn")
    }
}

pub(crate) async fn connect(addr: &str) -> Result<Conn> {
    let s = tokio::time::timeout(PATIENCE, TcpStream::connect(addr))
        .await
        .with_context(|| format!("connecting to {addr}: no answer in {PATIENCE:?}"))?
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_nodelay(true)?;
    let (send, conn) = http1::handshake(TokioIo::new(s)).await?;
    tokio::spawn(conn);
    Ok(Conn(send))
}

/// One request and its whole answer on a keep-alive connection; returns
/// the status code.
pub(crate) async fn exchange(c: &mut Conn, req: http::Request<Full<Bytes>>) -> Result<u16> {
    c.0.ready().await?;
    let resp = c.0.send_request(req).await?;
    let status = resp.status().as_u16();
    resp.into_body().collect().await?;
    Ok(status)
}

/// GET `path` on a connection of its own; the body as text.
pub(crate) async fn fetch(addr: &str, path: &str) -> Result<String> {
    tokio::time::timeout(PATIENCE, fetch_now(addr, path))
        .await
        .with_context(|| format!("GET {path}: no answer in {PATIENCE:?}"))?
}

async fn fetch_now(addr: &str, path: &str) -> Result<String> {
    let s = TcpStream::connect(addr).await?;
    let (mut send, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(s)).await?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, "loadgen")
        .body(Empty::new())?;
    let body = send.send_request(req).await?.into_body().collect().await?;
    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
}
