//! Refresh-token rotation with reuse detection: the successor prepared
//! before the atomic store step, and what each outcome of that step answers.

use authrealm_tokens::api::TokenPair;
use authrealm_tokens::revocation::RevocationKind;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::metrics::RefreshResult;
use crate::opaque::{hash_token, is_refresh_shaped, random};
use crate::service::{AccessIds, AuthService, pair};
use crate::store::{RotateOutcome, Rotation, SessionInfo, Successor};

impl AuthService {
    /// Spends `token` and returns the successor pair; a repeat within the
    /// grace window returns the same successor; a spent token outside it
    /// revokes the whole session.
    ///
    /// # Errors
    /// [`Error::RefreshInvalid`], [`Error::RefreshReused`], or [`Error::Store`].
    pub async fn refresh(&self, token: &str) -> Result<TokenPair> {
        if !is_refresh_shaped(token) {
            self.metrics.refresh(RefreshResult::Invalid);
            return Err(Error::RefreshInvalid);
        }
        let now = self.clock.now();
        let s = &self.settings;
        let keys = self.keys.snapshot();
        let key = keys.active();
        let successor = Successor {
            refresh_token: random(32)?,
            jti: random(16)?,
            iat: now,
            exp: now + s.access_ttl,
            kid: key.kid().to_owned(),
            refresh_exp: now + s.refresh_ttl,
        };
        let successor_json = serde_json::to_string(&successor)
            .map_err(|e| Error::StoreProtocol(format!("successor encoding: {e}")))?;
        let old_hash = hash_token(token);
        let new_hash = hash_token(&successor.refresh_token);
        let outcome = self
            .store
            .rotate(&Rotation {
                old_hash: &old_hash,
                new_hash: &new_hash,
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
                self.successor_pair(&info, successor, now)
            }
            RotateOutcome::Repeat(info, json) => {
                let earlier: Successor = serde_json::from_str(&json)
                    .map_err(|e| Error::StoreProtocol(format!("stored successor: {e}")))?;
                self.metrics.refresh(RefreshResult::Repeat);
                self.successor_pair(&info, earlier, now)
            }
            RotateOutcome::Reused { sid } => {
                self.metrics.refresh(RefreshResult::Reused);
                self.metrics.reuse_detected.inc();
                self.metrics.revoked(RevocationKind::Session, 1);
                tracing::warn!(sid = %sid, "spent refresh token presented again: session revoked");
                Err(Error::RefreshReused)
            }
            RotateOutcome::Invalid => {
                self.metrics.refresh(RefreshResult::Invalid);
                Err(Error::RefreshInvalid)
            }
        }
    }

    /// Signs the access token of a successor (again, for a repeat: with the
    /// same key, claims and times, so EdDSA and RS256 give the same bytes).
    fn successor_pair(&self, info: &SessionInfo, s: Successor, now: i64) -> Result<TokenPair> {
        let extra: Map<String, Value> = serde_json::from_str(&info.claims_json)
            .map_err(|e| Error::StoreProtocol(format!("stored claims: {e}")))?;
        let keys = self.keys.snapshot();
        // A key removed since the first answer: the active key signs the same claims.
        let key = keys.by_kid(&s.kid).unwrap_or_else(|| keys.active());
        let ids = AccessIds {
            sub: &info.sub,
            sid: &info.sid,
            jti: &s.jti,
            iat: s.iat,
            exp: s.exp,
        };
        let access = self.sign_access(key, &ids, extra)?;
        Ok(pair(
            access,
            s.exp - now,
            s.refresh_token,
            s.refresh_exp - now,
            info.sid.clone(),
            info.sub.clone(),
        ))
    }
}
