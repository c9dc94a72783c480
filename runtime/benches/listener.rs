//! What the hardened listener costs per request, against `axum::serve` with
//! the same router: one keep-alive connection, sequential `GET /ping`, the
//! client in the same process. Compare the two lines' times (ratio); the
//! absolute figures depend on the machine.

use std::net::SocketAddr;

use authrealm_runtime::listener::{self, Limits};
use axum::Router;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const REQUEST: &[u8] = b"GET /ping HTTP/1.1\r\nHost: bench\r\n\r\n";

fn router() -> Router {
    Router::new().route("/ping", get(|| async { "pong" }))
}

/// Sends one request and reads its whole (small, fixed-size) answer.
async fn roundtrip(stream: &mut TcpStream, buf: &mut [u8], answer_len: usize) -> bool {
    if stream.write_all(REQUEST).await.is_err() {
        return false;
    }
    let mut got = 0;
    while got < answer_len {
        match stream.read(&mut buf[got..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    true
}

async fn answer_len(addr: SocketAddr) -> Option<usize> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(REQUEST).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.ok()?;
    Some(n)
}

fn bench(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    else {
        return;
    };
    let servers = rt.block_on(async {
        let plain = TcpListener::bind("127.0.0.1:0").await.ok()?;
        let hardened = TcpListener::bind("127.0.0.1:0").await.ok()?;
        let addrs = (plain.local_addr().ok()?, hardened.local_addr().ok()?);
        let limits = Limits::defaults().ok()?;
        tokio::spawn(async move { axum::serve(plain, router()).await });
        tokio::spawn(listener::serve(
            hardened,
            router(),
            limits,
            std::future::pending(),
        ));
        Some(addrs)
    });
    let Some((plain, hardened)) = servers else {
        return;
    };
    let mut group = c.benchmark_group("keep-alive GET /ping");
    for (name, addr) in [("axum::serve", plain), ("authrealm listener", hardened)] {
        let Some(len) = rt.block_on(answer_len(addr)) else {
            return;
        };
        let Some(mut stream) = rt.block_on(async { TcpStream::connect(addr).await.ok() }) else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let mut buf = vec![0u8; 4096];
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(roundtrip(&mut stream, &mut buf, len)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
