//! OAuth 2.0 as MA and OP share it: the standard endpoints' paths, the
//! internal code-flow API OP calls on MA (validate an authorization
//! request, issue a code, check a post-logout redirect URI), the RFC 6749
//! error codes, and the rules for scopes and PKCE (RFC 7636, S256 only).

use serde::{Deserialize, Serialize};

use crate::api::ErrorDetail;

/// MA's token endpoint (public port, RFC 6749 §3.2).
pub const PATH_TOKEN: &str = "/oauth2/token";
/// MA's revocation endpoint (public port, RFC 7009).
pub const PATH_REVOKE: &str = "/oauth2/revoke";
/// MA's introspection endpoint (public port, RFC 7662).
pub const PATH_INTROSPECT: &str = "/oauth2/introspect";
/// OP's authorization endpoint (OP's public URL).
pub const PATH_AUTHORIZE: &str = "/oauth2/authorize";
/// OP's UserInfo endpoint (OP's public URL).
pub const PATH_USERINFO: &str = "/oauth2/userinfo";
/// OP's RP-initiated logout endpoint (`end_session_endpoint`).
pub const PATH_END_SESSION: &str = "/oauth2/logout";

/// Internal: OP asks MA to validate an authorization request.
pub const PATH_INTERNAL_AUTHORIZE: &str = "/v1/oauth2/authorize";
/// Internal: OP asks MA for a code once the user has authenticated.
pub const PATH_INTERNAL_CODES: &str = "/v1/oauth2/codes";
/// Internal: OP asks MA whether a post-logout redirect URI is registered.
pub const PATH_INTERNAL_LOGOUT: &str = "/v1/oauth2/logout";

/// Life of an authorization code, seconds (one use).
pub const CODE_TTL_SECS: i64 = 60;
/// Longest `state` or `nonce` accepted.
pub const MAX_STATE_LEN: usize = 512;

/// The error codes of RFC 6749 (§4.1.2.1, §5.2), RFC 7009 and OpenID
/// Connect that AuthRealm answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A parameter is missing, repeated, malformed or not allowed.
    InvalidRequest,
    /// Client authentication failed (unknown client, wrong or missing
    /// secret, a public client presenting one).
    InvalidClient,
    /// The code or refresh token is invalid, expired, spent, bound to
    /// another client or redirect URI, or the PKCE verifier is wrong.
    InvalidGrant,
    /// The client may not use this grant or response type.
    UnauthorizedClient,
    /// The grant type is not one this server knows.
    UnsupportedGrantType,
    /// The response type is not `code`.
    UnsupportedResponseType,
    /// A requested scope is not allowed for the client.
    InvalidScope,
    /// The server cannot answer now; retry later.
    TemporarilyUnavailable,
    /// Something failed inside the server.
    ServerError,
    /// The end user must log in (`prompt=none` without a session; OP).
    LoginRequired,
}

impl ErrorCode {
    /// The code as sent on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
            Self::LoginRequired => "login_required",
        }
    }
}

/// An RFC 6749 §5.2 error body, as MA's public OAuth endpoints answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthErrorBody {
    /// The code.
    pub error: ErrorCode,
    /// A sentence for the developer; never a secret.
    pub error_description: String,
}

/// The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636
/// §4.3, OpenID Connect Core §3.1.2.1) that MA validates, as OP received
/// them (absent stays absent, so MA can name what is missing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// Must be `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_type: Option<String>,
    /// The client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Must equal one of the client's registered redirect URIs exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Space-separated scopes, each allowed for the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Required: the client's CSRF protection, echoed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Put in the ID token as `nonce`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Required: base64url SHA-256 of the code verifier (43 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    /// Required: `S256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_method: Option<String>,
}

/// `200` answer to [`PATH_INTERNAL_AUTHORIZE`]: what the login page shows
/// and where the browser goes afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeResponse {
    /// The client.
    pub client_id: String,
    /// Its display name (its id when it has none).
    pub client_name: String,
    /// The validated redirect URI.
    pub redirect_uri: String,
    /// The scopes that will be granted, space-separated (may be empty).
    pub scope: String,
}

/// `400` answer to [`PATH_INTERNAL_AUTHORIZE`] and [`PATH_INTERNAL_CODES`]:
/// the OAuth error code (in `error.code`) and whether OP may send the
/// browser back to the redirect URI with it. `redirectable` is false for an
/// unknown client and a missing or unregistered redirect URI: OP then shows
/// an error page and never redirects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRejection {
    /// `code` is an [`ErrorCode`] string, `message` the description.
    pub error: ErrorDetail,
    /// Whether the error goes back to the client's redirect URI.
    pub redirectable: bool,
}

/// [`PATH_INTERNAL_CODES`]: the user `sub` authenticated at `auth_time`
/// for `request`; `claims` are the user's claims (`email`, `name`, ...)
/// that ID tokens carry for the scopes granted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The authorization request, as sent to [`PATH_INTERNAL_AUTHORIZE`].
    pub request: AuthorizeRequest,
    /// The user id.
    pub sub: String,
    /// When the user authenticated (Unix seconds).
    pub auth_time: i64,
    /// The user's claims, by OpenID Connect name.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// Answer to [`PATH_INTERNAL_CODES`]. `Debug` never shows the code.
#[derive(Clone, Serialize, Deserialize)]
pub struct CodeResponse {
    /// The authorization code for the redirect (one use, [`CODE_TTL_SECS`]).
    pub code: String,
    /// The session the grant's tokens will carry: OP records it under the
    /// browser session and revokes it at logout.
    pub sid: String,
}

impl std::fmt::Debug for CodeResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeResponse")
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

/// [`PATH_INTERNAL_LOGOUT`]: may the browser be sent to this URI after
/// logging out of this client?
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutCheckRequest {
    /// The client (the `aud` of the `id_token_hint`, or `client_id`).
    pub client_id: String,
    /// The `post_logout_redirect_uri` of the logout request.
    pub post_logout_redirect_uri: String,
}

/// Answer to [`PATH_INTERNAL_LOGOUT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutCheckResponse {
    /// Whether the URI is one of the client's registered post-logout
    /// redirect URIs (exact match). `false` for an unknown client.
    pub registered: bool,
}

/// The answer of the token endpoint (RFC 6749 §5.1, OpenID Connect Core
/// §3.1.3.3). `Debug` never shows a token.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token (an RFC 9068 JWT).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Access token lifetime, seconds.
    pub expires_in: u64,
    /// The scopes granted, space-separated (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// A refresh token, when the client may use the `refresh_token` grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// An ID token, when `openid` was granted in the code flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("id_token", &self.id_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Splits a `scope` parameter into its tokens (RFC 6749 §3.3: separated by
/// single spaces, each printable ASCII without `"` and `\`), each once, in
/// order. `None` when the value breaks the syntax.
#[must_use]
pub fn parse_scope(value: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    if value.is_empty() {
        return Some(out);
    }
    for token in value.split(' ') {
        if !crate::clients::is_scope_token(token) {
            return None;
        }
        if !out.iter().any(|t| t == token) {
            out.push(token.to_owned());
        }
    }
    Some(out)
}

/// Whether `s` is a PKCE code verifier (RFC 7636 §4.1: 43 to 128 of
/// `A-Z a-z 0-9 - . _ ~`).
#[must_use]
pub fn is_code_verifier(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Whether `s` can be an S256 code challenge: base64url of a SHA-256 (43
/// characters).
#[must_use]
pub fn is_s256_challenge(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The S256 challenge of a verifier: base64url(SHA-256(ASCII(verifier))).
#[must_use]
pub fn s256_challenge(verifier: &str) -> String {
    crate::digest::sha256_b64url(verifier.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_by_the_rfc() {
        assert_eq!(
            parse_scope("openid email openid"),
            Some(vec!["openid".to_owned(), "email".to_owned()])
        );
        assert_eq!(parse_scope(""), Some(vec![]));
        for bad in ["openid  email", " openid", "openid ", "a\"b", "a\\b", "é"] {
            assert_eq!(parse_scope(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn pkce_s256_matches_the_rfc_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(is_code_verifier(verifier));
        let challenge = s256_challenge(verifier);
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(is_s256_challenge(&challenge));
        assert!(!is_code_verifier(&verifier[1..]));
        assert!(!is_code_verifier(&format!("{verifier}!")));
        assert!(!is_s256_challenge("plain-challenge"));
    }

    #[test]
    fn debug_output_never_shows_a_code_or_token() {
        let secret = "s3cr3t-code-or-token-0123456789abcdefghijkl";
        let shown = format!(
            "{:?} {:?}",
            CodeResponse {
                code: secret.into(),
                sid: "sid".into()
            },
            TokenResponse {
                access_token: secret.into(),
                token_type: "Bearer".into(),
                expires_in: 1,
                scope: None,
                refresh_token: Some(secret.into()),
                id_token: Some(secret.into()),
            }
        );
        assert!(!shown.contains(secret), "{shown}");
    }
}
