//! The session endpoints: refresh (rotated at MA), logout (one session),
//! logout-all (every session of the user) and session (the verified claims,
//! no database).

use std::sync::Arc;

use authrealm_tokens::AccessClaims;
use authrealm_tokens::api::TokenPair;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use crate::auth::{ApiJson, Authenticated, parse_json};
use crate::error::Error;
use crate::state::AppState;

pub mod pending;

/// Longest refresh token OP passes on to MA.
pub const MAX_REFRESH_TOKEN_BYTES: usize = 1024;

/// `POST /api/v1/token/refresh` body. `Debug` never shows the token.
#[derive(Debug, Deserialize)]
pub struct RefreshBody {
    /// The refresh token from login or the last refresh.
    pub refresh_token: SecretString,
}

/// `POST /api/v1/logout` optional body. `Debug` never shows the token.
#[derive(Debug, Default, Deserialize)]
pub struct LogoutBody {
    /// A refresh token of another session to end as well.
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
}

/// `POST /api/v1/token/refresh`.
///
/// Nothing irreversible happens before the database has answered once: a
/// refresh during a database outage is refused with 503 before MA rotates
/// anything. If the database fails in the short window after MA rotated,
/// the new pair is held ([`pending`]) and the client's retry with the same
/// token receives it once the account check passes.
///
/// # Errors
/// `refresh_token_invalid` / `refresh_token_reused` / `account_disabled`
/// (401), database or MA down (503).
pub async fn refresh(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<RefreshBody>,
) -> Result<Json<TokenPair>, Error> {
    let token = req.refresh_token.expose_secret();
    if token.is_empty() || token.len() > MAX_REFRESH_TOKEN_BYTES {
        return Err(Error::RefreshInvalid);
    }
    state.require_db()?;
    if let Some(pair) = state.pending.get(token, state.clock.now()) {
        return finish_refresh(&state, token, pair).await;
    }
    state.db.ping().await?;
    let pair = state.ma.refresh(token).await?;
    finish_refresh(&state, token, pair).await
}

/// The account check after a rotation: a disabled or deleted user cannot go
/// on (the rotated session is ended); a database failure holds the pair for
/// the retry.
async fn finish_refresh(
    state: &AppState,
    old_token: &str,
    pair: TokenPair,
) -> Result<Json<TokenPair>, Error> {
    let now = state.clock.now();
    let user = match state.db.user_by_id(&pair.sub).await {
        Ok(user) => user,
        Err(e) => {
            if !state.pending.hold(old_token, pair, now) {
                tracing::warn!("too many refreshes waiting for the database; one session is lost");
            }
            return Err(e.into());
        }
    };
    state.pending.release(old_token);
    if user.is_none_or(|u| u.disabled_at.is_some()) {
        if let Err(e) = state.ma.revoke(&pair.refresh_token, "refresh_token").await {
            tracing::warn!(error = %e, "could not revoke the session of a disabled user");
        }
        return Err(Error::SessionAccountDisabled);
    }
    Ok(Json(pair))
}

/// How long a revocation caused by `claims` must be kept: the token's whole
/// life plus the leeway and a margin, so every token it rejects has expired.
fn token_life(claims: &AccessClaims, leeway: i64) -> i64 {
    claims
        .exp
        .saturating_sub(claims.iat)
        .max(0)
        .saturating_add(leeway)
        .saturating_add(60)
}

/// `POST /api/v1/logout`: ends the session of the presented access token
/// (every token of it, and its refresh family) and, when the body names
/// one, the session of another refresh token too.
///
/// # Errors
/// 400/413 for a bad body, 503 when MA is down.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
    req: axum::extract::Request,
) -> Result<StatusCode, Error> {
    let bytes = axum::body::to_bytes(req.into_body(), state.max_body_bytes)
        .await
        .map_err(|_| Error::PayloadTooLarge)?;
    let body: LogoutBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        LogoutBody::default()
    } else {
        parse_json(&bytes)?
    };
    // A refresh token of another session may be handed in too: end that one
    // first. Ending this session makes the access token unusable, so it must
    // be the last step that can fail: a 503 before it can be retried.
    if let Some(rt) = body.refresh_token.filter(|t| !t.expose_secret().is_empty()) {
        state.ma.revoke(rt.expose_secret(), "refresh_token").await?;
    }
    // Ending the session rejects this access token (and every other one of
    // the session) on every replica, and kills its refresh family.
    state.ma.revoke_session(&claims.sid).await?;
    let now = state.clock.now();
    state
        .revocations
        .end_session(&claims, now, token_life(&claims, state.leeway_secs));
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/logout-all`: ends every session of the user.
///
/// # Errors
/// 503 when MA is down.
pub async fn logout_all(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
) -> Result<StatusCode, Error> {
    let resp = state.ma.revoke_all(&claims.sub).await?;
    let life = token_life(&claims, state.leeway_secs);
    state.revocations.end_user(&claims, resp.not_before, life);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/session` answer: from the verified claims alone.
#[derive(Debug, Serialize)]
pub struct SessionView<'a> {
    /// User id.
    pub sub: &'a str,
    /// Session id.
    pub sid: &'a str,
    /// Token id.
    pub jti: &'a str,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// The `email` claim, if present.
    pub email: Option<&'a str>,
}

/// `GET /api/v1/session`: who the token says you are, without the database.
pub async fn session(Authenticated(claims): Authenticated) -> Response {
    let view = SessionView {
        sub: &claims.sub,
        sid: &claims.sid,
        jti: &claims.jti,
        iat: claims.iat,
        exp: claims.exp,
        email: claims.extra.get("email").and_then(|v| v.as_str()),
    };
    Json(view).into_response()
}
