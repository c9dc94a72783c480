//! The auth-service's one error type, and how each error answers over HTTP:
//! a stable code from `authrealm_tokens::api::codes`, a sentence, and never
//! an internal detail.

use std::borrow::Cow;

use authrealm_tokens::api::{ErrorBody, codes};
use authrealm_tokens::oauth::{AuthorizeRejection, ErrorCode};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Everything that can go wrong in the auth-service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The service credential could not be loaded.
    #[error("service credential")]
    Credential(#[source] authrealm_tokens::credential::CredentialError),
    /// The key set file could not be read.
    #[error("cannot read key set {path}")]
    KeyRead {
        /// The file tried.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The key set was refused.
    #[error("key set refused")]
    KeySet(#[source] authrealm_tokens::KeySetError),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr} ({setting})")]
    Bind {
        /// The variable that names the address.
        setting: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving HTTP failed.
    #[error("http server")]
    Io(#[source] std::io::Error),
    /// The store (Redis) could not be reached or answered an error.
    #[error("store unavailable")]
    Store(#[source] redis::RedisError),
    /// The store answered something this code does not understand.
    #[error("store answered unexpectedly: {0}")]
    StoreProtocol(String),
    /// Signing a token failed.
    #[error("signing failed")]
    Sign(#[source] jsonwebtoken::errors::Error),
    /// The system random source failed.
    #[error("random source failed")]
    Random,
    /// Missing or wrong service credential.
    #[error("missing or wrong service credential")]
    Unauthorized,
    /// The request body is not what the endpoint expects.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The request body exceeds the limit.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The endpoint exists but not in this configuration.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// Refresh token unknown, expired, or of a revoked session.
    #[error("refresh token is invalid")]
    RefreshInvalid,
    /// A spent refresh token was presented again.
    #[error("refresh token was already used")]
    RefreshReused,
    /// An OAuth request refused with an RFC 6749 error code. The public
    /// OAuth endpoints answer it as RFC 6749 §5.2 JSON; the internal
    /// code-flow endpoints as an `AuthorizeRejection`.
    #[error("oauth {}: {description}", code.as_str())]
    OAuth {
        /// The error code.
        code: ErrorCode,
        /// What was wrong, for the developer; never a secret.
        description: Cow<'static, str>,
        /// Whether OP may send the browser back to the redirect URI with
        /// it (authorization requests only).
        redirectable: bool,
    },
}

impl Error {
    /// An OAuth refusal that goes back to the client (redirectable at the
    /// authorization endpoint).
    #[must_use]
    pub fn oauth(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self::OAuth {
            code,
            description: description.into(),
            redirectable: true,
        }
    }

    /// An OAuth refusal OP must show on its own page, never redirect.
    #[must_use]
    pub fn oauth_page(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self::OAuth {
            code,
            description: description.into(),
            redirectable: false,
        }
    }

    /// The OAuth error code this error answers with on the OAuth endpoints.
    #[must_use]
    pub fn oauth_code(&self) -> ErrorCode {
        match self {
            Self::OAuth { code, .. } => *code,
            Self::BadRequest(_) | Self::PayloadTooLarge(_) => ErrorCode::InvalidRequest,
            Self::RefreshInvalid | Self::RefreshReused => ErrorCode::InvalidGrant,
            Self::Unauthorized => ErrorCode::InvalidClient,
            Self::Store(_) | Self::StoreProtocol(_) => ErrorCode::TemporarilyUnavailable,
            _ => ErrorCode::ServerError,
        }
    }
}

impl Error {
    /// HTTP status and stable code of this error.
    #[must_use]
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, codes::BAD_REQUEST),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, codes::PAYLOAD_TOO_LARGE),
            Self::RefreshInvalid => (StatusCode::BAD_REQUEST, codes::REFRESH_TOKEN_INVALID),
            Self::RefreshReused => (StatusCode::BAD_REQUEST, codes::REFRESH_TOKEN_REUSED),
            Self::OAuth { code, .. } => (StatusCode::BAD_REQUEST, code.as_str()),
            Self::Store(_) | Self::StoreProtocol(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE)
            }
            Self::Config(_)
            | Self::Credential(_)
            | Self::KeyRead { .. }
            | Self::KeySet(_)
            | Self::Bind { .. }
            | Self::Io(_)
            | Self::Sign(_)
            | Self::Random => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
        }
    }

    /// The sentence an answer carries: never a secret or an internal detail.
    #[must_use]
    pub fn public_message(&self) -> String {
        match self {
            Self::Unauthorized => {
                "this endpoint requires the service credential as `Authorization: Bearer <secret>`"
                    .to_owned()
            }
            Self::BadRequest(msg) => msg.clone(),
            Self::NotFound(msg) => (*msg).to_owned(),
            Self::PayloadTooLarge(_) => self.to_string(),
            Self::RefreshInvalid => {
                "refresh token is unknown, expired, or of a revoked session".to_owned()
            }
            Self::RefreshReused => {
                "refresh token was already used; its whole session has been revoked".to_owned()
            }
            Self::Store(_) | Self::StoreProtocol(_) => {
                "the token store is unavailable; nothing was issued or changed, retry later"
                    .to_owned()
            }
            Self::OAuth { description, .. } => description.to_string(),
            _ => "internal error; see the auth-service log".to_owned(),
        }
    }
}

/// Shortcut for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Logs the error: server errors with their source, refusals at debug.
    pub fn log(&self) {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, source = ?std::error::Error::source(self).map(ToString::to_string), code, "request failed");
        } else {
            tracing::debug!(error = %self, code, "request refused");
        }
    }

    /// Whether a retry may succeed (the store was unreachable): such
    /// answers carry `Retry-After`.
    #[must_use]
    pub fn retry_later(&self) -> bool {
        matches!(self, Self::Store(_) | Self::StoreProtocol(_))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log();
        let (status, code) = self.status_and_code();
        let detail = ErrorBody::new(code, self.public_message());
        let mut response = match &self {
            Self::OAuth { redirectable, .. } => (
                status,
                axum::Json(AuthorizeRejection {
                    error: detail.error,
                    redirectable: *redirectable,
                }),
            )
                .into_response(),
            _ => (status, axum::Json(detail)).into_response(),
        };
        if self.retry_later() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
