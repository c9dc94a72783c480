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
