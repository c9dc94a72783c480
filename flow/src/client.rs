//! A small JSON-over-HTTP client for OP's public API that keeps the status,
//! the parsed body and the error code of every answer.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::FlowError;

/// One answer: status, JSON body (or `Null`), and the error code if any.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// Parsed JSON body; `Null` when empty or not JSON.
    pub body: Value,
}

impl Answer {
    /// `error.code` of an error body.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        self.body.pointer("/error/code").and_then(Value::as_str)
    }

    /// A string field of the body.
    #[must_use]
    pub fn str(&self, field: &str) -> Option<&str> {
        self.body.get(field).and_then(Value::as_str)
    }

    /// The `(access_token, refresh_token)` of a token-pair answer.
    ///
    /// # Errors
    /// [`FlowError::Step`] when the body has no pair.
    pub fn pair(&self, step: &'static str) -> Result<(String, String), FlowError> {
        match (self.str("access_token"), self.str("refresh_token")) {
            (Some(a), Some(r)) => Ok((a.to_owned(), r.to_owned())),
            _ => Err(FlowError::Step {
                step,
                detail: format!("no token pair in {}", self.body),
            }),
        }
    }

    /// Fails the step unless the status is `want`.
    ///
    /// # Errors
    /// [`FlowError::Step`] naming the step, the expected and the seen answer.
    pub fn expect(self, step: &'static str, want: StatusCode) -> Result<Self, FlowError> {
        if self.status == want {
            Ok(self)
        } else {
            Err(FlowError::Step {
                step,
                detail: format!("expected {want}, got {} {}", self.status, self.body),
            })
        }
    }

    /// Fails the step unless the status is `want` and the error code is `code`.
    ///
    /// # Errors
    /// [`FlowError::Step`] naming the step, the expected and the seen answer.
    pub fn expect_error(
        self,
        step: &'static str,
        want: StatusCode,
        code: &str,
    ) -> Result<Self, FlowError> {
        if self.status == want && self.code() == Some(code) {
            Ok(self)
        } else {
            Err(FlowError::Step {
                step,
                detail: format!(
                    "expected {want} with code {code:?}, got {} {}",
                    self.status, self.body
                ),
            })
        }
    }
}

/// HTTP client bound to one base URL.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`).
    #[must_use]
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The base URL.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request with an optional bearer token and JSON body.
    ///
    /// # Errors
    /// [`FlowError::Http`] when the request cannot be sent or read.
    pub async fn call(
        &self,
        step: &'static str,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer, FlowError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|source| FlowError::Http { step, source })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| FlowError::Http { step, source })?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    /// `GET path` with an optional bearer token.
    ///
    /// # Errors
    /// [`FlowError::Http`] when the request cannot be sent or read.
    pub async fn get(
        &self,
        step: &'static str,
        path: &str,
        bearer: Option<&str>,
    ) -> Result<Answer, FlowError> {
        self.call(step, Method::GET, path, bearer, None).await
    }

    /// `POST /api/v1/token/refresh` with `refresh_token`.
    ///
    /// # Errors
    /// [`FlowError::Http`] when the request cannot be sent or read.
    pub async fn refresh(
        &self,
        step: &'static str,
        refresh_token: &str,
    ) -> Result<Answer, FlowError> {
        let body = serde_json::json!({ "refresh_token": refresh_token });
        self.call(
            step,
            Method::POST,
            "/api/v1/token/refresh",
            None,
            Some(&body),
        )
        .await
    }

    /// `POST /api/v1/login`; the access and refresh token of a 200 answer.
    ///
    /// # Errors
    /// [`FlowError::Step`] for any other answer.
    pub async fn login(
        &self,
        step: &'static str,
        email: &str,
        password: &str,
    ) -> Result<(String, String), FlowError> {
        let body = serde_json::json!({ "email": email, "password": password });
        self.call(step, Method::POST, "/api/v1/login", None, Some(&body))
            .await?
            .expect(step, StatusCode::OK)?
            .pair(step)
    }

    /// GETs a text document (metrics).
    ///
    /// # Errors
    /// [`FlowError::Http`] when the request fails.
    pub async fn text(
        &self,
        step: &'static str,
        path: &str,
    ) -> Result<(StatusCode, String), FlowError> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|source| FlowError::Http { step, source })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|source| FlowError::Http { step, source })?;
        Ok((status, text))
    }
}
