//! The three listeners of a deployed auth-service: the internal API only on
//! the internal port, metrics and health only on the metrics port, the
//! public endpoints on the public port.

use auth_service::{Clock, Listeners};
use authrealm_tokens::api;
use serde_json::json;
use tokio::net::TcpListener;

use crate::helpers::{Backend, TestResult, err, test_config};

struct Split {
    public: String,
    internal: String,
    metrics: String,
    bearer: String,
    client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn spawn_split() -> TestResult<Split> {
    let mut config = test_config(Backend::Memory)?;
    let listeners = Listeners {
        public: TcpListener::bind("127.0.0.1:0").await?,
        internal: TcpListener::bind("127.0.0.1:0").await?,
        metrics: TcpListener::bind("127.0.0.1:0").await?,
    };
    let url = |l: &TcpListener| -> TestResult<String> { Ok(format!("http://{}", l.local_addr()?)) };
    let (public, internal, metrics) = (
        url(&listeners.public)?,
        url(&listeners.internal)?,
        url(&listeners.metrics)?,
    );
    config.issuer.clone_from(&public);
    let bearer = format!(
        "Bearer {}",
        config
            .service_credential
            .as_ref()
            .ok_or_else(|| err("no credential"))?
            .expose()
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    drop(tokio::spawn(auth_service::serve_listeners_with_clock(
        config,
        Clock::System,
        listeners,
        async move {
            let _ = rx.await;
        },
    )));
    Ok(Split {
        public,
        internal,
        metrics,
        bearer,
        client: reqwest::Client::new(),
        _stop: tx,
    })
}

impl Split {
    async fn get(&self, base: &str, path: &str) -> TestResult<u16> {
        Ok(self
            .client
            .get(format!("{base}{path}"))
            .send()
            .await?
            .status()
            .as_u16())
    }

    async fn mint(&self, base: &str) -> TestResult<reqwest::Response> {
        Ok(self
            .client
            .post(format!("{base}{}", api::PATH_MINT))
            .header("authorization", &self.bearer)
            .json(&json!({ "sub": "ports-user" }))
            .send()
            .await?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_listener_serves_only_its_own_routes() -> TestResult {
    let s = spawn_split().await?;
    // The internal API answers on the internal port only.
    let minted = s.mint(&s.internal).await?;
    assert_eq!(minted.status().as_u16(), 200);
    assert_eq!(
        minted
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    // Every answer of the internal API says no-store: pairs, claims, errors.
    let pair: serde_json::Value = minted.json().await?;
    for (path, body) in [
        (
            api::PATH_REFRESH,
            json!({ "refresh_token": pair["refresh_token"] }),
        ),
        (
            api::PATH_INTROSPECT,
            json!({ "token": pair["access_token"] }),
        ),
        (api::PATH_REFRESH, json!({ "refresh_token": "unknown" })),
        (api::PATH_MINT, json!({ "sub": "" })),
    ] {
        let resp = s
            .client
            .post(format!("{}{path}", s.internal))
            .header("authorization", &s.bearer)
            .json(&body)
            .send()
            .await?;
        assert_eq!(
            resp.headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{path} {body} answered {}",
            resp.status()
        );
    }
    for base in [&s.public, &s.metrics] {
        let refused = s.mint(base).await?;
        assert_eq!(refused.status().as_u16(), 404, "mint answered on {base}");
        let body: serde_json::Value = refused.json().await?;
        assert_eq!(body["error"]["code"], json!("not_found"));
    }
    // Metrics and health answer on the metrics port only.
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(s.get(&s.metrics, path).await?, 200, "{path}");
        assert_eq!(s.get(&s.public, path).await?, 404, "{path} on public");
        assert_eq!(s.get(&s.internal, path).await?, 404, "{path} on internal");
    }
    // Public endpoints on the public port; the JWKS also where OP calls MA.
    assert_eq!(s.get(&s.public, api::PATH_JWKS).await?, 200);
    assert_eq!(s.get(&s.public, api::PATH_DISCOVERY).await?, 200);
    assert_eq!(s.get(&s.internal, api::PATH_JWKS).await?, 200);
    assert_eq!(s.get(&s.metrics, api::PATH_JWKS).await?, 404);
    let disco: serde_json::Value = s
        .client
        .get(format!("{}{}", s.public, api::PATH_DISCOVERY))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(disco["issuer"], json!(s.public));
    // The metrics see each listener's connections.
    let text = s
        .client
        .get(format!("{}/metrics", s.metrics))
        .send()
        .await?
        .text()
        .await?;
    for listener in ["public", "internal", "metrics"] {
        let open = format!("authrealm_ma_http_connections_open{{listener=\"{listener}\"}}");
        assert!(text.contains(&open), "{open} missing:\n{text}");
    }
    assert!(text.contains(
        "authrealm_ma_http_connections_closed_total{listener=\"public\",reason=\"body_timeout\"} 0"
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_named_at_start() -> TestResult {
    let taken = TcpListener::bind("127.0.0.1:0").await?;
    let mut config = test_config(Backend::Memory)?;
    config.listen = "127.0.0.1:0".parse()?;
    config.metrics_listen = "127.0.0.1:0".parse()?;
    config.internal_listen = taken.local_addr()?;
    let e = Listeners::bind(&config)
        .await
        .err()
        .ok_or_else(|| err("bound a taken port"))?;
    assert!(e.to_string().contains("AUTHREALM_INTERNAL_LISTEN"), "{e}");
    Ok(())
}

/// A follower of the revocation feed does not hold shutdown up: the feed
/// ends when shutdown begins, so the server returns long before its drain
/// limit (set to ten minutes here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_revocation_feed() -> TestResult {
    let mut config = test_config(Backend::Memory)?;
    config.limits.shutdown_timeout = std::time::Duration::from_secs(600);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    config.issuer.clone_from(&base);
    let bearer = format!(
        "Bearer {}",
        config
            .service_credential
            .as_ref()
            .ok_or_else(|| err("no credential"))?
            .expose()
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(auth_service::serve(config, listener, async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let mut feed = loop {
        // The server may still be starting.
        if let Ok(r) = client
            .get(format!("{base}{}", api::PATH_REVOCATION_FEED))
            .header("authorization", &bearer)
            .send()
            .await
        {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(feed.status().as_u16(), 200);
    let first = feed.chunk().await?.unwrap_or_default();
    assert!(String::from_utf8_lossy(&first).contains("synced"));
    let _ = tx.send(());
    let guard = std::time::Duration::from_secs(60);
    tokio::time::timeout(guard, server).await???;
    // The feed ended cleanly.
    while let Some(chunk) = tokio::time::timeout(guard, feed.chunk()).await?? {
        assert!(!String::from_utf8_lossy(&chunk).contains("revocation"));
    }
    Ok(())
}

/// MA serves on the hardened listener with the configured limits: a mint
/// whose body never completes gets 408 and its connection is closed, while
/// other requests are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408_and_others_are_served() -> TestResult {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut config = test_config(Backend::Memory)?;
    config.limits.body_read_timeout = std::time::Duration::from_millis(500);
    let app = crate::helpers::spawn_with(config, auth_service::Clock::System).await?;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stalled = tokio::net::TcpStream::connect(&addr).await?;
    stalled
        .write_all(
            format!(
                "POST {} HTTP/1.1\r\nHost: ma\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"sub\": \"sl",
                api::PATH_MINT,
                app.credential
            )
            .as_bytes(),
        )
        .await?;
    // Served meanwhile.
    app.mint("meanwhile").await?;
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        stalled.read_to_end(&mut answer),
    )
    .await??;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert_eq!(
        app.metric(
            "authrealm_ma_http_connections_closed_total{listener=\"public\",reason=\"body_timeout\"}"
        )
        .await?,
        1.0
    );
    assert_eq!(app.metric("authrealm_ma_tokens_minted_total").await?, 1.0);
    Ok(())
}
