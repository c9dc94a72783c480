//! The OAuth routes: the public form endpoints (`/oauth2/token`,
//! `/oauth2/revoke`, `/oauth2/introspect`), which answer RFC 6749 §5.2
//! errors and never let a cache keep an answer (`Cache-Control: no-store`,
//! `Pragma: no-cache`), and the internal code-flow endpoints OP calls
//! (`/v1/oauth2/...`, JSON, behind the service credential).

use std::sync::Arc;

use authrealm_tokens::oauth::{
    self, AuthorizeRequest, CodeRequest, ErrorCode, LogoutCheckRequest, OAuthErrorBody,
};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::{App, JsonBody};
use crate::error::Error;
use crate::metrics::OAuthEndpoint;
use crate::oauth::client_auth::{Refusal, authenticate};
use crate::oauth::form::Form;
use crate::revocation::classify;

type AppState = Arc<App>;

/// The public OAuth routes.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route(oauth::PATH_TOKEN, post(token))
        .route(oauth::PATH_REVOKE, post(revoke))
        .route(oauth::PATH_INTROSPECT, post(introspect))
        .route_layer(middleware::from_fn(no_store_no_cache))
}

/// The internal code-flow routes (the caller adds the credential check).
pub fn internal_routes() -> Router<AppState> {
    Router::new()
        .route(oauth::PATH_INTERNAL_AUTHORIZE, post(check_authorize))
        .route(oauth::PATH_INTERNAL_CODES, post(issue_code))
        .route(oauth::PATH_INTERNAL_LOGOUT, post(check_logout))
}

/// RFC 6749 §5.1: answers with tokens, and errors alike, are not cached.
async fn no_store_no_cache(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An RFC 6749 §5.2 error answer: 400, or 401 with `WWW-Authenticate:
/// Basic` for `invalid_client` when Basic was used; 413 for a body over
/// the limit; 503 with `Retry-After` when the store is unreachable.
fn refusal(r: Refusal) -> Response {
    r.error.log();
    let code = r.error.oauth_code();
    let status = match (&r.error, code) {
        (Error::PayloadTooLarge(_), _) => StatusCode::PAYLOAD_TOO_LARGE,
        (_, ErrorCode::InvalidClient) if r.basic => StatusCode::UNAUTHORIZED,
        (_, ErrorCode::TemporarilyUnavailable) => StatusCode::SERVICE_UNAVAILABLE,
        (_, ErrorCode::ServerError) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = OAuthErrorBody {
        error: code,
        error_description: r.error.public_message(),
    };
    let mut response = (status, Json(body)).into_response();
    let h = response.headers_mut();
    if status == StatusCode::UNAUTHORIZED {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"authrealm\", charset=\"UTF-8\""),
        );
    }
    if r.error.retry_later() {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The form of a request, or the refusal for an unreadable one.
fn read_form(
    app: &App,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Form, Refusal> {
    let basic = headers.contains_key(header::AUTHORIZATION);
    let bytes = body.map_err(|e| {
        let error = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge(app.max_body_bytes)
        } else {
            Error::oauth(
                ErrorCode::InvalidRequest,
                "the request body could not be read",
            )
        };
        Refusal::new(error, basic)
    })?;
    Form::parse(headers, &bytes).map_err(|e| Refusal::new(e, basic))
}

async fn token(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = match read_form(&app, &headers, body) {
        Ok(f) => f,
        Err(r) => {
            app.service
                .metrics
                .token_request(None, Err(r.error.oauth_code()));
            return refusal(r);
        }
    };
    match app.service.token(&headers, &form).await {
        Ok(answer) => Json(answer).into_response(),
        Err(r) => refusal(r),
    }
}

/// RFC 7009: the client revokes one of its own tokens. Unknown, malformed
/// and other clients' tokens are answered 200 the same way (nothing to do).
async fn revoke(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = revoke_inner(&app, &headers, body).await;
    app.service.metrics.oauth_request(
        OAuthEndpoint::Revoke,
        outcome
            .as_ref()
            .map(|_| ())
            .map_err(|r| r.error.oauth_code()),
    );
    match outcome {
        Ok(()) => StatusCode::OK.into_response(),
        Err(r) => refusal(r),
    }
}

async fn revoke_inner(
    app: &App,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(), Refusal> {
    let form = read_form(app, headers, body)?;
    let svc = &app.service;
    let registry = svc.clients.snapshot();
    let client = authenticate(&registry, headers, &form, svc.clock.now())?;
    let basic = headers.contains_key(header::AUTHORIZATION);
    let token = form.require("token").map_err(|e| Refusal::new(e, basic))?;
    if classify(token).is_err() {
        return Ok(());
    }
    svc.revoke_for(token, Some(&client.client_id))
        .await
        .map(|_| ())
        .map_err(|e| Refusal::new(e, basic))
}

/// RFC 7662: for clients allowed to introspect; anything not active is
/// `{"active": false}`.
async fn introspect(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = introspect_inner(&app, &headers, body).await;
    app.service.metrics.oauth_request(
        OAuthEndpoint::Introspect,
        outcome
            .as_ref()
            .map(|_| ())
            .map_err(|r| r.error.oauth_code()),
    );
    match outcome {
        Ok(answer) => Json(answer).into_response(),
        Err(r) => refusal(r),
    }
}

async fn introspect_inner(
    app: &App,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<authrealm_tokens::api::IntrospectResponse, Refusal> {
    let form = read_form(app, headers, body)?;
    let svc = &app.service;
    let registry = svc.clients.snapshot();
    let client = authenticate(&registry, headers, &form, svc.clock.now())?;
    let basic = headers.contains_key(header::AUTHORIZATION);
    let refuse = |e| Refusal::new(e, basic);
    if !client.introspection {
        return Err(refuse(Error::oauth(
            ErrorCode::UnauthorizedClient,
            format!("client `{}` may not introspect tokens", client.client_id),
        )));
    }
    let token = form.require("token").map_err(refuse)?;
    svc.introspect_any(token).await.map_err(refuse)
}

async fn check_authorize(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<AuthorizeRequest>,
) -> Result<Response, Error> {
    Ok(Json(app.service.check_authorize(&req)?).into_response())
}

async fn issue_code(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<CodeRequest>,
) -> Result<Response, Error> {
    Ok(Json(app.service.issue_code(&req).await?).into_response())
}

async fn check_logout(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<LogoutCheckRequest>,
) -> Response {
    Json(app.service.check_logout(&req)).into_response()
}
