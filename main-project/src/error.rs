//! The crate's error enum (start-up and infrastructure failures) and
//! [`ApiError`], the one JSON error answer every endpoint gives.

use std::borrow::Cow;

use authrealm_tokens::api::ErrorBody;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Everything that can go wrong outside a single request's validation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or invalid; the message names it.
    #[error("configuration error: {0}")]
    Config(String),
    /// The service credential could not be loaded.
    #[error("service credential")]
    Credential(#[source] authrealm_tokens::credential::CredentialError),
    /// The database refused or could not be reached.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// A schema migration failed.
    #[error("database migration {version} failed")]
    Migration {
        /// The migration's version number.
        version: i64,
        /// The database's reason.
        #[source]
        source: sqlx::Error,
    },
    /// The database holds a migration this build does not know, or one whose
    /// text changed after it was applied.
    #[error("database schema mismatch: {0}")]
    SchemaMismatch(String),
    /// Redis refused or could not be reached.
    #[error("redis error")]
    Redis(#[source] redis::RedisError),
    /// MA could not be reached or answered something unexpected.
    #[error("auth-service: {0}")]
    AuthService(String),
    /// MA could not be reached.
    #[error("auth-service request failed")]
    AuthServiceHttp(#[source] reqwest::Error),
    /// Listening or serving failed.
    #[error("server I/O")]
    Io(#[source] std::io::Error),
    /// A metric could not be registered.
    #[error("metrics")]
    Metrics(#[source] prometheus::Error),
    /// Hashing failed (bad parameters or a broken stored hash).
    #[error("password hashing failed")]
    Hash,
    /// The system random source failed.
    #[error("random source unavailable")]
    Random,
}

/// Stable error codes of OP's public API.
pub mod codes {
    /// Body is not JSON, or not of the expected shape (also missing fields).
    pub const BAD_REQUEST: &str = "bad_request";
    /// Body larger than the configured limit.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// The email is not an address.
    pub const INVALID_EMAIL: &str = "invalid_email";
    /// Password shorter than 12 characters.
    pub const PASSWORD_TOO_SHORT: &str = "password_too_short";
    /// Password longer than 1024 bytes.
    pub const PASSWORD_TOO_LONG: &str = "password_too_long";
    /// Password on the deny list of common/breached passwords.
    pub const PASSWORD_TOO_COMMON: &str = "password_too_common";
    /// Display name too long or with control characters.
    pub const INVALID_DISPLAY_NAME: &str = "invalid_display_name";
    /// Note title/body empty, too long or with control characters.
    pub const INVALID_NOTE: &str = "invalid_note";
    /// The email is already registered.
    pub const EMAIL_TAKEN: &str = "email_taken";
    /// Wrong email or password (never says which).
    pub const INVALID_CREDENTIALS: &str = "invalid_credentials";
    /// Too many failed logins for the account or client address.
    pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
    /// Every password-hashing slot is busy and the queue is full.
    pub const BUSY: &str = "busy";
    /// No `Authorization: Bearer ...` header.
    pub const MISSING_TOKEN: &str = "missing_token";
    /// The token was revoked (logout, logout-all, session end).
    pub const TOKEN_REVOKED: &str = "token_revoked";
    /// The token's user no longer exists or is disabled.
    pub const ACCOUNT_DISABLED: &str = "account_disabled";
    /// Refresh token unknown, expired or of a revoked session.
    pub const REFRESH_TOKEN_INVALID: &str = "refresh_token_invalid";
    /// A spent refresh token was presented again; its session is revoked.
    pub const REFRESH_TOKEN_REUSED: &str = "refresh_token_reused";
    /// The resource does not exist (or belongs to someone else).
    pub const NOT_FOUND: &str = "not_found";
    /// The route exists, the method does not.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// The database is unreachable.
    pub const DATABASE_UNAVAILABLE: &str = "database_unavailable";
    /// The auth-service is unreachable.
    pub const AUTH_SERVICE_UNAVAILABLE: &str = "auth_service_unavailable";
    /// The revocation state is unknown (Redis unreachable) under `fail-closed`.
    pub const REVOCATION_UNAVAILABLE: &str = "revocation_unavailable";
    /// The JWKS has not been loaded yet.
    pub const KEYS_UNAVAILABLE: &str = "keys_unavailable";
    /// Anything else; details are in the log only.
    pub const INTERNAL: &str = "internal";
}

/// A JSON error answer: status, stable code, message, optional `Retry-After`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code (see [`codes`]).
    pub code: &'static str,
    /// Human-readable sentence; never secrets or internals.
    pub message: Cow<'static, str>,
    /// Seconds for `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
    /// Whether to add `WWW-Authenticate: Bearer` (401 on protected routes).
    pub bearer_challenge: bool,
}

impl ApiError {
    /// An error with a status, code and message.
    #[must_use]
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            bearer_challenge: false,
        }
    }

    /// Adds `Retry-After: secs` (at least 1).
    #[must_use]
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// 400 with a code.
    #[must_use]
    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401 for a protected route, with a `WWW-Authenticate` challenge.
    #[must_use]
    pub fn unauthorized(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, code, message);
        e.bearer_challenge = true;
        e
    }

    /// 404 `not_found`.
    #[must_use]
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "no such resource")
    }

    /// 503 with a code and `Retry-After`.
    #[must_use]
    pub fn unavailable(
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
        secs: u64,
    ) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message).retry_after(secs)
    }

    /// 500 `internal`; the cause goes to the log, not to the client.
    #[must_use]
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "internal error; see the server log",
        )
    }

    /// The 503 for a database failure, or 500 for anything that is not
    /// about reaching the database.
    #[must_use]
    pub fn from_db(err: &sqlx::Error) -> Self {
        if is_unavailable(err) {
            tracing::warn!(error = %err, "database unavailable");
            Self::unavailable(
                codes::DATABASE_UNAVAILABLE,
                "the database is unavailable; try again shortly",
                2,
            )
        } else {
            Self::internal(err)
        }
    }
}

/// Whether a database error means "cannot reach the database right now".
#[must_use]
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    ) || matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| {
        // Postgres: admin shutdown, cannot connect now, too many connections.
        c == "57P01" || c == "57P02" || c == "57P03" || c == "53300"
    }))
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        Self::from_db(&err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.code, self.message);
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.bearer_challenge {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"authrealm\""),
            );
        }
        resp
    }
}
