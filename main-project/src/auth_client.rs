//! OP's client for the auth-service (MA) over HTTP: mint, refresh, revoke,
//! revoke-all, introspect (with the service credential) and the public JWKS.

use std::time::Duration;

use authrealm_tokens::api::{
    self, ErrorBody, IntrospectResponse, MintRequest, RefreshRequest, RevokeAllRequest,
    RevokeAllResponse, TokenPair, TokenRequest,
};
use authrealm_tokens::{JwkSet, ServiceCredential};
use axum::http::StatusCode;

use crate::error::{ApiError, codes};
use crate::metrics::Metrics;

/// Why a call to MA did not give the expected answer.
#[derive(Debug, Clone)]
pub enum MaError {
    /// MA could not be reached, timed out, or answered 5xx.
    Unavailable(String),
    /// MA refused the request with a 4xx and an error body.
    Rejected {
        /// HTTP status MA answered.
        status: u16,
        /// MA's stable error code.
        code: String,
    },
    /// MA answered something that is not the documented shape.
    Protocol(String),
}

impl MaError {
    /// The answer OP gives its own client for this failure.
    #[must_use]
    pub fn api_error(&self) -> ApiError {
        match self {
            Self::Unavailable(why) => {
                tracing::warn!(reason = %why, "auth-service unavailable");
                ApiError::unavailable(
                    codes::AUTH_SERVICE_UNAVAILABLE,
                    "the auth-service is unavailable; try again shortly",
                    2,
                )
            }
            Self::Rejected { code, .. } if code == api::codes::REFRESH_TOKEN_INVALID => {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    codes::REFRESH_TOKEN_INVALID,
                    "the refresh token is unknown, expired or revoked",
                )
            }
            Self::Rejected { code, .. } if code == api::codes::REFRESH_TOKEN_REUSED => {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    codes::REFRESH_TOKEN_REUSED,
                    "the refresh token was already used; the session has been ended",
                )
            }
            Self::Rejected { code, .. } if code == api::codes::UNAVAILABLE => {
                ApiError::unavailable(
                    codes::AUTH_SERVICE_UNAVAILABLE,
                    "the auth-service is unavailable; try again shortly",
                    2,
                )
            }
            Self::Rejected { status, code } => ApiError::internal(&format!(
                "auth-service refused the request: {status} {code}"
            )),
            Self::Protocol(why) => ApiError::internal(&format!("auth-service protocol: {why}")),
        }
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
    ) -> Result<Self, crate::error::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(crate::error::Error::AuthServiceHttp)?;
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
    ) -> Result<Resp, MaError> {
        let result = self.call_inner(path, body).await;
        let label = match &result {
            Ok(_) => "ok",
            Err(MaError::Unavailable(_)) => "unavailable",
            Err(MaError::Rejected { .. }) => "rejected",
            Err(MaError::Protocol(_)) => "protocol_error",
        };
        self.metrics
            .ma_requests
            .with_label_values(&[endpoint, label])
            .inc();
        result
    }

    async fn call_inner<Req: serde::Serialize + Sync, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &Req,
    ) -> Result<Resp, MaError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.credential.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| MaError::Unavailable(without_url(&e)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| MaError::Unavailable(without_url(&e)))?;
        if status.is_server_error() {
            return Err(MaError::Unavailable(format!("status {status}")));
        }
        if !status.is_success() {
            let code = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.error.code)
                .unwrap_or_else(|_| "unknown".to_owned());
            if status == StatusCode::UNAUTHORIZED && code == api::codes::UNAUTHORIZED {
                tracing::error!("the auth-service refused OP's service credential");
            }
            return Err(MaError::Rejected {
                status: status.as_u16(),
                code,
            });
        }
        if bytes.is_empty() {
            // Endpoints answering 204/empty bodies decode from `null`.
            return serde_json::from_slice(b"null").map_err(|e| MaError::Protocol(e.to_string()));
        }
        serde_json::from_slice(&bytes).map_err(|e| MaError::Protocol(e.to_string()))
    }

    /// Mints a token pair for `sub` with extra claims.
    ///
    /// # Errors
    /// [`MaError`].
    pub async fn mint(
        &self,
        sub: &str,
        claims: serde_json::Map<String, serde_json::Value>,
    ) -> Result<TokenPair, MaError> {
        let req = MintRequest {
            sub: sub.to_owned(),
            claims,
        };
        self.call("mint", api::PATH_MINT, &req).await
    }

    /// Rotates a refresh token.
    ///
    /// # Errors
    /// [`MaError`]; `refresh_token_invalid` / `refresh_token_reused` as `Rejected`.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, MaError> {
        let req = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        self.call("refresh", api::PATH_REFRESH, &req).await
    }

    /// Revokes an access or refresh token (RFC 7009).
    ///
    /// # Errors
    /// [`MaError`].
    pub async fn revoke(&self, token: &str, hint: &str) -> Result<(), MaError> {
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
    /// [`MaError`].
    pub async fn revoke_session(&self, sid: &str) -> Result<(), MaError> {
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
    /// [`MaError`].
    pub async fn revoke_all(&self, sub: &str) -> Result<RevokeAllResponse, MaError> {
        let req = RevokeAllRequest {
            sub: sub.to_owned(),
        };
        self.call("revoke_all", api::PATH_REVOKE_ALL, &req).await
    }

    /// Asks MA whether an access token is active.
    ///
    /// # Errors
    /// [`MaError`].
    pub async fn introspect(&self, token: &str) -> Result<IntrospectResponse, MaError> {
        let req = TokenRequest {
            token: token.to_owned(),
            token_type_hint: Some("access_token".to_owned()),
        };
        self.call("introspect", api::PATH_INTROSPECT, &req).await
    }

    /// Fetches the public key set.
    ///
    /// # Errors
    /// [`MaError`].
    pub async fn jwks(&self) -> Result<JwkSet, MaError> {
        let result = async {
            let resp = self
                .http
                .get(&self.jwks_url)
                .send()
                .await
                .map_err(|e| MaError::Unavailable(without_url(&e)))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(MaError::Unavailable(format!("JWKS status {status}")));
            }
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| MaError::Unavailable(without_url(&e)))?;
            serde_json::from_slice::<JwkSet>(&bytes).map_err(|e| MaError::Protocol(e.to_string()))
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
