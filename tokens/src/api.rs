//! The internal HTTP API between OP and MA (`/v1/...`): request and response
//! bodies, and the JSON error body both services answer with.

use serde::{Deserialize, Serialize};

/// Path of the mint endpoint.
pub const PATH_MINT: &str = "/v1/tokens";
/// Path of the refresh (rotation) endpoint.
pub const PATH_REFRESH: &str = "/v1/tokens/refresh";
/// Path of the revocation endpoint (RFC 7009 semantics).
pub const PATH_REVOKE: &str = "/v1/tokens/revoke";
/// Path of the introspection endpoint (RFC 7662 style).
pub const PATH_INTROSPECT: &str = "/v1/tokens/introspect";
/// Path of the per-session logout endpoint (ends one session by `sid`).
pub const PATH_REVOKE_SESSION: &str = "/v1/sessions/revoke";
/// Path of the per-user "log out everywhere" endpoint.
pub const PATH_REVOKE_ALL: &str = "/v1/sessions/revoke-all";
/// Path of the revocation feed (memory store only; with Redis, verifiers
/// follow the Redis channel instead).
pub const PATH_REVOCATION_FEED: &str = "/v1/revocations";
/// Path of the public key set.
pub const PATH_JWKS: &str = "/.well-known/jwks.json";
/// Path of the OpenID discovery document.
pub const PATH_DISCOVERY: &str = "/.well-known/openid-configuration";

/// `POST /v1/tokens`: mint an access token and start a new session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// The user id (becomes `sub`).
    pub sub: String,
    /// Extra claims to put in the access token (no registered claim names).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// An access + refresh token pair (answer to mint and refresh).
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenPair {
    /// The signed access JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
    /// The opaque refresh token (256 random bits, base64url).
    pub refresh_token: String,
    /// Seconds until the refresh token expires unused.
    pub refresh_expires_in: u64,
    /// The session (refresh-token family) id, also the `sid` claim.
    pub session_id: String,
    /// The user id the pair belongs to.
    pub sub: String,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("expires_in", &self.expires_in)
            .field("session_id", &self.session_id)
            .field("sub", &self.sub)
            .finish_non_exhaustive()
    }
}

/// `POST /v1/tokens/refresh`. `Debug` never shows the token.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token to spend.
    pub refresh_token: String,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("refresh_token", &"<redacted>")
            .finish()
    }
}

/// `POST /v1/tokens/revoke` and `POST /v1/tokens/introspect`. `Debug` never
/// shows the token.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenRequest {
    /// An access JWT or a refresh token.
    pub token: String,
    /// `access_token` or `refresh_token`; a hint only (RFC 7009 §2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type_hint: Option<String>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("token", &"<redacted>")
            .field("token_type_hint", &self.token_type_hint)
            .finish()
    }
}

/// `POST /v1/sessions/revoke`: ends one session (refresh family and every
/// access token carrying its `sid`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeSessionRequest {
    /// The session id (`sid` claim).
    pub sid: String,
}

/// `POST /v1/sessions/revoke-all`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeAllRequest {
    /// The user whose every session ends.
    pub sub: String,
}

/// Answer to revoke-all: tokens of `sub` issued before `not_before` are rejected.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeAllResponse {
    /// Unix seconds.
    pub not_before: i64,
}

/// Answer to introspection (RFC 7662): `active` plus the claims when active.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntrospectResponse {
    /// Whether the token is currently valid and not revoked.
    pub active: bool,
    /// The claims, when active.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<crate::claims::AccessClaims>,
}

/// How often the revocation feed sends [`FeedLine::Ping`]; a follower that
/// has read nothing for three times this long should reconnect.
pub const FEED_PING_SECS: u64 = 5;

/// One line of `GET /v1/revocations` (`application/x-ndjson`): first every
/// revocation still in force, then [`FeedLine::Synced`], then each new
/// revocation as it happens, with a [`FeedLine::Ping`] every
/// [`FEED_PING_SECS`]. The stream ends when the follower falls too far
/// behind or MA stops: the follower then reconnects and starts over
/// (applying an entry twice is harmless).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FeedLine {
    /// A revocation (from the snapshot or new).
    Revocation(crate::revocation::RevocationEvent),
    /// Every revocation in force when the follower connected has been sent.
    Synced,
    /// Keep-alive.
    Ping,
}

/// The JSON error body every AuthRealm endpoint answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A stable code for programs and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `refresh_token_reused`.
    pub code: String,
    /// Human-readable explanation; never contains secrets or internals.
    pub message: String,
}

impl ErrorBody {
    /// Builds an error body.
    #[must_use]
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
            },
        }
    }
}

/// Stable error codes of MA's internal API.
pub mod codes {
    /// Missing or wrong service credential.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// No such endpoint (in this configuration).
    pub const NOT_FOUND: &str = "not_found";
    /// The path exists, the method does not.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// Body is not valid JSON of the expected shape.
    pub const BAD_REQUEST: &str = "bad_request";
    /// Body larger than the limit.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// Refresh token unknown, expired, or of a revoked session.
    pub const REFRESH_TOKEN_INVALID: &str = "refresh_token_invalid";
    /// A spent refresh token was presented again: its whole family is revoked.
    pub const REFRESH_TOKEN_REUSED: &str = "refresh_token_reused";
    /// The request body did not arrive within the server's body read timeout.
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
    /// The store (Redis) is unreachable.
    pub const UNAVAILABLE: &str = "unavailable";
    /// Anything else; details are in MA's log, not in the answer.
    pub const INTERNAL: &str = "internal";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_token() {
        let secret = "s3cr3t-refresh-token-value-0123456789abcdef";
        let shown = format!(
            "{:?} {:?} {:?}",
            RefreshRequest {
                refresh_token: secret.to_owned()
            },
            TokenRequest {
                token: secret.to_owned(),
                token_type_hint: Some("refresh_token".to_owned()),
            },
            TokenPair {
                access_token: secret.to_owned(),
                token_type: "Bearer".to_owned(),
                expires_in: 1,
                refresh_token: secret.to_owned(),
                refresh_expires_in: 1,
                session_id: "sid".to_owned(),
                sub: "sub".to_owned(),
            }
        );
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("refresh_token\""), "{shown}");
    }
}
