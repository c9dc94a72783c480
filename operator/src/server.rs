//! The operator's own HTTP endpoints on port 8082: `/healthz` (process up)
//! and `/metrics` (Prometheus text, per-realm gauges from the realm cache).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use kube::runtime::reflector::Store;

use crate::crd::AuthRealm;
use crate::metrics::Metrics;

/// What the endpoints read.
#[derive(Clone)]
pub struct AppState {
    /// The operator's metrics.
    pub metrics: Metrics,
    /// The controllers' caches of realms (one per watched namespace, or one for all).
    pub realms: Vec<Store<AuthRealm>>,
}

/// The router of `/healthz` and `/metrics`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(|State(s): State<AppState>| async move {
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    s.metrics.render(
                        &s.realms.iter().flat_map(Store::state).collect::<Vec<_>>(),
                        authrealm_tokens::unix_now(),
                    ),
                )
            }),
        )
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    type TestError = Box<dyn std::error::Error + Send + Sync>;

    async fn get_text(router: Router, path: &str) -> Result<(u16, String), TestError> {
        let res = router
            .oneshot(http::Request::get(path).body(axum::body::Body::empty())?)
            .await?;
        let status = res.status().as_u16();
        let body = res.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8(body.to_vec())?))
    }

    #[tokio::test]
    async fn health_and_metrics_answer() -> Result<(), TestError> {
        let (reader, _writer) = kube::runtime::reflector::store::<AuthRealm>();
        let metrics = Metrics::new()?;
        metrics.observe(crate::metrics::result::APPLIED, 0.1);
        let router = app(AppState {
            metrics,
            realms: vec![reader],
        });
        assert_eq!(
            get_text(router.clone(), "/healthz").await?,
            (200, "ok".to_owned())
        );
        let (status, text) = get_text(router, "/metrics").await?;
        assert_eq!(status, 200);
        assert!(text.contains("authrealm_operator_reconciles_total{result=\"applied\"} 1"));
        assert!(text.contains("authrealm_operator_realms{ready=\"true\"} 0"));
        Ok(())
    }
}
