//! Revocation (RFC 7009 semantics), "log out everywhere", and introspection
//! (RFC 7662 style). A token that is neither an access JWT nor a refresh
//! token shape is refused as malformed; a well-formed token this service does
//! not know (or that has expired) is answered like any other: nothing to do,
//! or `active: false`.

use authrealm_tokens::api::{IntrospectResponse, RevokeAllResponse};
use authrealm_tokens::revocation::RevocationKind;
use authrealm_tokens::verify::MAX_TOKEN_BYTES;

use crate::error::{Error, Result};
use crate::opaque::Presented;
use crate::service::{AuthService, check_sub};

/// Session ids MA hands out are 22 base64url characters; accept up to 128
/// printable ASCII characters so nothing odd reaches a Redis key.
fn check_sid(sid: &str) -> Result<()> {
    if sid.is_empty() || sid.len() > 128 || !sid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::BadRequest(
            "`sid` must be 1 to 128 printable ASCII characters".into(),
        ));
    }
    Ok(())
}

/// What a presented token looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenShape {
    /// Three base64url parts.
    Access,
    /// 43 base64url characters.
    Refresh,
}

/// Classifies a token by its shape only.
///
/// # Errors
/// [`Error::BadRequest`] for anything else (empty, too long, other characters).
pub fn classify(token: &str) -> Result<TokenShape> {
    let b64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if Presented::parse(token).is_some() {
        return Ok(TokenShape::Refresh);
    }
    let parts: Vec<&str> = token.split('.').collect();
    if token.len() <= MAX_TOKEN_BYTES
        && parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(b64url))
    {
        return Ok(TokenShape::Access);
    }
    Err(Error::BadRequest(
        "`token` is neither an access token (JWT) nor a refresh token".to_owned(),
    ))
}

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// An access token's `jti` was added to the list.
    AccessToken,
    /// A refresh token's whole session was revoked.
    Session,
    /// The token is unknown, not ours, or already dead: nothing to do.
    Nothing,
}

impl AuthService {
    /// The claims of an access token this service signed that is within its
    /// life, whatever its audience (OAuth clients' tokens may name their
    /// own); `None` for anything else.
    pub(crate) fn client_access_claims(
        &self,
        token: &str,
        now: i64,
    ) -> Option<authrealm_tokens::AccessClaims> {
        let keys = self.keys.snapshot();
        let verifier = keys.verifier();
        let claims: authrealm_tokens::AccessClaims = verifier.decode(token).ok()?;
        verifier.check_times(&claims, now).ok()?;
        (claims.iss == verifier.issuer()).then_some(claims)
    }

    /// Revokes an access token (its `jti`, until it expires) or a refresh
    /// token (its whole session).
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a malformed token, [`Error::Store`] when the
    /// revocation cannot be recorded.
    pub async fn revoke(&self, token: &str) -> Result<Revoked> {
        self.revoke_for(token, None).await
    }

    /// [`AuthService::revoke`] on behalf of an OAuth client (RFC 7009 §2.1):
    /// with `client` set, only that client's tokens are revoked; another
    /// client's, or OP's, are [`Revoked::Nothing`].
    ///
    /// # Errors
    /// As [`AuthService::revoke`].
    pub async fn revoke_for(&self, token: &str, client: Option<&str>) -> Result<Revoked> {
        let now = self.clock.now();
        match classify(token)? {
            TokenShape::Access => {
                let claims = match client {
                    None => self.keys.snapshot().verifier().verify(token, now).ok(),
                    Some(c) => self.client_access_claims(token, now).filter(|cl| {
                        cl.extra
                            .get("client_id")
                            .and_then(serde_json::Value::as_str)
                            == Some(c)
                    }),
                };
                let Some(claims) = claims else {
                    return Ok(Revoked::Nothing);
                };
                // Kept past `exp` by the skew verifiers allow, or the token
                // would be accepted again in that last stretch.
                let keep_until = claims.exp.saturating_add(self.settings.clock_skew);
                self.store
                    .revoke_jti(
                        &claims.jti,
                        claims.exp,
                        keep_until,
                        now,
                        self.settings.revoke_ttl,
                    )
                    .await?;
                self.metrics.revoked(RevocationKind::Jti, 1);
                Ok(Revoked::AccessToken)
            }
            TokenShape::Refresh => {
                let ttl = self.settings.revoke_ttl;
                let Some(presented) = Presented::parse(token) else {
                    return Ok(Revoked::Nothing);
                };
                match self
                    .store
                    .revoke_refresh(&presented, client, now, ttl)
                    .await?
                {
                    Some(_) => {
                        self.metrics.revoked(RevocationKind::Session, 1);
                        Ok(Revoked::Session)
                    }
                    None => Ok(Revoked::Nothing),
                }
            }
        }
    }

    /// Ends one session (logout): its refresh family and every access token
    /// carrying its `sid`, on every verifier.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for an invalid `sid`, [`Error::Store`] when it cannot be recorded.
    pub async fn revoke_session(&self, sid: &str) -> Result<()> {
        check_sid(sid)?;
        let now = self.clock.now();
        self.store
            .revoke_session(sid, now, self.settings.revoke_ttl)
            .await?;
        self.metrics.revoked(RevocationKind::Session, 1);
        Ok(())
    }

    /// Ends every session of `sub`: tokens issued before now are rejected.
    ///
    /// # Errors
    /// [`Error::BadRequest`] for an invalid `sub`, [`Error::Store`] when it cannot be recorded.
    pub async fn revoke_all(&self, sub: &str) -> Result<RevokeAllResponse> {
        check_sub(sub)?;
        let now = self.clock.now();
        let sessions = self
            .store
            .revoke_user(sub, now, self.settings.revoke_ttl)
            .await?;
        self.metrics.revoked(RevocationKind::User, 1);
        self.metrics
            .revoked(RevocationKind::Session, sessions.len() as u64);
        tracing::info!(sessions = sessions.len(), "all sessions of a user revoked");
        Ok(RevokeAllResponse { not_before: now })
    }

    /// Whether an access token is valid and not revoked, with its claims.
    /// Refresh tokens are never reported active (they are not bearer
    /// credentials for resources).
    ///
    /// # Errors
    /// [`Error::BadRequest`] for a malformed token, [`Error::Store`] when the
    /// revocation list cannot be read (never a guess).
    pub async fn introspect(&self, token: &str) -> Result<IntrospectResponse> {
        let inactive = IntrospectResponse {
            active: false,
            claims: None,
        };
        if classify(token)? == TokenShape::Refresh {
            return Ok(inactive);
        }
        let now = self.clock.now();
        let keys = self.keys.snapshot();
        let Ok(claims) = keys.verifier().verify(token, now) else {
            return Ok(inactive);
        };
        let state = self
            .store
            .revocation_state(&claims.jti, claims.exp, &claims.sid, &claims.sub, now)
            .await?;
        if state.rejects(claims.iat) {
            return Ok(inactive);
        }
        Ok(IntrospectResponse {
            active: true,
            claims: Some(claims),
        })
    }
}

impl AuthService {
    /// Introspection for the public endpoint (RFC 7662): any access token
    /// this service signed, whatever its audience, that is within its life
    /// and not revoked is active; anything else — a refresh token, garbage,
    /// another issuer's token — is `active: false`.
    ///
    /// # Errors
    /// [`Error::Store`] when the revocation list cannot be read (never a guess).
    pub async fn introspect_any(&self, token: &str) -> Result<IntrospectResponse> {
        let inactive = IntrospectResponse {
            active: false,
            claims: None,
        };
        if classify(token).ok() != Some(TokenShape::Access) {
            return Ok(inactive);
        }
        let now = self.clock.now();
        let Some(claims) = self.client_access_claims(token, now) else {
            return Ok(inactive);
        };
        let state = self
            .store
            .revocation_state(&claims.jti, claims.exp, &claims.sid, &claims.sub, now)
            .await?;
        if state.rejects(claims.iat) {
            return Ok(inactive);
        }
        Ok(IntrospectResponse {
            active: true,
            claims: Some(claims),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_told_apart() {
        assert_eq!(classify("aGVh.cGF5.c2ln").ok(), Some(TokenShape::Access));
        assert_eq!(classify(&"A".repeat(43)).ok(), Some(TokenShape::Refresh));
        for bad in ["", "a.b", "a..c", "a.b.c.d", "not a token", "a.b.c d"] {
            assert!(classify(bad).is_err(), "{bad}");
        }
        assert!(classify(&format!("{}.b.c", "a".repeat(MAX_TOKEN_BYTES))).is_err());
    }
}
