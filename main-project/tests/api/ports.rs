//! The binary's split form: the public API on one listener, `/metrics`,
//! `/healthz` and `/readyz` on another, so an Ingress routing the public
//! port can never expose them.

use std::time::Duration;

use tokio::sync::oneshot;

use crate::helpers::{Api, Env, Mode, TestResult, op_config, start_ma, wait_ready};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operations_endpoints_live_on_the_metrics_listener_only() -> TestResult {
    let env = Env::new(Mode::SqliteMemory).await?;
    let ma = start_ma(&env).await?;
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ops_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = Api::new(&format!("http://{}", api_listener.local_addr()?));
    let ops = Api::new(&format!("http://{}", ops_listener.local_addr()?));
    let config = op_config(&env, &ma);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(main_project::serve_split(
        config,
        api_listener,
        ops_listener,
        async move {
            let _ = stopped.await;
        },
    ));
    wait_ready(&format!("{}/readyz", ops.base), Duration::from_secs(30)).await?;

    for path in ["/metrics", "/healthz", "/readyz"] {
        let r = api.get(path, None).await?;
        assert_eq!(
            (r.status, r.code()),
            (404, "not_found"),
            "{path} on the API"
        );
    }
    assert_eq!(ops.get("/healthz", None).await?.status, 200);
    assert!(ops.metrics().await?.contains("authrealm_op_"));
    // The API is where the API is, and only there.
    let register = api.register("lee@example.com", "tangerine-oboe-42").await?;
    assert_eq!(register.status, 201, "{register:?}");
    let on_ops = ops.register("lee@example.com", "tangerine-oboe-42").await?;
    assert_eq!(on_ops.status, 404, "{on_ops:?}");
    // Requests to either listener are counted by the same instance.
    assert!(ops.metrics().await?.contains("route=\"/api/v1/register\""));

    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// Stalled clients are closed on both of OP's listeners (the runtime's
/// hardened listener, as on MA): unfinished request headers, a body that
/// announces more bytes than it sends (408), while other clients are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_connections_are_closed_while_others_are_served() -> TestResult {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let env = Env::new(Mode::SqliteMemory).await?;
    let ma = start_ma(&env).await?;
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ops_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (api_addr, ops_addr) = (api_listener.local_addr()?, ops_listener.local_addr()?);
    let api = Api::new(&format!("http://{api_addr}"));
    let mut config = op_config(&env, &ma);
    config.limits.header_read_timeout = Duration::from_millis(300);
    config.limits.body_read_timeout = Duration::from_millis(300);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(main_project::serve_split(
        config,
        api_listener,
        ops_listener,
        async move {
            let _ = stopped.await;
        },
    ));
    wait_ready(
        &format!("http://{ops_addr}/readyz"),
        Duration::from_secs(30),
    )
    .await?;

    /// Everything the server sends until it closes the connection (the
    /// deadline only stops a broken test; no timing is asserted).
    async fn until_closed(s: &mut tokio::net::TcpStream) -> TestResult<String> {
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
            .await
            .map_err(|_| "the stalled connection was never closed")??;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    for addr in [api_addr, ops_addr] {
        // Headers that never end.
        let mut head = tokio::net::TcpStream::connect(addr).await?;
        head.write_all(b"GET /api/v1/session HTTP/1.1\r\nHost: op\r\n")
            .await?;
        // A body that announces 1,000 bytes and sends 12.
        let mut body = tokio::net::TcpStream::connect(addr).await?;
        body.write_all(
            b"POST /api/v1/login HTTP/1.1\r\nHost: op\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"email\":\"a",
        )
        .await?;
        // Meanwhile another client is served.
        assert_eq!(api.get("/api/v1/openapi.json", None).await?.status, 200);
        until_closed(&mut head).await?;
        let answer = until_closed(&mut body).await?;
        if addr == api_addr {
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        }
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
