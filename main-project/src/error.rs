//! The crate's one error type and the one place it becomes an HTTP answer.
//!
//! Infrastructure (database, Redis, MA's client, the hashing pool, the key
//! store) and the request rules return [`Error`]; handlers pass it on with
//! `?`, and [`IntoResponse`] here picks the status, the stable code from
//! [`codes`], the sentence, `Retry-After` and the bearer challenge. Nothing
//! internal reaches a client: causes of a 500 go to the log only.

use std::borrow::Cow;

use authrealm_tokens::VerifyError;
use authrealm_tokens::api::ErrorBody;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};

/// Everything that can go wrong in OP: at start, in a dependency, or in a request.
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
    /// The schema migrations have not run yet (the database was not reachable).
    #[error("the database is not migrated yet")]
    DatabaseNotReady,
    /// A schema migration failed.
    #[error("database migration {version} failed")]
    Migration {
        /// The migration's version number.
        version: i64,
        /// The database's reason.
        #[source]
        source: sqlx::Error,
    },
    /// The database holds a migration whose text changed after it was applied.
    #[error("database schema mismatch: {0}")]
    SchemaMismatch(String),
    /// Redis refused or could not be reached.
    #[error("redis error")]
    Redis(#[source] redis::RedisError),
    /// The HTTP client for MA could not be built.
    #[error("auth-service client")]
    AuthServiceClient(#[source] reqwest::Error),
    /// MA could not be reached, timed out, or answered 5xx / `unavailable`.
    #[error("auth-service unavailable: {0}")]
    AuthServiceUnavailable(String),
    /// MA refused a call with a 4xx and a code OP has no answer for.
    #[error("auth-service refused the request: {status} {code}")]
    AuthServiceRejected {
        /// HTTP status MA answered.
        status: u16,
        /// MA's error code.
        code: String,
    },
    /// MA answered something that is not the documented shape.
    #[error("auth-service protocol: {0}")]
    AuthServiceProtocol(String),
    /// Listening or serving failed.
    #[error("server I/O")]
    Io(#[source] std::io::Error),
    /// A metric could not be registered.
    #[error("metrics")]
    Metrics(#[source] prometheus::Error),
    /// Hashing failed (bad parameters, or the blocking task died).
    #[error("password hashing failed")]
    Hash,
    /// Every hashing slot is busy and the wait queue is full (or timed out).
    #[error("password hashing is busy")]
    Busy,
    /// The system random source failed.
    #[error("random source unavailable")]
    Random,

    /// The body is not JSON of the expected shape; the message names no value.
    #[error("bad request: {0}")]
    BadRequest(Cow<'static, str>),
    /// The body exceeds the configured limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// No such resource (or another user's).
    #[error("not found")]
    NotFound,
    /// The route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The email is not an address OP accepts; the message says why.
    #[error("invalid email: {0}")]
    InvalidEmail(&'static str),
    /// The new password is shorter than [`MIN_PASSWORD_CHARS`].
    #[error("password too short")]
    PasswordTooShort,
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("password too long")]
    PasswordTooLong,
    /// The new password is on the deny list, one repeated character, or the email.
    #[error("password too common")]
    PasswordTooCommon,
    /// The display name is too long or has control characters.
    #[error("invalid display name")]
    InvalidDisplayName,
    /// A note's title or body breaks a rule; the message says which.
    #[error("invalid note: {0}")]
    InvalidNote(&'static str),
    /// The email is already registered.
    #[error("email taken")]
    EmailTaken,
    /// Wrong email or password (never says which).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many failed logins for the account or address.
    #[error("too many attempts")]
    TooManyAttempts {
        /// Seconds until the window ends.
        retry_after: u64,
    },
    /// Login of a disabled account (403).
    #[error("account disabled")]
    AccountDisabled,
    /// A refresh for a user that is gone or disabled (401; the session is ended).
    #[error("the session's account is gone or disabled")]
    SessionAccountDisabled,
    /// A bearer token whose user is gone or disabled (401 with a challenge).
    #[error("the token's account is gone or disabled")]
    TokenAccountDisabled,
    /// Refresh token unknown, expired or of a revoked session.
    #[error("refresh token invalid")]
    RefreshInvalid,
    /// A spent refresh token was presented again; the session is ended.
    #[error("refresh token reused")]
    RefreshReused,
    /// No usable `Authorization: Bearer` header.
    #[error("missing bearer token")]
    MissingToken,
    /// More than one `Authorization` header: which one counts is ambiguous.
    #[error("more than one Authorization header")]
    AmbiguousAuthorization,
    /// The access token failed a check.
    #[error("token refused: {0}")]
    Token(VerifyError),
    /// The access token was revoked.
    #[error("token revoked")]
    TokenRevoked,
    /// The revocation state is unknown under `fail-closed`.
    #[error("revocation state unknown")]
    RevocationUnavailable,
    /// No JWKS has been loaded yet.
    #[error("no keys loaded")]
    KeysUnavailable,
    /// A valid token lacks a scope the gateway requires (forward auth, 403).
    #[error("insufficient scope")]
    InsufficientScope {
        /// The scopes required, space-separated (named in the challenge).
        required: String,
    },
    /// A valid token is for another audience than the gateway requires
    /// (forward auth, 403).
    #[error("token audience not accepted here")]
    AudienceNotAccepted,
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
    /// Forward auth: the token lacks a scope the route requires.
    pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";
    /// Forward auth: the token is for another audience than the route requires.
    pub const AUDIENCE_NOT_ACCEPTED: &str = "audience_not_accepted";
    /// Anything else; details are in the log only.
    pub const INTERNAL: &str = "internal";
}

/// The stable API code for a failed token check.
#[must_use]
pub fn token_code(e: VerifyError) -> &'static str {
    match e {
        VerifyError::Malformed => "token_malformed",
        VerifyError::BadSignature => "token_bad_signature",
        VerifyError::UnknownKid => "token_unknown_kid",
        VerifyError::Expired => "token_expired",
        VerifyError::NotYetValid => "token_not_yet_valid",
        VerifyError::WrongIssuer => "token_wrong_issuer",
        VerifyError::WrongAudience => "token_wrong_audience",
        VerifyError::AlgNotAllowed => "token_alg_not_allowed",
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

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Self::Database(err)
    }
}

/// The `WWW-Authenticate` challenge of an answer (RFC 6750 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    /// No challenge.
    None,
    /// No credentials were sent: the scheme and realm only (§3.1: no error code).
    Bearer,
    /// The token was sent and refused: `error="invalid_token"`.
    InvalidToken,
    /// The token is valid but not enough: `error="insufficient_scope"`, and
    /// the scopes required when there are any.
    InsufficientScope(Option<String>),
}

/// How one error answers: everything [`IntoResponse`] needs.
struct Answer {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    retry_after: Option<u64>,
    challenge: Challenge,
}

impl Answer {
    fn new(status: StatusCode, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            challenge: Challenge::None,
        }
    }

    fn unavailable(code: &'static str, message: &'static str, secs: u64) -> Self {
        Self {
            retry_after: Some(secs.max(1)),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// 401 for a token that was sent and refused.
    fn unauthorized(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            challenge: Challenge::InvalidToken,
            ..Self::new(StatusCode::UNAUTHORIZED, code, message)
        }
    }

    /// 403 for a valid token that does not meet a route's requirement.
    fn forbidden(code: &'static str, message: &'static str, scope: Option<String>) -> Self {
        Self {
            challenge: Challenge::InsufficientScope(scope),
            ..Self::new(StatusCode::FORBIDDEN, code, message)
        }
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "internal error; see the server log",
        )
    }
}

const DATABASE_DOWN: &str = "the database is unavailable; try again shortly";
const MA_DOWN: &str = "the auth-service is unavailable; try again shortly";

impl Error {
    /// The HTTP status this error answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.answer().status
    }

    /// The stable code this error answers with.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.answer().code
    }

    #[allow(clippy::too_many_lines)] // one arm per variant: the whole mapping in one place
    fn answer(&self) -> Answer {
        use StatusCode as S;
        match self {
            Self::Database(e) if is_unavailable(e) => {
                Answer::unavailable(codes::DATABASE_UNAVAILABLE, DATABASE_DOWN, 2)
            }
            Self::DatabaseNotReady => Answer::unavailable(
                codes::DATABASE_UNAVAILABLE,
                "the database is not ready yet; try again shortly",
                2,
            ),
            Self::AuthServiceUnavailable(_) => {
                Answer::unavailable(codes::AUTH_SERVICE_UNAVAILABLE, MA_DOWN, 2)
            }
            Self::Busy => Answer::unavailable(
                codes::BUSY,
                "the server is busy checking passwords; try again shortly",
                1,
            ),
            Self::RevocationUnavailable => Answer::unavailable(
                codes::REVOCATION_UNAVAILABLE,
                "the revocation list is unavailable; try again shortly",
                2,
            ),
            Self::KeysUnavailable => Answer::unavailable(
                codes::KEYS_UNAVAILABLE,
                "the signing keys have not been loaded yet; try again shortly",
                2,
            ),
            Self::BadRequest(msg) => Answer::new(S::BAD_REQUEST, codes::BAD_REQUEST, msg.clone()),
            Self::AmbiguousAuthorization => Answer::new(
                S::BAD_REQUEST,
                codes::BAD_REQUEST,
                "send exactly one Authorization header",
            ),
            Self::PayloadTooLarge => Answer::new(
                S::PAYLOAD_TOO_LARGE,
                codes::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            ),
            Self::NotFound => Answer::new(S::NOT_FOUND, codes::NOT_FOUND, "no such resource"),
            Self::MethodNotAllowed => Answer::new(
                S::METHOD_NOT_ALLOWED,
                codes::METHOD_NOT_ALLOWED,
                "this method is not allowed on this path",
            ),
            Self::InvalidEmail(why) => Answer::new(S::BAD_REQUEST, codes::INVALID_EMAIL, *why),
            Self::PasswordTooShort => Answer::new(
                S::BAD_REQUEST,
                codes::PASSWORD_TOO_SHORT,
                format!("the password must have at least {MIN_PASSWORD_CHARS} characters"),
            ),
            Self::PasswordTooLong => Answer::new(
                S::BAD_REQUEST,
                codes::PASSWORD_TOO_LONG,
                format!("the password must be at most {MAX_PASSWORD_BYTES} bytes"),
            ),
            Self::PasswordTooCommon => Answer::new(
                S::BAD_REQUEST,
                codes::PASSWORD_TOO_COMMON,
                "the password is too common; choose another",
            ),
            Self::InvalidDisplayName => Answer::new(
                S::BAD_REQUEST,
                codes::INVALID_DISPLAY_NAME,
                format!(
                    "the display name must have at most {} characters and no control characters",
                    crate::accounts::MAX_DISPLAY_NAME_CHARS
                ),
            ),
            Self::InvalidNote(why) => Answer::new(S::BAD_REQUEST, codes::INVALID_NOTE, *why),
            Self::EmailTaken => Answer::new(
                S::CONFLICT,
                codes::EMAIL_TAKEN,
                "this email is already registered",
            ),
            Self::InvalidCredentials => Answer::new(
                S::UNAUTHORIZED,
                codes::INVALID_CREDENTIALS,
                "wrong email or password",
            ),
            Self::TooManyAttempts { retry_after } => Answer {
                retry_after: Some((*retry_after).max(1)),
                ..Answer::new(
                    S::TOO_MANY_REQUESTS,
                    codes::TOO_MANY_ATTEMPTS,
                    "too many failed logins; try again later",
                )
            },
            Self::AccountDisabled => Answer::new(
                S::FORBIDDEN,
                codes::ACCOUNT_DISABLED,
                "this account is disabled",
            ),
            Self::SessionAccountDisabled => Answer::new(
                S::UNAUTHORIZED,
                codes::ACCOUNT_DISABLED,
                "the account no longer exists or is disabled",
            ),
            Self::TokenAccountDisabled => Answer::unauthorized(
                codes::ACCOUNT_DISABLED,
                "the account no longer exists or is disabled",
            ),
            Self::RefreshInvalid => Answer::new(
                S::UNAUTHORIZED,
                codes::REFRESH_TOKEN_INVALID,
                "the refresh token is unknown, expired or revoked",
            ),
            Self::RefreshReused => Answer::new(
                S::UNAUTHORIZED,
                codes::REFRESH_TOKEN_REUSED,
                "the refresh token was already used; the session has been ended",
            ),
            Self::MissingToken => Answer {
                challenge: Challenge::Bearer,
                ..Answer::unauthorized(
                    codes::MISSING_TOKEN,
                    "an `Authorization: Bearer <access token>` header is required",
                )
            },
            Self::InsufficientScope { required } => Answer::forbidden(
                codes::INSUFFICIENT_SCOPE,
                "the token lacks a scope this resource requires",
                Some(required.clone()),
            ),
            Self::AudienceNotAccepted => Answer::forbidden(
                codes::AUDIENCE_NOT_ACCEPTED,
                "the token is not for the audience this resource requires",
                None,
            ),
            Self::Token(e) => Answer::unauthorized(token_code(*e), e.to_string()),
            Self::TokenRevoked => {
                Answer::unauthorized(codes::TOKEN_REVOKED, "the token has been revoked")
            }
            Self::Config(_)
            | Self::Credential(_)
            | Self::Database(_)
            | Self::Migration { .. }
            | Self::SchemaMismatch(_)
            | Self::Redis(_)
            | Self::AuthServiceClient(_)
            | Self::AuthServiceRejected { .. }
            | Self::AuthServiceProtocol(_)
            | Self::Io(_)
            | Self::Metrics(_)
            | Self::Hash
            | Self::Random => Answer::internal(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let a = self.answer();
        if a.status.is_server_error() {
            let source = std::error::Error::source(&self).map(ToString::to_string);
            if a.status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(error = %self, source, code = a.code, "dependency unavailable");
            } else {
                tracing::error!(error = %self, source, code = a.code, "internal error");
            }
        }
        let mut resp = (a.status, axum::Json(ErrorBody::new(a.code, a.message))).into_response();
        if let Some(secs) = a.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        let challenge = match a.challenge {
            Challenge::None => None,
            Challenge::Bearer => Some(HeaderValue::from_static(r#"Bearer realm="authrealm""#)),
            Challenge::InvalidToken => Some(HeaderValue::from_static(
                r#"Bearer realm="authrealm", error="invalid_token""#,
            )),
            Challenge::InsufficientScope(None) => Some(HeaderValue::from_static(
                r#"Bearer realm="authrealm", error="insufficient_scope""#,
            )),
            // Scope tokens are printable ASCII without `"` or `\` (checked
            // where the requirement is parsed): safe inside the quotes.
            Challenge::InsufficientScope(Some(scope)) => HeaderValue::try_from(format!(
                r#"Bearer realm="authrealm", error="insufficient_scope", scope="{scope}""#
            ))
            .ok(),
        };
        if let Some(value) = challenge {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_failures_answer_503_with_retry_after_and_nothing_internal() {
        let cases = [
            Error::Database(sqlx::Error::PoolTimedOut),
            Error::DatabaseNotReady,
            Error::AuthServiceUnavailable("connection refused at 10.0.0.7".into()),
            Error::Busy,
            Error::RevocationUnavailable,
            Error::KeysUnavailable,
        ];
        for e in cases {
            let resp = e.into_response();
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(resp.headers().contains_key(header::RETRY_AFTER));
        }
        let internal = Error::AuthServiceProtocol("secret detail".into());
        assert_eq!(internal.code(), codes::INTERNAL);
        assert_eq!(internal.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn bearer_refusals_carry_a_challenge_and_login_refusals_do_not() {
        let token = Error::Token(VerifyError::Expired).into_response();
        assert_eq!(token.status(), StatusCode::UNAUTHORIZED);
        assert!(token.headers().contains_key(header::WWW_AUTHENTICATE));
        let login = Error::InvalidCredentials.into_response();
        assert!(!login.headers().contains_key(header::WWW_AUTHENTICATE));
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        let challenge = |e: Error| {
            let resp = e.into_response();
            let value = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (resp.status(), value)
        };
        // No credentials: no error code (§3.1).
        assert_eq!(
            challenge(Error::MissingToken),
            (
                StatusCode::UNAUTHORIZED,
                Some(r#"Bearer realm="authrealm""#.to_owned())
            )
        );
        for refused in [Error::Token(VerifyError::BadSignature), Error::TokenRevoked] {
            let (status, value) = challenge(refused);
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(
                value.as_deref(),
                Some(r#"Bearer realm="authrealm", error="invalid_token""#)
            );
        }
        let (status, value) = challenge(Error::InsufficientScope {
            required: "orders:read admin".into(),
        });
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            value.as_deref(),
            Some(
                r#"Bearer realm="authrealm", error="insufficient_scope", scope="orders:read admin""#
            )
        );
        let (status, value) = challenge(Error::AudienceNotAccepted);
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(value.is_some_and(|v| v.ends_with(r#"error="insufficient_scope""#)));
    }
}
