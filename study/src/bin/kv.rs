//! A small key-value service shaped like axum's own key-value-store
//! example, to try `study --service` on a service that is not the bundled
//! one: `GET /{key}` (404 when absent), `PUT /{key}` (the body is the
//! value), `DELETE /{key}`; one map behind one `std::sync::Mutex`.
//!
//! Its variants (`--variant`): `plain` (a plain tokio runtime, `lock()`)
//! and `sliced` (`with_slice_extension()` and `lock_slice()`). It listens
//! on `--port` (0: any) and prints `listening <port>`.
//!
//! ```sh
//! cargo build --release -p rseq-slice-study --bins
//! target/release/study --service 'target/release/kv --variant {variant} --port {port}' \
//!   --variants plain,control,sliced --baseline plain --label kv \
//!   --request '4 GET /{key}' --request '1 PUT /{key} v{key}' --zipf 1.0
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use rseq_slice_core::lock::StdMutexExt;
use rseq_slice_tokio::BuilderExt;

type Db = Arc<(Mutex<HashMap<String, String>>, bool)>;

/// The map, locked as the variant says.
fn with<R>(db: &Db, f: impl FnOnce(&mut HashMap<String, String>) -> R) -> R {
    let (map, sliced) = &**db;
    if *sliced {
        f(&mut map.lock_slice().unwrap_or_else(|p| p.into_inner()))
    } else {
        f(&mut map.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

async fn read(State(db): State<Db>, Path(key): Path<String>) -> Result<String, StatusCode> {
    with(&db, |m| m.get(&key).cloned()).ok_or(StatusCode::NOT_FOUND)
}

async fn write(State(db): State<Db>, Path(key): Path<String>, value: String) -> StatusCode {
    with(&db, |m| m.insert(key, value));
    StatusCode::NO_CONTENT
}

async fn remove(State(db): State<Db>, Path(key): Path<String>) -> StatusCode {
    match with(&db, |m| m.remove(&key)) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut variant, mut port) = (String::from("plain"), 0u16);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--variant", Some(v)) => variant = v,
            ("--port", Some(p)) => port = p.parse()?,
            _ => anyhow::bail!("usage: kv [--variant plain|sliced] [--port N]"),
        }
    }
    let sliced = match variant.as_str() {
        "plain" => false,
        "sliced" => true,
        v => anyhow::bail!("kv: no variant {v:?} (plain, sliced)"),
    };
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all();
    if sliced {
        b.with_slice_extension();
    }
    b.build()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("listening {}", listener.local_addr()?.port());
        let db: Db = Arc::new((Mutex::new(HashMap::new()), sliced));
        let app = Router::new()
            .route("/{key}", get(read).put(write).delete(remove))
            .with_state(db);
        Ok(axum::serve(listener, app).await?)
    })
}
