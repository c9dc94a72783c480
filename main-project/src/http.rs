//! HTTP: the routers, the request-metrics middleware, the fallbacks, the
//! operations endpoints (`/healthz`, `/readyz`, `/metrics`), and the two
//! ways to run: [`serve`] (everything on one listener: tests, embedding, the
//! local runner) and [`serve_split`] (the binary: the public API on one
//! listener, the operations endpoints on another that no Ingress routes to).

mod middleware;

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tokio::net::TcpListener;

use authrealm_runtime::Limits;

use crate::config::{Config, RevocationPolicy, VerifyMode};
use crate::error::Error;
use crate::state::{AppState, build};
use crate::{accounts, forward_auth, notes, openapi, sessions};
use middleware::{BodyLimitLayer, NoStoreLayer, TrackLayer};

/// The whole router of OP over a built state: the public API and the
/// operations endpoints together.
pub fn app(state: Arc<AppState>) -> Router {
    finish(api_routes().merge(ops_routes()), state)
}

/// Prefix of the JSON API.
const API: &str = "/api/v1";

/// The API's description: public, the one API route a cache may keep.
const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// Whether answers of the route template `route` must not be stored: every
/// JSON API route but its description (the API's answers carry tokens or a
/// user's own data). Routes added under the prefix are covered by default.
fn no_store_route(route: &str) -> bool {
    route.starts_with(API)
        && route.as_bytes().get(API.len()) == Some(&b'/')
        && route != OPENAPI_PATH
}

fn api_routes() -> Router<Arc<AppState>> {
    // Full paths rather than `nest`: a nested router rebuilds every
    // request's URI without its prefix, a cost on the protected path for
    // nothing.
    let p = |path: &str| format!("{API}{path}");
    Router::new()
        .route(&p("/register"), post(accounts::register))
        .route(&p("/login"), post(accounts::login))
        .route(&p("/token/refresh"), post(sessions::refresh))
        .route(&p("/logout"), post(sessions::logout))
        .route(&p("/logout-all"), post(sessions::logout_all))
        .route(&p("/me"), get(accounts::me))
        .route(&p("/session"), get(sessions::session))
        .route(&p("/notes"), get(notes::list).post(notes::create))
        .route(
            &p("/notes/{id}"),
            get(notes::get).put(notes::update).delete(notes::delete),
        )
        // Every route above answers with tokens or a user's own data: never
        // stored by a cache (`no_store_route`, applied in `finish`).
        .route(OPENAPI_PATH, get(openapi_json))
        .merge(crate::oidc::routes())
        // Any method: Envoy's ext_authz sends the original one (and, with a
        // path prefix, the original path after it).
        .route(forward_auth::PATH, any(forward_auth::verify))
        .route("/auth/verify/", any(forward_auth::verify))
        .route("/auth/verify/{*rest}", any(forward_auth::verify))
}

fn ops_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
}

fn finish(routes: Router<Arc<AppState>>, state: Arc<AppState>) -> Router {
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // One `layer` call: each call wraps every route once more (a boxed
        // service clone and a boxed future per request).
        .layer(
            tower::ServiceBuilder::new()
                .layer(BodyLimitLayer::new(state.max_body_bytes))
                .layer(TrackLayer::new(state.metrics.http_duration.clone()))
                .layer(NoStoreLayer::new(no_store_route)),
        )
        .with_state(state)
}

/// Runs OP on `listener` until `shutdown` resolves.
///
/// # Errors
/// Settings that cannot work, or a failing listener.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (state, background) = build(&config).await?;
    let addr = listener.local_addr().map_err(Error::Io)?;
    tracing::info!(%addr, backend = ?state.db.backend(), redis = state.redis_enabled, verify_mode = ?state.verify_mode, "main-project listening (API and operations endpoints)");
    let result = run(listener, app(state.clone()), config.limits, shutdown).await;
    drop(background);
    state.db.close().await;
    result
}

/// Runs OP with the public API on `api` and `/metrics`, `/healthz`,
/// `/readyz` on `ops` (see `AUTHREALM_METRICS_LISTEN`) until `shutdown`
/// resolves. Either listener failing stops both.
///
/// # Errors
/// Settings that cannot work, or a failing listener.
pub async fn serve_split(
    config: Config,
    api: TcpListener,
    ops: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    use futures::FutureExt as _;
    let (state, background) = build(&config).await?;
    let api_addr = api.local_addr().map_err(Error::Io)?;
    let ops_addr = ops.local_addr().map_err(Error::Io)?;
    tracing::info!(%api_addr, %ops_addr, backend = ?state.db.backend(), redis = state.redis_enabled, verify_mode = ?state.verify_mode, "main-project listening");
    let shutdown = shutdown.shared();
    let result = tokio::try_join!(
        // The public API alone (the operations endpoints answer 404 there),
        // and the operations endpoints alone.
        run(
            api,
            finish(api_routes(), state.clone()),
            config.limits,
            shutdown.clone(),
        ),
        run(
            ops,
            finish(ops_routes(), state.clone()),
            config.limits,
            shutdown,
        ),
    )
    .map(|_| ());
    drop(background);
    state.db.close().await;
    result
}

/// Serves `router` on the runtime's hardened listener: header, body and
/// idle timeouts, a connection cap, the peer address as `ConnectInfo`, and
/// a bounded drain on shutdown.
async fn run(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    authrealm_runtime::listener::serve(listener, router, limits, shutdown)
        .await
        .map_err(Error::Io)
}

async fn not_found() -> Error {
    Error::NotFound
}

async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let database = state.db.is_migrated()
        && tokio::time::timeout(Duration::from_secs(2), state.db.ping())
            .await
            .is_ok_and(|r| r.is_ok());
    let keys = state.keys.is_loaded();
    let revocation = state.verify_mode == VerifyMode::Introspect
        || state.revocation_policy == RevocationPolicy::FailOpen
        || state.revocations.is_known();
    let ready = database && keys && revocation;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "ready": ready,
        "checks": { "database": database, "keys": keys, "revocation": revocation },
    });
    (status, axum::Json(body)).into_response()
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

static OPENAPI: LazyLock<String> = LazyLock::new(|| openapi::document().to_string());

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.as_str(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_but_its_description_is_no_store() {
        for route in [
            "/api/v1/login",
            "/api/v1/token/refresh",
            "/api/v1/session",
            "/api/v1/notes/{id}",
        ] {
            assert!(no_store_route(route), "{route}");
        }
        for route in [
            OPENAPI_PATH,
            "/api/v10/login",
            "/auth/verify",
            "/oauth2/authorize",
            "/healthz",
            "/metrics",
        ] {
            assert!(!no_store_route(route), "{route}");
        }
    }
}
