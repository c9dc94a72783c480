//! Authorization requests, for OP: validating one before OP shows its
//! login page (RFC 6749 §4.1.1, §4.1.2.1; PKCE S256 and `state` required),
//! issuing the code once the user has authenticated (re-validated; only its
//! hash is stored, for [`CODE_TTL_SECS`], one use), and checking a
//! post-logout redirect URI.
//!
//! The order of the checks decides where an error goes: an unknown client
//! and a missing or unregistered redirect URI are never redirected (OP
//! shows a page: the redirect URI cannot be trusted); everything after is
//! sent back to the client's redirect URI.

use authrealm_tokens::clients::{ClientEntry, GrantType};
use authrealm_tokens::oauth::{
    AuthorizeRequest, AuthorizeResponse, CODE_TTL_SECS, CodeRequest, CodeResponse, ErrorCode,
    LogoutCheckRequest, LogoutCheckResponse, MAX_STATE_LEN, is_s256_challenge,
};

use crate::clients::Registry;
use crate::error::{Error, Result};
use crate::metrics::OAuthEndpoint;
use crate::oauth::{granted_scopes, scope_string};
use crate::opaque::{hash_token, random};
use crate::service::{AuthService, check_sub};
use crate::store::CodeRecord;

/// Claims an ID token sets itself; the user claims OP passes may not use them.
const ID_TOKEN_CLAIMS: [&str; 11] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "auth_time",
    "nonce",
    "sid",
    "azp",
    "jti",
];

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct ValidRequest<'r> {
    /// The client.
    pub client: &'r ClientEntry,
    /// The registered redirect URI it named.
    pub redirect_uri: String,
    /// The scopes granted.
    pub scope: Vec<String>,
    /// The `nonce`, when sent.
    pub nonce: Option<String>,
    /// The S256 challenge.
    pub code_challenge: String,
}

/// A `state` or `nonce`: at most [`MAX_STATE_LEN`] bytes, no control characters.
fn echoable(value: &str) -> bool {
    value.len() <= MAX_STATE_LEN && !value.chars().any(char::is_control)
}

/// Validates an authorization request against the registry.
///
/// # Errors
/// [`Error::OAuth`] with the RFC 6749 code and whether OP may redirect it.
pub fn validate<'r>(registry: &'r Registry, req: &AuthorizeRequest) -> Result<ValidRequest<'r>> {
    let client_id = req
        .client_id
        .as_deref()
        .ok_or_else(|| Error::oauth_page(ErrorCode::InvalidRequest, "`client_id` is required"))?;
    let client = registry.get(client_id).ok_or_else(|| {
        Error::oauth_page(ErrorCode::InvalidClient, "no such client is registered")
    })?;
    let redirect_uri = req.redirect_uri.as_deref().ok_or_else(|| {
        Error::oauth_page(ErrorCode::InvalidRequest, "`redirect_uri` is required")
    })?;
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(Error::oauth_page(
            ErrorCode::InvalidRequest,
            "`redirect_uri` is not one the client registered (exact match)",
        ));
    }
    match req.response_type.as_deref() {
        None => {
            return Err(Error::oauth(
                ErrorCode::InvalidRequest,
                "`response_type` is required",
            ));
        }
        Some("code") => {}
        Some(_) => {
            return Err(Error::oauth(
                ErrorCode::UnsupportedResponseType,
                "only `response_type=code` is supported",
            ));
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(Error::oauth(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow",
        ));
    }
    match req.state.as_deref() {
        None => {
            return Err(Error::oauth(
                ErrorCode::InvalidRequest,
                "`state` is required",
            ));
        }
        Some(s) if !echoable(s) => {
            return Err(Error::oauth(
                ErrorCode::InvalidRequest,
                "`state` must be at most 512 bytes without control characters",
            ));
        }
        Some(_) => {}
    }
    if req.nonce.as_deref().is_some_and(|n| !echoable(n)) {
        return Err(Error::oauth(
            ErrorCode::InvalidRequest,
            "`nonce` must be at most 512 bytes without control characters",
        ));
    }
    let scope = granted_scopes(client, req.scope.as_deref())?;
    let code_challenge = req.code_challenge.as_deref().ok_or_else(|| {
        Error::oauth(
            ErrorCode::InvalidRequest,
            "PKCE is required: send `code_challenge` and `code_challenge_method=S256`",
        )
    })?;
    if req.code_challenge_method.as_deref() != Some("S256") {
        return Err(Error::oauth(
            ErrorCode::InvalidRequest,
            "`code_challenge_method` must be `S256`",
        ));
    }
    if !is_s256_challenge(code_challenge) {
        return Err(Error::oauth(
            ErrorCode::InvalidRequest,
            "`code_challenge` must be 43 base64url characters (an S256 challenge)",
        ));
    }
    Ok(ValidRequest {
        client,
        redirect_uri: redirect_uri.to_owned(),
        scope,
        nonce: req.nonce.clone(),
        code_challenge: code_challenge.to_owned(),
    })
}

impl AuthService {
    /// `POST /v1/oauth2/authorize`: validates the request for OP.
    ///
    /// # Errors
    /// [`Error::OAuth`] (see [`validate`]).
    pub fn check_authorize(&self, req: &AuthorizeRequest) -> Result<AuthorizeResponse> {
        let registry = self.clients.snapshot();
        let outcome = validate(&registry, req).map(|v| AuthorizeResponse {
            client_id: v.client.client_id.clone(),
            client_name: v
                .client
                .display_name
                .clone()
                .unwrap_or_else(|| v.client.client_id.clone()),
            redirect_uri: v.redirect_uri,
            scope: scope_string(&v.scope).unwrap_or_default(),
        });
        self.metrics.oauth_request(
            OAuthEndpoint::Authorize,
            outcome.as_ref().map(|_| ()).map_err(Error::oauth_code),
        );
        outcome
    }

    /// `POST /v1/oauth2/codes`: re-validates the request and issues a code
    /// for the user OP authenticated, with the session id its tokens will
    /// carry.
    ///
    /// # Errors
    /// [`Error::OAuth`] for the request, [`Error::BadRequest`] for the user
    /// fields, [`Error::Store`] when the code cannot be stored (then no code
    /// exists).
    pub async fn issue_code(&self, req: &CodeRequest) -> Result<CodeResponse> {
        let outcome = self.issue_code_inner(req).await;
        self.metrics.oauth_request(
            OAuthEndpoint::Codes,
            outcome.as_ref().map(|_| ()).map_err(Error::oauth_code),
        );
        if outcome.is_ok() {
            self.metrics.codes_issued.inc();
        }
        outcome
    }

    async fn issue_code_inner(&self, req: &CodeRequest) -> Result<CodeResponse> {
        let registry = self.clients.snapshot();
        let valid = validate(&registry, &req.request)?;
        check_sub(&req.sub)?;
        let now = self.clock.now();
        if req.auth_time <= 0 || req.auth_time > now.saturating_add(self.settings.clock_skew) {
            return Err(Error::BadRequest(
                "`auth_time` must be the Unix time the user authenticated (not in the future)"
                    .into(),
            ));
        }
        if let Some(name) = req
            .claims
            .keys()
            .find(|k| ID_TOKEN_CLAIMS.contains(&k.as_str()))
        {
            return Err(Error::BadRequest(format!(
                "claim `{name}` is reserved: the auth-service sets it itself"
            )));
        }
        let code = random(32)?;
        let sid = random(16)?;
        let record = CodeRecord {
            client_id: valid.client.client_id.clone(),
            redirect_uri: valid.redirect_uri,
            scope: valid.scope,
            code_challenge: valid.code_challenge,
            nonce: valid.nonce,
            sub: req.sub.clone(),
            auth_time: req.auth_time,
            claims: req.claims.clone(),
            sid: sid.clone(),
            iat: now,
            exp: now + CODE_TTL_SECS,
        };
        self.store.put_code(&hash_token(&code), &record).await?;
        Ok(CodeResponse { code, sid })
    }

    /// `POST /v1/oauth2/logout`: whether `post_logout_redirect_uri` is one
    /// the client registered (exact match; `false` for an unknown client).
    #[must_use]
    pub fn check_logout(&self, req: &LogoutCheckRequest) -> LogoutCheckResponse {
        let registry = self.clients.snapshot();
        let registered = registry.get(&req.client_id).is_some_and(|c| {
            c.post_logout_redirect_uris
                .contains(&req.post_logout_redirect_uri)
        });
        LogoutCheckResponse { registered }
    }
}
