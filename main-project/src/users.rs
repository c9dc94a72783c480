//! The account endpoints: register, login, refresh, logout, logout-all, me
//! and session, and the validation rules for their input.

use std::sync::Arc;

use authrealm_tokens::api::TokenPair;
use authrealm_tokens::revocation::{RevocationEvent, RevocationKind};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{ApiJson, Authenticated, ClientIp, parse_json};
use crate::db::{InsertUser, User, new_id};
use crate::error::{ApiError, codes};
use crate::limiter::Decision;
use crate::password::check_new_password;

/// Longest email accepted (RFC 5321 path limit).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// `POST /api/v1/register` body.
#[derive(Debug, Deserialize)]
pub struct RegisterRequest {
    /// Email address (case-insensitive; stored lower-cased).
    pub email: String,
    /// At least 12 characters, at most 1024 bytes.
    pub password: String,
    /// Optional name to show.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `POST /api/v1/login` body.
#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// `POST /api/v1/token/refresh` body, and the optional logout body.
#[derive(Debug, Deserialize)]
pub struct RefreshBody {
    /// The refresh token from login or the last refresh.
    pub refresh_token: String,
}

/// `POST /api/v1/logout` optional body.
#[derive(Debug, Default, Deserialize)]
pub struct LogoutBody {
    /// The session's refresh token; given, the whole session ends.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// A user as the API shows it.
#[derive(Debug, Serialize)]
pub struct UserView {
    /// User id (the `sub` of their tokens).
    pub id: String,
    /// Lower-cased email.
    pub email: String,
    /// Display name, if any.
    pub display_name: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            created_at: u.created_at,
        }
    }
}

/// Normalises and checks an email: trimmed, lower-cased, one `@`, a dotted
/// domain, no spaces, control or quoting characters.
///
/// # Errors
/// 400 `invalid_email`.
pub fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_request(
            codes::INVALID_EMAIL,
            "the email must look like name@example.com",
        )
    };
    let email = raw.trim().to_lowercase();
    if email.is_empty() || email.len() > MAX_EMAIL_BYTES {
        return Err(bad());
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(bad)?;
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || "@<>()[],;:\"\\'`".contains(c);
    if local.is_empty()
        || local.len() > 64
        || local.chars().any(forbidden)
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err(bad());
    }
    let labels_ok = domain.split('.').all(|l| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    if !domain.contains('.') || !labels_ok {
        return Err(bad());
    }
    Ok(email)
}

fn check_display_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(name) = name else { return Ok(None) };
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            codes::INVALID_DISPLAY_NAME,
            format!(
                "the display name must have at most {MAX_DISPLAY_NAME_CHARS} characters and no control characters"
            ),
        ));
    }
    Ok(Some(name))
}

pub(crate) fn require_db(state: &AppState) -> Result<(), ApiError> {
    if state.db.is_migrated() {
        Ok(())
    } else {
        Err(ApiError::unavailable(
            codes::DATABASE_UNAVAILABLE,
            "the database is not ready yet; try again shortly",
            2,
        ))
    }
}

/// `POST /api/v1/register`.
pub async fn register(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    let count = |r: &str| state.metrics.registrations.with_label_values(&[r]).inc();
    let email = normalize_email(&req.email).inspect_err(|_| count("invalid"))?;
    check_new_password(&req.password, &email).map_err(|p| {
        count("invalid");
        p.api_error()
    })?;
    let display_name = check_display_name(req.display_name).inspect_err(|_| count("invalid"))?;
    require_db(&state)?;
    // Hash first, whatever happens next: a duplicate email costs the same time.
    let hash = state.hasher.hash(req.password).await.map_err(|e| {
        count("busy");
        e.api_error()
    })?;
    let id = new_id().map_err(|e| ApiError::internal(&e))?;
    let now = authrealm_tokens::unix_now();
    match state
        .db
        .insert_user(&id, &email, display_name.as_deref(), &hash, now)
        .await
    {
        Ok(InsertUser::Created) => {
            count("created");
            let view = UserView {
                id,
                email,
                display_name,
                created_at: now,
            };
            Ok((StatusCode::CREATED, Json(view)).into_response())
        }
        Ok(InsertUser::EmailTaken) => {
            count("email_taken");
            Err(ApiError::new(
                StatusCode::CONFLICT,
                codes::EMAIL_TAKEN,
                "this email is already registered",
            ))
        }
        Err(e) => {
            count("unavailable");
            Err(ApiError::from_db(&e))
        }
    }
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        codes::INVALID_CREDENTIALS,
        "wrong email or password",
    )
}

/// `POST /api/v1/login`.
pub async fn login(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let count = |r: &str| state.metrics.logins.with_label_values(&[r]).inc();
    if req.password.len() > crate::password::MAX_PASSWORD_BYTES {
        count("invalid");
        return Err(crate::password::PasswordProblem::TooLong.api_error());
    }
    // No shape check here: an email that cannot exist is just an unknown user.
    let email = req.email.trim().to_lowercase();
    if email.len() > MAX_EMAIL_BYTES {
        count("invalid");
        return Err(ApiError::bad_request(
            codes::INVALID_EMAIL,
            "the email is too long",
        ));
    }
    require_db(&state)?;
    let ip = ip.map_or_else(|| "unknown".to_owned(), |i| i.to_string());
    let now = authrealm_tokens::unix_now();
    if let Decision::Locked { retry_after, .. } = state.limiter.begin(&email, &ip, now).await {
        count("locked");
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            codes::TOO_MANY_ATTEMPTS,
            "too many failed logins; try again later",
        )
        .retry_after(retry_after));
    }
    let user = state.db.user_by_email(&email).await.map_err(|e| {
        count("unavailable");
        ApiError::from_db(&e)
    })?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let ok = state
        .hasher
        .verify(req.password, stored)
        .await
        .map_err(|e| {
            count("busy");
            e.api_error()
        })?;
    let Some(user) = user.filter(|_| ok) else {
        count("invalid_credentials");
        return Err(invalid_credentials());
    };
    state.limiter.succeeded(&email, &ip).await;
    if user.disabled_at.is_some() {
        count("disabled");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::ACCOUNT_DISABLED,
            "this account is disabled",
        ));
    }
    let mut claims = serde_json::Map::new();
    claims.insert(
        "email".to_owned(),
        serde_json::Value::String(user.email.clone()),
    );
    let pair = state.ma.mint(&user.id, claims).await.map_err(|e| {
        count("unavailable");
        e.api_error()
    })?;
    count("ok");
    remember_session(&state, &pair);
    Ok(Json(pair))
}

/// Without Redis, OP remembers the sessions it handed out so that
/// logout-all can end them in its own revocation view.
fn remember_session(state: &AppState, pair: &TokenPair) {
    if !state.redis_enabled {
        let until = authrealm_tokens::unix_now()
            .saturating_add(i64::try_from(pair.expires_in).unwrap_or(i64::MAX / 2))
            .saturating_add(state.leeway_secs);
        state
            .revocations
            .note_session(&pair.sub, &pair.session_id, until);
    }
}

/// `POST /api/v1/token/refresh`.
pub async fn refresh(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<RefreshBody>,
) -> Result<Json<TokenPair>, ApiError> {
    if req.refresh_token.is_empty() || req.refresh_token.len() > 1024 {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::REFRESH_TOKEN_INVALID,
            "the refresh token is unknown, expired or revoked",
        ));
    }
    require_db(&state)?;
    let pair = state
        .ma
        .refresh(&req.refresh_token)
        .await
        .map_err(|e| e.api_error())?;
    // A disabled or deleted user cannot go on: end the session just rotated.
    let user = state.db.user_by_id(&pair.sub).await;
    let allowed = match &user {
        Ok(Some(u)) => u.disabled_at.is_none(),
        Ok(None) => false,
        Err(e) => {
            // Fail closed: do not hand out tokens we could not check.
            if let Err(re) = state.ma.revoke(&pair.refresh_token, "refresh_token").await {
                tracing::warn!(error = ?re, "could not revoke the session after a database failure");
            }
            return Err(ApiError::from_db(e));
        }
    };
    if !allowed {
        if let Err(e) = state.ma.revoke(&pair.refresh_token, "refresh_token").await {
            tracing::warn!(error = ?e, "could not revoke the session of a disabled user");
        }
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::ACCOUNT_DISABLED,
            "the account no longer exists or is disabled",
        ));
    }
    remember_session(&state, &pair);
    Ok(Json(pair))
}

/// `POST /api/v1/logout`: revokes the presented access token and, when the
/// body names it, the session's refresh token (the whole session).
pub async fn logout(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
    req: axum::extract::Request,
) -> Result<StatusCode, ApiError> {
    let body = req.into_body();
    let limit = state.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        )
    })?;
    let body: LogoutBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        LogoutBody::default()
    } else {
        parse_json(&bytes)?
    };
    // Ending the session rejects this access token (and every other one of
    // the session) on every replica, and kills its refresh family.
    state
        .ma
        .revoke_session(&claims.sid)
        .await
        .map_err(|e| e.api_error())?;
    let now = authrealm_tokens::unix_now();
    // Effective here at once, whatever the channel does.
    state.revocations.apply(&RevocationEvent {
        kind: RevocationKind::Session,
        id: claims.sid.clone(),
        at: now,
        expires: now.saturating_add(token_life(&claims, state.leeway_secs)),
    });
    // A refresh token of another session may be handed in too: end that one as well.
    if let Some(rt) = body.refresh_token.filter(|t| !t.is_empty()) {
        state
            .ma
            .revoke(&rt, "refresh_token")
            .await
            .map_err(|e| e.api_error())?;
    }
    Ok(StatusCode::NO_CONTENT)
}

fn token_life(claims: &authrealm_tokens::AccessClaims, leeway: i64) -> i64 {
    claims
        .exp
        .saturating_sub(claims.iat)
        .max(0)
        .saturating_add(leeway)
        .saturating_add(60)
}

/// `POST /api/v1/logout-all`: ends every session of the user.
pub async fn logout_all(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
) -> Result<StatusCode, ApiError> {
    let resp = state
        .ma
        .revoke_all(&claims.sub)
        .await
        .map_err(|e| e.api_error())?;
    let life = token_life(&claims, state.leeway_secs);
    state.revocations.apply(&RevocationEvent {
        kind: RevocationKind::User,
        id: claims.sub.clone(),
        at: resp.not_before,
        expires: resp.not_before.saturating_add(life),
    });
    if !state.redis_enabled {
        // Tokens minted in the same second as the not-before time: end their
        // sessions too (with Redis, MA publishes one event per session).
        let mut sessions = state.revocations.sessions_of(&claims.sub);
        sessions.push((claims.sid.clone(), resp.not_before.saturating_add(life)));
        for (sid, until) in sessions {
            state.revocations.apply(&RevocationEvent {
                kind: RevocationKind::Session,
                id: sid,
                at: resp.not_before,
                expires: until,
            });
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/me`: the stored user.
pub async fn me(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
) -> Result<Json<UserView>, ApiError> {
    require_db(&state)?;
    match state.db.user_by_id(&claims.sub).await? {
        Some(u) if u.disabled_at.is_none() => Ok(Json(u.into())),
        _ => Err(ApiError::unauthorized(
            codes::ACCOUNT_DISABLED,
            "the account no longer exists or is disabled",
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() -> Result<(), ApiError> {
        assert_eq!(
            normalize_email("  Alice@Example.COM ")?,
            "alice@example.com"
        );
        assert_eq!(
            normalize_email("a.b+tag@sub.example.org")?,
            "a.b+tag@sub.example.org"
        );
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a b@example.com",
            "a@exa mple.com",
            "a@@example.com",
            "'; DROP TABLE users; --@example.com",
            "a@example..com",
            ".a@example.com",
            "a@-example.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(normalize_email(&long).is_err());
        Ok(())
    }
}
