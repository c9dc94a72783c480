//! Request extractors: [`Authenticated`] (the JWT check every protected
//! route runs, [`verify_request`]: bearer header, signature and claims, then
//! revocation or introspection), [`ApiJson`] (JSON bodies with OP's error codes) and
//! [`ClientIp`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use authrealm_tokens::AccessClaims;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::config::{RevocationPolicy, VerifyMode};
use crate::error::Error;
use crate::revocation::Status;
use crate::state::AppState;

/// The bearer token of a request, if the header has that shape.
///
/// # Errors
/// [`Error::AmbiguousAuthorization`] when the request carries more than one
/// `Authorization` header: which one a proxy or another server would pick is
/// anyone's guess, so none is.
pub fn bearer(parts: &Parts) -> Result<Option<&str>, Error> {
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(Error::AmbiguousAuthorization);
    }
    let Some(value) = first.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = token.trim();
    Ok((!token.is_empty()).then_some(token))
}

/// A request whose access token passed every check; the verified claims.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<AccessClaims>);

impl FromRequestParts<Arc<AppState>> for Authenticated {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        verify_request(parts, state).await.map(Self)
    }
}

/// The one token check of OP: the bearer header, the signature and claims
/// (through the verified-token cache), then the revocation view (or MA's
/// introspection in `introspect` mode), each outcome counted. The protected
/// API ([`Authenticated`]) and the forward-auth endpoint both run it.
///
/// # Errors
/// [`Error::AmbiguousAuthorization`], [`Error::MissingToken`],
/// [`Error::Token`], [`Error::TokenRevoked`], and the 503s
/// [`Error::KeysUnavailable`], [`Error::RevocationUnavailable`] and (in
/// `introspect` mode) [`Error::AuthServiceUnavailable`].
pub async fn verify_request(parts: &Parts, state: &AppState) -> Result<Arc<AccessClaims>, Error> {
    let m = &state.metrics;
    let token = bearer(parts).inspect_err(|_| m.verification("ambiguous"))?;
    let Some(token) = token else {
        m.verification("missing");
        return Err(Error::MissingToken);
    };
    let now = state.clock.now();
    let claims = match state.keys.verify(token, now).await {
        Ok(c) => c,
        Err(e) => {
            m.verification(match &e {
                Error::Token(v) => v.code(),
                _ => "no_keys",
            });
            return Err(e);
        }
    };
    let revoked = || {
        m.verification("revoked");
        Error::TokenRevoked
    };
    match (state.revocations.check(&claims), state.verify_mode) {
        (Status::Revoked, _) => return Err(revoked()),
        (Status::Valid, VerifyMode::Local) => {}
        (Status::Unknown, VerifyMode::Local) => match state.revocation_policy {
            RevocationPolicy::FailClosed => {
                m.verification("revocation_unavailable");
                return Err(Error::RevocationUnavailable);
            }
            RevocationPolicy::FailOpen => m.revocation_fail_open.inc(),
        },
        (_, VerifyMode::Introspect) => match state.ma.introspect(token).await {
            Ok(r) if r.active => {}
            Ok(_) => return Err(revoked()),
            Err(e) => {
                m.verification("introspection_unavailable");
                return Err(e);
            }
        },
    }
    m.verify_ok.inc();
    Ok(claims)
}

/// The client address: the peer, or the first `X-Forwarded-For` entry when
/// OP is configured to trust it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<Arc<AppState>> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if state.trust_forwarded_for
            && let Some(ip) = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                // The proxy in front of OP appends the address it saw: the
                // last entry of the last header line. Earlier ones (and
                // earlier lines) are whatever the client sent.
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        {
            return Ok(Self(Some(ip)));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Self(peer))
    }
}

/// A JSON body. Broken JSON or a wrong shape is 400 `bad_request`, a body
/// over the limit 413 `payload_too_large`; the content type is not checked.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Error::PayloadTooLarge
                } else {
                    Error::BadRequest("the request body could not be read".into())
                }
            })?;
        parse_json(&bytes).map(Self)
    }
}

/// Parses a JSON body with OP's error answers (messages never echo values).
///
/// # Errors
/// [`Error::BadRequest`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        let msg = match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                return Error::BadRequest("the request body is not valid JSON".into());
            }
            Category::Data => {
                let text = e.to_string();
                // "missing field `email`" / "unknown field `x`" name no user data.
                if text.starts_with("missing field") || text.starts_with("unknown field") {
                    let cut = text.find(" at line").unwrap_or(text.len());
                    format!(
                        "the request body is invalid: {}",
                        text.get(..cut).unwrap_or("")
                    )
                } else {
                    "the request body does not have the expected fields and types".to_owned()
                }
            }
        };
        Error::BadRequest(msg.into())
    })
}
