//! The account endpoints: register, login and me, with their request and
//! answer types. Sessions (refresh, logout) are in `sessions`.

use std::sync::Arc;

use authrealm_tokens::api::TokenPair;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use crate::auth::{ApiJson, Authenticated, ClientIp};
use crate::db::{InsertUser, User};
use crate::email;
use crate::error::Error;
use crate::ids::new_id;
use crate::limiter::Decision;
use crate::password::{MAX_PASSWORD_BYTES, check_new_password};
use crate::state::AppState;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// `POST /api/v1/register` body. `Debug` never shows the password.
#[derive(Debug, Deserialize)]
pub struct RegisterRequest {
    /// Email address (case-insensitive; stored normalised).
    pub email: String,
    /// At least 12 characters, at most 1024 bytes.
    pub password: SecretString,
    /// Optional name to show.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `POST /api/v1/login` body. `Debug` never shows the password.
#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: SecretString,
}

/// A user as the API shows it.
#[derive(Debug, Serialize)]
pub struct UserView {
    /// User id (the `sub` of their tokens).
    pub id: String,
    /// Normalised email.
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

fn check_display_name(name: Option<String>) -> Result<Option<String>, Error> {
    let Some(name) = name else { return Ok(None) };
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::InvalidDisplayName);
    }
    Ok(Some(name))
}

/// `POST /api/v1/register`.
///
/// # Errors
/// Input rules (400), `email_taken` (409), hashing busy or database down (503).
pub async fn register(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<UserView>), Error> {
    let count = |r: &str| state.metrics.registrations.with_label_values(&[r]).inc();
    let valid = (|| {
        let email = email::normalize(&req.email)?;
        check_new_password(req.password.expose_secret(), &email)?;
        Ok::<_, Error>((email, check_display_name(req.display_name)?))
    })();
    let (email, display_name) = valid.inspect_err(|_| count("invalid"))?;
    state.require_db()?;
    // Hash first, whatever happens next: a duplicate email costs the same time.
    let hash = state
        .hasher
        .hash(req.password.expose_secret().to_owned())
        .await
        .inspect_err(|_| count("busy"))?;
    let id = new_id()?;
    let now = state.clock.now();
    let inserted = state
        .db
        .insert_user(&id, &email, display_name.as_deref(), &hash, now)
        .await
        .inspect_err(|_| count("unavailable"))?;
    match inserted {
        InsertUser::Created => {
            count("created");
            let view = UserView {
                id,
                email,
                display_name,
                created_at: now,
            };
            Ok((StatusCode::CREATED, Json(view)))
        }
        InsertUser::EmailTaken => {
            count("email_taken");
            Err(Error::EmailTaken)
        }
    }
}

/// `POST /api/v1/login`.
///
/// # Errors
/// `invalid_credentials` (401), `account_disabled` (403), `too_many_attempts`
/// (429), hashing busy, database or MA down (503).
pub async fn login(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenPair>, Error> {
    let user = authenticate(&state, ip, &req.email, req.password.expose_secret()).await?;
    let mut claims = serde_json::Map::new();
    claims.insert(
        "email".to_owned(),
        serde_json::Value::String(user.email.clone()),
    );
    let pair = state.ma.mint(&user.id, claims).await.inspect_err(|_| {
        state
            .metrics
            .logins
            .with_label_values(&["unavailable"])
            .inc()
    })?;
    state.metrics.logins.with_label_values(&["ok"]).inc();
    Ok(Json(pair))
}

/// The password path every login takes (the API's and the login page's):
/// the email's normal form, the per-account and per-address failure
/// limits, argon2id on the bounded pool, the disabled check. Counts every
/// outcome but success (the caller counts that once its own step worked).
///
/// # Errors
/// `invalid_credentials` (401), `account_disabled` (403), `too_many_attempts`
/// (429), hashing busy or database down (503).
pub async fn authenticate(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    email: &str,
    password: &str,
) -> Result<User, Error> {
    let count = |r: &str| state.metrics.logins.with_label_values(&[r]).inc();
    if password.len() > MAX_PASSWORD_BYTES {
        count("invalid");
        return Err(Error::PasswordTooLong);
    }
    // The same normal form as at registration. An email that cannot be an
    // address is just an unknown user, answered without the database.
    let email = match email::normalize(email) {
        Ok(email) => email,
        Err(Error::InvalidEmail(why)) if why == email::TOO_LONG => {
            count("invalid");
            return Err(Error::InvalidEmail(why));
        }
        Err(_) => {
            count("invalid_credentials");
            return Err(Error::InvalidCredentials);
        }
    };
    state.require_db()?;
    let ip = ip.map_or_else(|| "unknown".to_owned(), |i| i.to_string());
    let now = state.clock.now();
    if let Decision::Locked { retry_after, .. } = state.limiter.begin(&email, &ip, now).await {
        count("locked");
        return Err(Error::TooManyAttempts { retry_after });
    }
    let checked = async {
        let user = state.db.user_by_email(&email).await?;
        let stored = user
            .as_ref()
            .map(|u| u.password_hash.expose_secret().to_owned());
        let ok = state.hasher.verify(password.to_owned(), stored).await?;
        Ok::<_, Error>(user.filter(|_| ok))
    }
    .await;
    let user = match checked {
        Ok(user) => user,
        Err(e) => {
            // No answer about the password: the attempt does not count.
            state.limiter.undo(&email, &ip).await;
            count(if matches!(e, Error::Busy) {
                "busy"
            } else {
                "unavailable"
            });
            return Err(e);
        }
    };
    let Some(user) = user else {
        count("invalid_credentials");
        return Err(Error::InvalidCredentials);
    };
    state.limiter.succeeded(&email, &ip).await;
    if user.disabled_at.is_some() {
        count("disabled");
        return Err(Error::AccountDisabled);
    }
    Ok(user)
}

/// `GET /api/v1/me`: the stored user.
///
/// # Errors
/// `account_disabled` (401) when the user is gone or disabled; 503 when the
/// database is down.
pub async fn me(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
) -> Result<Json<UserView>, Error> {
    state.require_db()?;
    match state.db.user_by_id(&claims.sub).await? {
        Some(u) if u.disabled_at.is_none() => Ok(Json(u.into())),
        _ => Err(Error::TokenAccountDisabled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_debug_never_shows_the_password() -> Result<(), serde_json::Error> {
        let r: RegisterRequest = serde_json::from_str(
            r#"{"email":"a@example.com","password":"hunter2-but-longer","display_name":"A"}"#,
        )?;
        let l: LoginRequest =
            serde_json::from_str(r#"{"email":"a@example.com","password":"hunter2-but-longer"}"#)?;
        for text in [format!("{r:?}"), format!("{l:?}")] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("a@example.com"), "{text}");
        }
        Ok(())
    }
}
