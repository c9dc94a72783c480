//! `GET|POST /oauth2/userinfo` (OpenID Connect Core §5.3): the access token
//! checked like every protected request of OP (signature, `iss`, `aud` =
//! the realm audience, revocation), the user's claims from OP's database
//! as the token's scopes release them (§5.4). Refusals follow RFC 6750 §3:
//! `WWW-Authenticate: Bearer error="invalid_token"` (401) or
//! `error="insufficient_scope"` (403) and a JSON body with the same code.

use std::sync::Arc;

use authrealm_tokens::oidc::released_claims;
use axum::Json;
use axum::extract::{FromRequestParts as _, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::Authenticated;
use crate::error::Error;
use crate::state::AppState;

fn bearer_error(status: StatusCode, code: &str, description: &str) -> Response {
    let challenge = format!(
        "Bearer realm=\"authrealm\", error=\"{code}\", error_description=\"{description}\"{}",
        if code == "insufficient_scope" {
            ", scope=\"openid\""
        } else {
            ""
        }
    );
    let mut resp = (
        status,
        Json(json!({ "error": code, "error_description": description })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

fn refused(e: Error) -> Response {
    match e {
        // No credentials at all: a bare challenge (RFC 6750 §3.1).
        Error::MissingToken => {
            let mut resp = (
                StatusCode::UNAUTHORIZED,
                Json(json!({ "error": "invalid_request", "error_description": "an `Authorization: Bearer` header is required" })),
            )
                .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"authrealm\""),
            );
            resp
        }
        Error::AmbiguousAuthorization => bearer_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send exactly one Authorization header",
        ),
        Error::Token(_) | Error::TokenRevoked | Error::TokenAccountDisabled => bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is invalid, expired or revoked",
        ),
        other => other.into_response(),
    }
}

/// `GET|POST /oauth2/userinfo`.
pub async fn userinfo(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (mut parts, _body) = req.into_parts();
    let claims = match Authenticated::from_request_parts(&mut parts, &state).await {
        Ok(Authenticated(c)) => c,
        Err(e) => return refused(e),
    };
    let scopes: Vec<String> = claims
        .extra
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        return bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the access token was not granted the openid scope",
        );
    }
    if let Err(e) = state.require_db() {
        return e.into_response();
    }
    let user = match state.db.user_by_id(&claims.sub).await {
        Ok(Some(u)) if u.disabled_at.is_none() => u,
        Ok(_) => return refused(Error::TokenAccountDisabled),
        Err(e) => return Error::from(e).into_response(),
    };
    let mut body = released_claims(&scopes, &super::authorize::user_claims(&user));
    body.insert("sub".into(), Value::String(user.id));
    let mut resp = Json(Value::Object(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
