//! Refresh-token rotation with reuse detection: the successor prepared
//! before the atomic store step, and what each outcome of that step answers.
//! The same rotation serves OP (the internal API: sessions bound to no
//! client) and OAuth clients (the token endpoint: sessions bound to the
//! client, tokens shaped by it).

use authrealm_tokens::api::TokenPair;
use authrealm_tokens::revocation::RevocationKind;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::keys::JwtType;
use crate::metrics::RefreshResult;
use crate::opaque::{Presented, new_refresh, random};
use crate::service::{AccessIds, AuthService, pair};
use crate::store::{RotateOutcome, Rotation, SessionInfo, Successor};

/// Who refreshes, and how the successor's tokens look.
#[derive(Debug, Clone, Copy)]
pub struct Refresher<'a> {
    /// The OAuth client; empty for OP.
    pub client: &'a str,
    /// `aud` of the new access token.
    pub audience: &'a str,
    /// Access token life, seconds.
    pub access_ttl: i64,
    /// Refresh token life, seconds.
    pub refresh_ttl: i64,
    /// `typ` of the new access token.
    pub typ: JwtType,
    /// A narrower scope for the new access token (RFC 6749 §6).
    pub scope: Option<&'a str>,
}

impl AuthService {
    /// Spends `token` and returns the successor pair; a repeat within the
    /// grace window returns the same successor; a spent token outside it
    /// revokes the whole session. For OP: sessions bound to an OAuth
    /// client are refused as invalid.
    ///
    /// # Errors
    /// [`Error::RefreshInvalid`], [`Error::RefreshReused`], or [`Error::Store`].
    pub async fn refresh(&self, token: &str) -> Result<TokenPair> {
        let s = &self.settings;
        let op = Refresher {
            client: "",
            audience: &s.audience,
            access_ttl: s.access_ttl,
            refresh_ttl: s.refresh_ttl,
            typ: JwtType::Jwt,
            scope: None,
        };
        self.rotate_refresh(token, &op).await.map(|(pair, _)| pair)
    }

    /// [`AuthService::refresh`] for `who`: a token of a session bound to
    /// another client (or to none) changes nothing and is invalid. Also
    /// answers the `scope` claim of the new access token.
    ///
    /// # Errors
    /// As [`AuthService::refresh`].
    pub async fn rotate_refresh(
        &self,
        token: &str,
        who: &Refresher<'_>,
    ) -> Result<(TokenPair, Option<String>)> {
        let invalid = || {
            self.metrics.refresh(RefreshResult::Invalid);
            Error::RefreshInvalid
        };
        let Some(presented) = Presented::parse(token) else {
            return Err(invalid());
        };
        let sid = match &presented {
            Presented::Session { sid, .. } => (*sid).to_owned(),
            Presented::Legacy { hash } => match self.store.legacy_sid(hash).await? {
                Some(sid) => sid,
                None => return Err(invalid()),
            },
        };
        let now = self.clock.now();
        let s = &self.settings;
        let keys = self.keys.snapshot();
        let key = keys.active();
        let (refresh_token, new_digest) = new_refresh(&sid)?;
        let successor = Successor {
            refresh_token,
            jti: random(16)?,
            iat: now,
            exp: now + who.access_ttl,
            kid: key.kid().to_owned(),
            refresh_exp: now + who.refresh_ttl,
            scope: who.scope.map(str::to_owned),
        };
        let successor_json = serde_json::to_string(&successor)
            .map_err(|e| Error::StoreProtocol(format!("successor encoding: {e}")))?;
        let outcome = self
            .store
            .rotate(&Rotation {
                sid: &sid,
                presented: &presented,
                client: who.client,
                new_digest,
                successor_json: &successor_json,
                refresh_exp: successor.refresh_exp,
                now,
                grace_secs: s.grace,
                revoke_ttl: s.revoke_ttl,
            })
            .await?;
        match outcome {
            RotateOutcome::Rotated(info) => {
                self.metrics.refresh(RefreshResult::Rotated);
                self.successor_pair(&info, successor, who, now)
            }
            RotateOutcome::Repeat(info, json) => {
                let earlier: Successor = serde_json::from_str(&json)
                    .map_err(|e| Error::StoreProtocol(format!("stored successor: {e}")))?;
                self.metrics.refresh(RefreshResult::Repeat);
                self.successor_pair(&info, earlier, who, now)
            }
            RotateOutcome::Reused { sid } => {
                self.metrics.refresh(RefreshResult::Reused);
                self.metrics.reuse_detected.inc();
                self.metrics.revoked(RevocationKind::Session, 1);
                tracing::warn!(sid = %sid, "spent refresh token presented again: session revoked");
                Err(Error::RefreshReused)
            }
            RotateOutcome::Invalid | RotateOutcome::WrongClient => Err(invalid()),
        }
    }

    /// Signs the access token of a successor (again, for a repeat: with the
    /// same key, claims and times, so EdDSA and RS256 give the same bytes).
    /// A narrowed scope keeps only scopes the session was granted.
    fn successor_pair(
        &self,
        info: &SessionInfo,
        s: Successor,
        who: &Refresher<'_>,
        now: i64,
    ) -> Result<(TokenPair, Option<String>)> {
        let mut extra: Map<String, Value> = serde_json::from_str(&info.claims_json)
            .map_err(|e| Error::StoreProtocol(format!("stored claims: {e}")))?;
        if let Some(requested) = &s.scope {
            let granted = extra.get("scope").and_then(Value::as_str).unwrap_or("");
            let kept: Vec<&str> = requested
                .split(' ')
                .filter(|r| granted.split(' ').any(|g| g == *r))
                .collect();
            if kept.is_empty() {
                extra.remove("scope");
            } else {
                extra.insert("scope".to_owned(), Value::from(kept.join(" ")));
            }
        }
        let scope = extra
            .get("scope")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let keys = self.keys.snapshot();
        // A key removed since the first answer: the active key signs the same claims.
        let key = keys.by_kid(&s.kid).unwrap_or_else(|| keys.active());
        let ids = AccessIds {
            sub: &info.sub,
            aud: who.audience,
            sid: &info.sid,
            jti: &s.jti,
            iat: s.iat,
            exp: s.exp,
            typ: who.typ,
        };
        let access = self.sign_access(key, &ids, extra)?;
        let pair = pair(
            access,
            s.exp - now,
            s.refresh_token,
            s.refresh_exp - now,
            info.sid.clone(),
            info.sub.clone(),
        );
        Ok((pair, scope))
    }
}
