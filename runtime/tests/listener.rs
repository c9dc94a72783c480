//! The hardened listener against real sockets: stalled clients (unfinished
//! headers, a body that never completes, idle keep-alive, silence) are
//! closed while other clients are served; the connection cap holds and a
//! queued client is served once a slot frees; shutdown lets a request in
//! flight finish; handlers see the peer address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use authrealm_runtime::listener::{CloseReason, ConnectionStats, Limits, Server};
use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A guard against a hung test, not an assertion about speed.
const GUARD: Duration = Duration::from_secs(60);

fn limits(header: u64, body: u64, idle: u64, max_connections: usize) -> TestResult<Limits> {
    Ok(Limits {
        header_read_timeout: Duration::from_millis(header),
        body_read_timeout: Duration::from_millis(body),
        idle_timeout: Duration::from_millis(idle),
        max_connections,
        ..Limits::defaults()?
    })
}

struct Running {
    addr: SocketAddr,
    stats: Arc<ConnectionStats>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(router: Router, limits: Limits) -> TestResult<Running> {
    let server = Server::new(TcpListener::bind("127.0.0.1:0").await?, limits);
    let addr = server.local_addr()?;
    let stats = server.stats();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(router, async move {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        stats,
        stop: Some(tx),
        task,
    })
}

fn app() -> Router {
    Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route(
            "/echo",
            post(|body: String| async move { format!("{} bytes", body.len()) }),
        )
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> TestResult<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(GUARD, stream.read(&mut buf)).await? {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// Reads one response with a `content-length` body.
async fn read_response(stream: &mut TcpStream) -> TestResult<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(GUARD, stream.read(&mut buf)).await??;
        if n == 0 {
            return Err("connection closed before a whole response".into());
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>())
                })
                .transpose()?
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return Ok(text);
            }
        }
    }
}

async fn get_ok(client: &reqwest::Client, addr: SocketAddr, path: &str) -> TestResult<String> {
    let resp = client.get(format!("http://{addr}{path}")).send().await?;
    if resp.status() != 200 {
        return Err(format!("GET {path} answered {}", resp.status()).into());
    }
    Ok(resp.text().await?)
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) -> TestResult {
    let give_up = tokio::time::Instant::now() + GUARD;
    while !cond() {
        if tokio::time::Instant::now() > give_up {
            return Err(format!("gave up waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_are_closed_and_others_are_served_meanwhile() -> TestResult {
    let server = start(app(), limits(700, 700, 700, 256)?).await?;
    let addr = server.addr;

    // 25 of each kind of stall, 100 held at once.
    let mut silent = Vec::new();
    let mut half_headers = Vec::new();
    let mut short_bodies = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..25 {
        silent.push(TcpStream::connect(addr).await?);
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"GET /ping HTTP/1.1\r\nHost: test\r\nX-Slow: ")
            .await?;
        half_headers.push(s);
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(
            b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\ntwelve bytes",
        )
        .await?;
        short_bodies.push(s);
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
            .await?;
        let first = read_response(&mut s).await?;
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        idle.push(s);
    }

    // Other clients are served while the stalled connections are held.
    let client = reqwest::Client::new();
    for _ in 0..20 {
        assert_eq!(get_ok(&client, addr, "/ping").await?, "pong");
    }
    let resp = client
        .post(format!("http://{addr}/echo"))
        .body("a whole body")
        .send()
        .await?;
    assert_eq!(resp.text().await?, "12 bytes");

    // Every stalled connection is closed by the server.
    for mut s in silent.into_iter().chain(half_headers) {
        let got = read_until_closed(&mut s).await?;
        assert_eq!(got, "", "a stalled head got an answer: {got}");
    }
    for mut s in idle {
        let got = read_until_closed(&mut s).await?;
        assert_eq!(got, "", "an idle connection got more: {got}");
    }
    for mut s in short_bodies {
        let got = read_until_closed(&mut s).await?;
        assert!(got.starts_with("HTTP/1.1 408"), "{got}");
        assert!(
            got.to_ascii_lowercase().contains("connection: close"),
            "{got}"
        );
        assert!(got.contains("\"code\":\"request_timeout\""), "{got}");
    }
    assert_eq!(server.stats.closed(CloseReason::HeaderTimeout), 50);
    assert_eq!(server.stats.closed(CloseReason::BodyTimeout), 25);
    assert!(server.stats.closed(CloseReason::IdleTimeout) >= 25);
    wait_until("every stalled connection to be gone", || {
        server.stats.open() <= 1
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_holds_and_a_queued_client_is_served_once_a_slot_frees() -> TestResult {
    // Silent connections are closed after 1.5 s; nothing else is cut short.
    let server = start(app(), limits(1500, 60_000, 60_000, 3)?).await?;
    let addr = server.addr;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).await?);
    }
    wait_until("three open connections", || server.stats.open() == 3).await?;

    // A fourth client: connected by the kernel, not accepted while at the cap.
    let mut queued = TcpStream::connect(addr).await?;
    queued
        .write_all(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
        .await?;
    let answer = read_response(&mut queued).await?;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // It could only be served after a held connection was closed for silence.
    assert!(server.stats.closed(CloseReason::HeaderTimeout) >= 1);
    assert_eq!(server.stats.peak(), 3, "the cap of 3 was exceeded");
    drop(held);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_request_in_flight_finish_and_stops_accepting() -> TestResult {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let router = {
        let (entered, release) = (entered.clone(), release.clone());
        app().route(
            "/slow",
            get(move || async move {
                entered.notify_one();
                release.notified().await;
                "finished"
            }),
        )
    };
    let mut server = start(router, limits(10_000, 10_000, 10_000, 16)?).await?;
    let addr = server.addr;
    let client = reqwest::Client::new();
    let slow = tokio::spawn({
        let client = client.clone();
        async move { get_ok(&client, addr, "/slow").await }
    });
    tokio::time::timeout(GUARD, entered.notified()).await?;
    let mut idle = TcpStream::connect(addr).await?;
    idle.write_all(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
        .await?;
    read_response(&mut idle).await?;

    if let Some(stop) = server.stop.take() {
        let _ = stop.send(());
    }
    // The idle connection is closed at once; new connections are refused.
    assert_eq!(read_until_closed(&mut idle).await?, "");
    let give_up = tokio::time::Instant::now() + GUARD;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < give_up, "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The request in flight still gets its answer, then the server returns.
    release.notify_one();
    assert_eq!(slow.await??, "finished");
    tokio::time::timeout(GUARD, &mut server.task).await???;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_see_the_peer_address() -> TestResult {
    let server = start(app(), Limits::defaults()?).await?;
    let mut s = TcpStream::connect(server.addr).await?;
    let local = s.local_addr()?;
    s.write_all(b"GET /peer HTTP/1.1\r\nHost: test\r\n\r\n")
        .await?;
    let answer = read_response(&mut s).await?;
    assert!(answer.ends_with(&local.to_string()), "{answer}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_body_are_answered_and_a_slow_body_still_times_out() -> TestResult {
    let server = start(app(), limits(10_000, 500, 10_000, 16)?).await?;
    let mut s = TcpStream::connect(server.addr).await?;
    // Bodiless requests, one after another on the same connection.
    for _ in 0..3 {
        s.write_all(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
            .await?;
        let answer = read_response(&mut s).await?;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("pong"), "{answer}");
    }
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n")
        .await?;
    let answer = read_response(&mut s).await?;
    assert!(answer.ends_with("0 bytes"), "{answer}");
    // Then a body that stalls: 408 once the body deadline passes, and closed.
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nfour")
        .await?;
    let got = read_until_closed(&mut s).await?;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("\"code\":\"request_timeout\""), "{got}");
    assert_eq!(server.stats.closed(CloseReason::BodyTimeout), 1);
    Ok(())
}
