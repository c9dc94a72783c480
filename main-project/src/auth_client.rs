//! OP's client for the auth-service (MA) over HTTP: mint, refresh, revoke,
//! revoke-all, introspect (with the service credential) and the public JWKS.
//! Failures come back as domain errors ([`Error::AuthServiceUnavailable`],
//! [`Error::RefreshInvalid`], ...); `error.rs` decides what the client sees.

use std::time::Duration;

use authrealm_tokens::api::{
    self, ErrorBody, IntrospectResponse, MintRequest, RefreshRequest, RevokeAllRequest,
    RevokeAllResponse, TokenPair, TokenRequest,
};
use authrealm_tokens::oauth::{
    self, AuthorizeRejection, AuthorizeRequest, AuthorizeResponse, CodeRequest, CodeResponse,
    LogoutCheckRequest, LogoutCheckResponse,
};
use authrealm_tokens::{JwkSet, ServiceCredential};
use axum::http::StatusCode;

use crate::error::Error;
use crate::metrics::Metrics;

/// What MA's refusal means for OP: the two refresh outcomes a user sees,
/// MA's own outage, or a refusal OP has no answer for (a 500, logged).
fn rejection(status: StatusCode, code: String) -> Error {
    match code.as_str() {
        api::codes::REFRESH_TOKEN_INVALID => Error::RefreshInvalid,
        api::codes::REFRESH_TOKEN_REUSED => Error::RefreshReused,
        api::codes::UNAVAILABLE => Error::AuthServiceUnavailable(format!("status {status}")),
        _ => Error::AuthServiceRejected {
            status: status.as_u16(),
            code,
        },
    }
}

/// HTTP client of MA.
#[derive(Clone)]
pub struct AuthClient {
    http: reqwest::Client,
    base: String,
    jwks_url: String,
    credential: ServiceCredential,
    metrics: Metrics,
}

impl std::fmt::Debug for AuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthClient")
            .field("base", &self.base)
            .field("jwks_url", &self.jwks_url)
            .finish_non_exhaustive()
    }
}

impl AuthClient {
    /// A client of MA at `base` (no trailing slash needed).
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS setup).
    pub fn new(
        base: &str,
        jwks_url: String,
        credential: ServiceCredential,
        timeout: Duration,
        metrics: Metrics,
    ) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(Error::AuthServiceClient)?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            jwks_url,
            credential,
            metrics,
        })
    }

    async fn call<Req: serde::Serialize + Sync, Resp: serde::de::DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
        body: &Req,
    ) -> Result<Resp, Error> {
        let result = self.call_inner(path, body).await;
        let label = match &result {
            Ok(_) => "ok",
            Err(Error::AuthServiceUnavailable(_)) => "unavailable",
            Err(Error::AuthServiceProtocol(_)) => "protocol_error",
            Err(_) => "rejected",
        };
        self.metrics
            .ma_requests
            .with_label_values(&[endpoint, label])
            .inc();
        result
    }

    /// POSTs `body` to MA's `path` with the service credential: the status
    /// and body of any answer below 500; MA unreachable or failing is
    /// [`Error::AuthServiceUnavailable`] (never naming the URL).
    async fn post<Req: serde::Serialize + Sync>(
        &self,
        path: &str,
        body: &Req,
    ) -> Result<(StatusCode, axum::body::Bytes), Error> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.credential.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| Error::AuthServiceUnavailable(without_url(&e)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::AuthServiceUnavailable(without_url(&e)))?;
        if status.is_server_error() {
            return Err(Error::AuthServiceUnavailable(format!("status {status}")));
        }
        Ok((status, bytes))
    }

    async fn call_inner<Req: serde::Serialize + Sync, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &Req,
    ) -> Result<Resp, Error> {
        let (status, bytes) = self.post(path, body).await?;
        if !status.is_success() {
            let code = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.error.code)
                .unwrap_or_else(|_| "unknown".to_owned());
            if status == StatusCode::UNAUTHORIZED && code == api::codes::UNAUTHORIZED {
                tracing::error!("the auth-service refused OP's service credential");
            }
            return Err(rejection(status, code));
        }
        if bytes.is_empty() {
            // Endpoints answering 204/empty bodies decode from `null`.
            return serde_json::from_slice(b"null")
                .map_err(|e| Error::AuthServiceProtocol(e.to_string()));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::AuthServiceProtocol(e.to_string()))
    }

    /// Calls one of MA's code-flow endpoints (`/v1/oauth2/...`): the answer,
    /// or MA's [`AuthorizeRejection`] of the request (a 400 that says
    /// whether the error may go back to the client's redirect URI).
    async fn call_code_flow<Req: serde::Serialize + Sync, Resp: serde::de::DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
        body: &Req,
    ) -> Result<Result<Resp, AuthorizeRejection>, Error> {
        let result = async {
            let (status, bytes) = self.post(path, body).await?;
            if status == StatusCode::BAD_REQUEST
                && let Ok(r) = serde_json::from_slice::<AuthorizeRejection>(&bytes)
            {
                return Ok(Err(r));
            }
            if !status.is_success() {
                let code = serde_json::from_slice::<ErrorBody>(&bytes)
                    .map(|b| b.error.code)
                    .unwrap_or_else(|_| "unknown".to_owned());
                return Err(rejection(status, code));
            }
            serde_json::from_slice(&bytes)
                .map(Ok)
                .map_err(|e| Error::AuthServiceProtocol(e.to_string()))
        }
        .await;
        let label = match &result {
            Ok(Ok(_)) => "ok",
            Ok(Err(_)) | Err(Error::AuthServiceRejected { .. }) => "rejected",
            Err(Error::AuthServiceUnavailable(_)) => "unavailable",
            Err(_) => "protocol_error",
        };
        self.metrics
            .ma_requests
            .with_label_values(&[endpoint, label])
            .inc();
        result
    }

    /// Asks MA to validate an authorization request.
    ///
    /// # Errors
    /// [`Error::AuthServiceUnavailable`] and the other MA failures; MA's
    /// refusal of the request is the inner `Err`.
    pub async fn check_authorize(
        &self,
        req: &AuthorizeRequest,
    ) -> Result<Result<AuthorizeResponse, AuthorizeRejection>, Error> {
        self.call_code_flow("oauth_authorize", oauth::PATH_INTERNAL_AUTHORIZE, req)
            .await
    }

    /// Asks MA for a code for an authenticated user.
    ///
    /// # Errors
    /// As [`AuthClient::check_authorize`].
    pub async fn issue_code(
        &self,
        req: &CodeRequest,
    ) -> Result<Result<CodeResponse, AuthorizeRejection>, Error> {
        self.call_code_flow("oauth_codes", oauth::PATH_INTERNAL_CODES, req)
            .await
    }

    /// Asks MA whether a post-logout redirect URI is registered for a client.
    ///
    /// # Errors
    /// [`Error::AuthServiceUnavailable`] and the other MA failures.
    pub async fn check_logout(&self, req: &LogoutCheckRequest) -> Result<bool, Error> {
        let r: LogoutCheckResponse = self
            .call("oauth_logout", oauth::PATH_INTERNAL_LOGOUT, req)
            .await?;
        Ok(r.registered)
    }

    /// Opens MA's revocation feed (`GET /v1/revocations`, served when MA
    /// keeps its store in memory). The body streams until MA ends it; the
    /// follower, not a request timeout, decides when it has gone silent.
    ///
    /// # Errors
    /// [`Error::AuthServiceUnavailable`] when MA cannot be reached or does
    /// not serve the feed (it has Redis, or is not ready).
    pub async fn revocation_feed(&self) -> Result<reqwest::Response, Error> {
        const FOREVER: Duration = Duration::from_secs(10 * 365 * 86_400);
        let resp = self
            .http
            .get(format!("{}{}", self.base, api::PATH_REVOCATION_FEED))
            .bearer_auth(self.credential.expose())
            .timeout(FOREVER)
            .send()
            .await
            .map_err(|e| Error::AuthServiceUnavailable(without_url(&e)))?;
        if !resp.status().is_success() {
            return Err(Error::AuthServiceUnavailable(format!(
                "revocation feed answered {}",
                resp.status()
            )));
        }
        Ok(resp)
    }

    /// Mints a token pair for `sub` with extra claims.
    ///
    /// # Errors
    /// [`Error::AuthServiceUnavailable`] and the other MA failures.
    pub async fn mint(
        &self,
        sub: &str,
        claims: serde_json::Map<String, serde_json::Value>,
    ) -> Result<TokenPair, Error> {
        let req = MintRequest {
            sub: sub.to_owned(),
            claims,
        };
        self.call("mint", api::PATH_MINT, &req).await
    }

    /// Rotates a refresh token.
    ///
    /// # Errors
    /// [`Error::RefreshInvalid`], [`Error::RefreshReused`], or MA unavailable.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Error> {
        let req = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        self.call("refresh", api::PATH_REFRESH, &req).await
    }

    /// Revokes an access or refresh token (RFC 7009).
    ///
    /// # Errors
    /// [`Error::AuthServiceUnavailable`] and the other MA failures.
    pub async fn revoke(&self, token: &str, hint: &str) -> Result<(), Error> {
        let req = TokenRequest {
            token: token.to_owned(),
            token_type_hint: Some(hint.to_owned()),
        };
        let _: serde_json::Value = self.call("revoke", api::PATH_REVOKE, &req).await?;
        Ok(())
    }

    /// Ends one session: its refresh family and every access token with its `sid`.
    ///
    /// # Errors
    /// [`Error::AuthServiceUnavailable`] and the other MA failures.
    pub async fn revoke_session(&self, sid: &str) -> Result<(), Error> {
        let req = api::RevokeSessionRequest {
            sid: sid.to_owned(),
        };
        let _: serde_json::Value = self
            .call("revoke_session", api::PATH_REVOKE_SESSION, &req)
            .await?;
        Ok(())
    }

    /// Ends every session of `sub`.
    ///
    /// # Errors
    /// [`Error::AuthServiceUnavailable`] and the other MA failures.
    pub async fn revoke_all(&self, sub: &str) -> Result<RevokeAllResponse, Error> {
        let req = RevokeAllRequest {
            sub: sub.to_owned(),
        };
        self.call("revoke_all", api::PATH_REVOKE_ALL, &req).await
    }

    /// Asks MA whether an access token is active.
    ///
    /// # Errors
    /// [`Error::AuthServiceUnavailable`] and the other MA failures.
    pub async fn introspect(&self, token: &str) -> Result<IntrospectResponse, Error> {
        let req = TokenRequest {
            token: token.to_owned(),
            token_type_hint: Some("access_token".to_owned()),
        };
        self.call("introspect", api::PATH_INTROSPECT, &req).await
    }

    /// Fetches the public key set.
    ///
    /// # Errors
    /// [`Error::AuthServiceUnavailable`] and the other MA failures.
    pub async fn jwks(&self) -> Result<JwkSet, Error> {
        let result = async {
            let resp = self
                .http
                .get(&self.jwks_url)
                .send()
                .await
                .map_err(|e| Error::AuthServiceUnavailable(without_url(&e)))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(Error::AuthServiceUnavailable(format!(
                    "JWKS status {status}"
                )));
            }
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| Error::AuthServiceUnavailable(without_url(&e)))?;
            serde_json::from_slice::<JwkSet>(&bytes)
                .map_err(|e| Error::AuthServiceProtocol(e.to_string()))
        }
        .await;
        let label = if result.is_ok() { "ok" } else { "error" };
        self.metrics
            .ma_requests
            .with_label_values(&["jwks", label])
            .inc();
        result
    }
}

fn without_url(e: &reqwest::Error) -> String {
    // The URL has no secrets, but the error chain is enough to diagnose.
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
