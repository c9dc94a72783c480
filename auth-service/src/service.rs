//! The auth-service's operations, independent of HTTP: the shared state and
//! minting here; rotation in `refresh`, revocation and introspection in
//! `revocation` (both extend [`AuthService`]; neither is used from here).
//! Every operation signs before it records, and records before it answers,
//! so no token is ever handed out whose session the store does not know.

use std::sync::Arc;

use authrealm_tokens::AccessClaims;
use authrealm_tokens::api::{MintRequest, TokenPair};
use serde_json::{Map, Value};

use crate::clients::ClientRing;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::{JwtType, KeyRing, SigningKey};
use crate::metrics::Metrics;
use crate::opaque::{new_refresh, random};
use crate::store::{NewSession, Store};
use authrealm_tokens::Clock;

/// Claim names the service sets itself; a mint request may not override them.
pub const RESERVED_CLAIMS: [&str; 8] = ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid"];

/// Longest accepted user id, in bytes.
pub const MAX_SUB_BYTES: usize = 256;

/// Token lifetimes and identity, fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `iss` of every token.
    pub issuer: String,
    /// `aud` of every token.
    pub audience: String,
    /// Access token life, seconds.
    pub access_ttl: i64,
    /// Refresh token life, seconds.
    pub refresh_ttl: i64,
    /// Grace window for repeated refreshes, seconds.
    pub grace: i64,
    /// How long session and not-before revocations are kept, seconds.
    pub revoke_ttl: i64,
    /// Clock skew verifiers tolerate past `exp`, seconds: a revoked `jti`
    /// is kept this much longer than its token.
    pub clock_skew: i64,
    /// OP's public base URL (no trailing slash) when the code flow exists.
    pub op_public_url: Option<String>,
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Settings {
    /// The settings of `config`.
    #[must_use]
    pub fn from_config(config: &Config) -> Self {
        Self {
            issuer: config.issuer_trimmed().to_owned(),
            audience: config.audience.clone(),
            access_ttl: secs(config.access_ttl),
            refresh_ttl: secs(config.refresh_ttl),
            grace: secs(config.refresh_grace),
            revoke_ttl: i64::try_from(config.revocation_ttl_secs()).unwrap_or(i64::MAX),
            clock_skew: secs(config.clock_skew),
            op_public_url: config
                .op_public_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_owned()),
        }
    }
}

/// What identifies one access token besides its extra claims.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccessIds<'a> {
    pub sub: &'a str,
    pub aud: &'a str,
    pub sid: &'a str,
    pub jti: &'a str,
    pub iat: i64,
    pub exp: i64,
    /// `JWT` for OP's sessions, `at+jwt` for OAuth clients' (RFC 9068).
    pub typ: JwtType,
}

/// Keys, store, clock and metrics: everything an operation needs.
#[derive(Debug)]
pub struct AuthService {
    /// Current signing keys.
    pub keys: Arc<KeyRing>,
    /// Current OAuth client registry.
    pub clients: Arc<ClientRing>,
    /// Families and the revocation list.
    pub store: Store,
    /// Time source.
    pub clock: Clock,
    /// Metrics of this instance.
    pub metrics: Arc<Metrics>,
    /// Lifetimes and identity.
    pub settings: Settings,
}

/// Checks a user id: 1 to 256 bytes, no control characters.
pub(crate) fn check_sub(sub: &str) -> Result<()> {
    if sub.is_empty() || sub.len() > MAX_SUB_BYTES || sub.chars().any(char::is_control) {
        return Err(Error::BadRequest(format!(
            "`sub` must be 1 to {MAX_SUB_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

impl AuthService {
    /// Signs an access token for a session.
    pub(crate) fn sign_access(
        &self,
        key: &SigningKey,
        t: &AccessIds<'_>,
        extra: Map<String, Value>,
    ) -> Result<String> {
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: t.sub.to_owned(),
            aud: t.aud.to_owned(),
            exp: t.exp,
            iat: t.iat,
            nbf: t.iat,
            jti: t.jti.to_owned(),
            sid: t.sid.to_owned(),
            extra,
        };
        key.sign_typed(t.typ, &claims)
    }

    /// Mints an access token and a refresh token starting a new session.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for an invalid `sub` or a reserved claim;
    /// [`Error::Store`] when the session cannot be recorded (no token is returned then).
    pub async fn mint(&self, req: MintRequest) -> Result<TokenPair> {
        check_sub(&req.sub)?;
        if let Some(name) = req
            .claims
            .keys()
            .find(|k| RESERVED_CLAIMS.contains(&k.as_str()))
        {
            return Err(Error::BadRequest(format!(
                "claim `{name}` is reserved: the auth-service sets it itself"
            )));
        }
        let claims_json = serde_json::to_string(&req.claims)
            .map_err(|e| Error::BadRequest(format!("claims cannot be encoded: {e}")))?;
        let now = self.clock.now();
        let sid = random(16)?;
        let jti = random(16)?;
        let (refresh, refresh_digest) = new_refresh(&sid)?;
        let s = &self.settings;
        let (exp, refresh_exp) = (now + s.access_ttl, now + s.refresh_ttl);
        let keys = self.keys.snapshot();
        let ids = AccessIds {
            sub: &req.sub,
            aud: &s.audience,
            sid: &sid,
            jti: &jti,
            iat: now,
            exp,
            typ: JwtType::Jwt,
        };
        let access = self.sign_access(keys.active(), &ids, req.claims)?;
        self.store
            .create_session(&NewSession {
                sid: &sid,
                sub: &req.sub,
                claims_json: &claims_json,
                client: "",
                refresh_digest: Some(refresh_digest),
                refresh_exp,
                now,
            })
            .await?;
        self.metrics.minted.inc();
        Ok(pair(
            access,
            exp - now,
            refresh,
            refresh_exp - now,
            sid,
            req.sub,
        ))
    }
}

/// Assembles the answer to mint and refresh.
pub(crate) fn pair(
    access_token: String,
    expires_in: i64,
    refresh_token: String,
    refresh_expires_in: i64,
    session_id: String,
    sub: String,
) -> TokenPair {
    TokenPair {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: u64::try_from(expires_in).unwrap_or(0),
        refresh_token,
        refresh_expires_in: u64::try_from(refresh_expires_in).unwrap_or(0),
        session_id,
        sub,
    }
}
