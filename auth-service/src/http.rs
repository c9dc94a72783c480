//! The HTTP surface, one router per listener: public key endpoints,
//! discovery and the OAuth endpoints ([`oauth`], [`discovery`]); the
//! internal `/v1` API behind the service credential (every answer
//! `no-store`); health, readiness and metrics — or all of them on one router
//! for the one-listener form. Handlers only parse,
//! call [`AuthService`], and answer; bodies are read through [`JsonBody`] so
//! every malformed or oversized body gets the same clear JSON error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use authrealm_runtime::listener::ConnectionStats;
use authrealm_tokens::ServiceCredential;
use authrealm_tokens::api::{
    self, ErrorBody, MintRequest, RefreshRequest, RevokeAllRequest, TokenRequest,
};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::service::AuthService;

mod discovery;
mod oauth;

/// Shared state of the HTTP handlers.
#[derive(Debug)]
pub struct App {
    /// The operations.
    pub service: AuthService,
    /// The credential `/v1` callers must present.
    pub credential: ServiceCredential,
    /// `Cache-Control` of the JWKS.
    pub jwks_cache_control: HeaderValue,
    /// Largest accepted body, bytes.
    pub max_body_bytes: usize,
    /// Connection counters of each listener, exposed on `/metrics`.
    pub connections: ListenerStats,
    /// Turns true when shutdown begins, so long-lived answers (the
    /// revocation feed) end and the drain does not wait for them.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

/// Connection counters of the three listeners. When every route is served
/// on one listener, its connections count as `public`.
#[derive(Debug, Default, Clone)]
pub struct ListenerStats {
    /// The public listener.
    pub public: Arc<ConnectionStats>,
    /// The internal API listener.
    pub internal: Arc<ConnectionStats>,
    /// The metrics and health listener.
    pub metrics: Arc<ConnectionStats>,
}

type AppState = Arc<App>;

/// A JSON body of type `T`; broken JSON, unknown fields and oversized
/// bodies are refused with [`Error::BadRequest`] / [`Error::PayloadTooLarge`].
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge(state.max_body_bytes)
            } else {
                Error::BadRequest("the request body could not be read".to_owned())
            }
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            Error::BadRequest(format!(
                "request body is not valid JSON of the expected shape: {e}"
            ))
        })
    }
}

/// The public listener's routes: JWKS and discovery.
pub fn public_router(app: AppState) -> Router {
    finish(public_routes(), app)
}

/// The internal listener's routes: the `/v1` API behind the service
/// credential, and the JWKS (public data, so OP can fetch it from the one
/// base URL it is given).
pub fn internal_router(app: AppState) -> Router {
    finish(
        internal_routes(app.clone()).route(api::PATH_JWKS, get(jwks)),
        app,
    )
}

/// The operations listener's routes: `/metrics`, `/healthz`, `/readyz`.
pub fn operations_router(app: AppState) -> Router {
    finish(operations_routes(), app)
}

/// Every route on one router (the one-listener form: embedding and tests).
pub fn router(app: AppState) -> Router {
    finish(
        public_routes()
            .merge(internal_routes(app.clone()))
            .merge(operations_routes()),
        app,
    )
}

fn public_routes() -> Router<AppState> {
    Router::new()
        .route(api::PATH_JWKS, get(jwks))
        .route(api::PATH_DISCOVERY, get(discovery::document))
        .merge(oauth::public_routes())
}

fn internal_routes(app: AppState) -> Router<AppState> {
    Router::new()
        .route(api::PATH_MINT, post(mint))
        .route(api::PATH_REFRESH, post(refresh))
        .route(api::PATH_REVOKE, post(revoke))
        .route(api::PATH_INTROSPECT, post(introspect))
        .route(api::PATH_REVOKE_ALL, post(revoke_all))
        .route(api::PATH_REVOKE_SESSION, post(revoke_session))
        .route(api::PATH_REVOCATION_FEED, get(revocation_feed))
        .merge(oauth::internal_routes())
        .route_layer(middleware::from_fn_with_state(app, require_credential))
        // Outermost, so refusals carry it too: no answer of the internal API
        // (tokens, claims, errors) may be kept by a cache.
        .route_layer(middleware::from_fn(no_store))
}

fn operations_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// What every router shares: the JSON 404, the body limit, request metrics.
fn finish(routes: Router<AppState>, app: AppState) -> Router {
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(app.max_body_bytes))
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

async fn no_store(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Records the duration of every request by route and status.
async fn observe(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let response = next.run(req).await;
    // Both labels come from bounded sets: the routes of this router (every
    // unknown path is `unmatched`) and the statuses it answers with.
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    app.service
        .metrics
        .duration(route, status_label(response.status()))
        .observe(start.elapsed().as_secs_f64());
    response
}

/// The statuses this service answers with; anything else is `other`.
fn status_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        415 => "415",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

async fn require_credential(
    State(app): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, Error> {
    // Exactly one `Authorization` header: with two, which one counts would
    // depend on who reads them, so neither does.
    let mut presented = req.headers().get_all(header::AUTHORIZATION).iter();
    let ok = match (presented.next(), presented.next()) {
        (Some(v), None) => v
            .to_str()
            .ok()
            .is_some_and(|v| app.credential.matches_bearer(v)),
        _ => false,
    };
    if !ok {
        return Err(Error::Unauthorized);
    }
    Ok(next.run(req).await)
}

async fn mint(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<MintRequest>,
) -> Result<Response, Error> {
    let pair = app.service.mint(req).await?;
    Ok(Json(pair).into_response())
}

async fn refresh(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<Response, Error> {
    let pair = app.service.refresh(&req.refresh_token).await?;
    Ok(Json(pair).into_response())
}

async fn revoke(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<TokenRequest>,
) -> Result<Response, Error> {
    app.service.revoke(&req.token).await?;
    Ok((StatusCode::OK, Json(serde_json::json!({}))).into_response())
}

async fn introspect(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<TokenRequest>,
) -> Result<Response, Error> {
    let answer = app.service.introspect(&req.token).await?;
    Ok(Json(answer).into_response())
}

async fn revoke_session(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<api::RevokeSessionRequest>,
) -> Result<Response, Error> {
    app.service.revoke_session(&req.sid).await?;
    Ok((StatusCode::OK, Json(serde_json::json!({}))).into_response())
}

async fn revoke_all(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<RevokeAllRequest>,
) -> Result<Json<api::RevokeAllResponse>, Error> {
    app.service.revoke_all(&req.sub).await.map(Json)
}

async fn revocation_feed(State(app): State<AppState>) -> Result<Response, Error> {
    let now = app.service.clock.now();
    let Some((snapshot, events)) = app.service.store.follow_memory(now) else {
        return Err(Error::NotFound(
            "this auth-service shares revocations through Redis: follow its channel",
        ));
    };
    let body = crate::feed::body(snapshot, events, app.stopping.subscribe());
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        body,
    )
        .into_response())
}

async fn jwks(State(app): State<AppState>) -> Response {
    app.service.metrics.jwks_requests.inc();
    let body = app.service.keys.snapshot().jwks_json().clone();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, app.jwks_cache_control.clone()),
        ],
        body,
    )
        .into_response()
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Ready when keys are loaded (always, once started) and the store answers.
async fn readyz(State(app): State<AppState>) -> Response {
    let keys = app.service.keys.snapshot();
    let ping = tokio::time::timeout(Duration::from_secs(2), app.service.store.ping()).await;
    match ping {
        Ok(Ok(())) => Json(serde_json::json!({
            "status": "ready",
            "active_kid": keys.active().kid(),
        }))
        .into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ErrorBody::new(
                api::codes::UNAVAILABLE,
                "not ready: the token store (Redis) does not answer",
            )),
        )
            .into_response(),
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    let svc = &app.service;
    let c = &app.connections;
    svc.metrics.record_connections([
        ("public", &*c.public),
        ("internal", &*c.internal),
        ("metrics", &*c.metrics),
    ]);
    svc.metrics
        .oauth_clients
        .set(i64::try_from(svc.clients.snapshot().len()).unwrap_or(i64::MAX));
    let since = svc.keys.snapshot().active_since();
    svc.metrics
        .active_key_age
        .set(svc.clock.now().saturating_sub(since).max(0));
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        svc.metrics.render(),
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(ErrorBody::new(
            api::codes::METHOD_NOT_ALLOWED,
            "this endpoint does not take that method",
        )),
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorBody::new(api::codes::NOT_FOUND, "no such endpoint")),
    )
        .into_response()
}
