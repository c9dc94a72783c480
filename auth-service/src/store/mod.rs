//! Where refresh-token families and the revocation list live: Redis in a
//! cluster, or memory for a local run, with the same semantics. Every
//! decision that must be atomic (rotation, family revocation, log out
//! everywhere) is one operation of the store, never read-then-write.
//!
//! Records (Redis keys under the prefix `P`; the memory store mirrors them):
//! - `P:s:{16 bytes of sid}` — a session (refresh family), one string:
//!   when it was created, when its newest refresh token expires, that
//!   token's digest, the client, `sub`, the extra claims (JSON), then the
//!   digests of its spent refresh tokens with their expiry (reuse
//!   detection), oldest first, each kept until that token would have
//!   expired. Expires with the newest refresh token. Layout: [`record`].
//! - `P:n:{16 bytes of sid}` — the successor handed out by the session's
//!   last rotation and when it was handed out, for the grace window only.
//! - `P:recent:{sub}` — the sessions of a user created in the last few
//!   seconds: "log out everywhere" ends them explicitly, since a session
//!   created in the same second as its not-before is not older than it.
//! - `P:code:{sha256(code)}` — an authorization code: its [`CodeRecord`]
//!   (JSON), `exp`, and `used` once exchanged; expires with the code, so a
//!   second exchange within its life is detected as reuse.
//! - the revocation list and channel of `authrealm_tokens::revocation`.
//!
//! Sessions recorded before they became one record (`P:fam:{sid}`,
//! `P:rt:{sha256(token)}`, `P:rtnext:…`, `P:usersids:{sub}`) are read
//! through their old refresh tokens until those expire: the first rotation
//! of such a token moves its session into one record.

pub mod memory;
pub mod record;
pub mod redis;
mod scripts;

use authrealm_tokens::revocation::RevocationEvent;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::opaque::{Digest, Presented};

/// A new session to record at mint time (or when a code is exchanged).
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    /// Session (family) id.
    pub sid: &'a str,
    /// User id.
    pub sub: &'a str,
    /// Extra claims of the session's access tokens, as JSON.
    pub claims_json: &'a str,
    /// The OAuth client the session is bound to; empty for OP's own
    /// sessions (the internal API). Only that client may refresh it.
    pub client: &'a str,
    /// Digest of the first refresh token; `None`: the grant has no
    /// refresh token (the client may not use that grant).
    pub refresh_digest: Option<Digest>,
    /// When that refresh token (or, without one, the session) expires.
    pub refresh_exp: i64,
    /// Now.
    pub now: i64,
}

/// What MA keeps about an authorization code until it expires. Written
/// once when the code is issued, never changed (only marked used).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI of the authorization request.
    pub redirect_uri: String,
    /// The scopes granted.
    pub scope: Vec<String>,
    /// The S256 PKCE challenge.
    pub code_challenge: String,
    /// The `nonce` of the request, for the ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The user.
    pub sub: String,
    /// When the user authenticated.
    pub auth_time: i64,
    /// The user's claims (OpenID Connect names), JSON object.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The session the grant's tokens carry.
    pub sid: String,
    /// When the code was issued.
    pub iat: i64,
    /// When it expires.
    pub exp: i64,
}

/// A stored code as read back: the record, and whether it was exchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    /// The record.
    pub record: CodeRecord,
    /// Whether it has been exchanged already.
    pub used: bool,
}

/// An exchange of a code: mark it used and record the session, or — when
/// it was used before — revoke the session it created.
#[derive(Debug, Clone, Copy)]
pub struct Redemption<'a> {
    /// SHA-256 (base64url) of the code.
    pub code_hash: &'a str,
    /// When the code was issued (a "log out everywhere" after it voids it).
    pub code_iat: i64,
    /// The session to record (its `sid` is the code's).
    pub session: NewSession<'a>,
    /// How long a session revocation entry is kept (seconds).
    pub revoke_ttl: i64,
}

/// What an exchange decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeemOutcome {
    /// The code was live: it is now used and the session recorded.
    Redeemed,
    /// The code was used before: the session it created is now revoked.
    Reused,
    /// The code is unknown, expired, or issued before the user logged out
    /// everywhere.
    Invalid,
}

/// What a rotation hands out, kept for the grace window so that a repeat
/// gets exactly the same pair (same refresh token, same access token id
/// and times, same signing key). `Debug` never shows the refresh token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Successor {
    /// The new refresh token (stored only under the spent token's hashed
    /// key, for the grace window).
    pub refresh_token: String,
    /// `jti` of the new access token.
    pub jti: String,
    /// `iat`/`nbf` of the new access token.
    pub iat: i64,
    /// `exp` of the new access token.
    pub exp: i64,
    /// The key that signed it.
    pub kid: String,
    /// When the new refresh token expires.
    pub refresh_exp: i64,
    /// The scope of the new access token when the request narrowed it
    /// (RFC 6749 §6); `None`: the session's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl std::fmt::Debug for Successor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Successor")
            .field("jti", &self.jti)
            .field("iat", &self.iat)
            .field("exp", &self.exp)
            .field("kid", &self.kid)
            .field("refresh_exp", &self.refresh_exp)
            .finish_non_exhaustive()
    }
}

/// A rotation attempt. `Debug` never shows the successor (it holds the new
/// refresh token).
#[derive(Clone, Copy)]
pub struct Rotation<'a> {
    /// The session the presented token belongs to (for a token of the old
    /// shape: the one its record names, see [`Store::legacy_sid`]).
    pub sid: &'a str,
    /// The presented refresh token.
    pub presented: &'a Presented<'a>,
    /// The OAuth client presenting it; empty for OP (the internal API). A
    /// token of a session bound to another client changes nothing.
    pub client: &'a str,
    /// Digest of the successor refresh token.
    pub new_digest: Digest,
    /// The successor, serialised ([`Successor`]).
    pub successor_json: &'a str,
    /// When the successor refresh token expires.
    pub refresh_exp: i64,
    /// Now.
    pub now: i64,
    /// Grace window in seconds.
    pub grace_secs: i64,
    /// How long a session revocation entry is kept (seconds).
    pub revoke_ttl: i64,
}

impl std::fmt::Debug for Rotation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rotation")
            .field("sid", &self.sid)
            .field("presented", self.presented)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// The session a refresh token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Session id.
    pub sid: String,
    /// User id.
    pub sub: String,
    /// Extra claims (JSON object).
    pub claims_json: String,
}

/// What a rotation decided. `Debug` never shows a stored successor.
#[derive(Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The token was live: it is now spent and the successor recorded.
    Rotated(SessionInfo),
    /// The token was spent within the grace window: here is the successor
    /// handed out then (JSON of [`Successor`]).
    Repeat(SessionInfo, String),
    /// The token was spent before: the whole family is now revoked.
    Reused {
        /// The revoked session.
        sid: String,
    },
    /// Unknown, expired, or of a revoked session.
    Invalid,
    /// The session is bound to another client (or to none): nothing changed.
    WrongClient,
}

impl std::fmt::Debug for RotateOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rotated(info) => f.debug_tuple("Rotated").field(info).finish(),
            Self::Repeat(info, _) => f
                .debug_tuple("Repeat")
                .field(info)
                .field(&"<successor>")
                .finish(),
            Self::Reused { sid } => f.debug_struct("Reused").field("sid", sid).finish(),
            Self::Invalid => f.write_str("Invalid"),
            Self::WrongClient => f.write_str("WrongClient"),
        }
    }
}

/// Revocation facts about one access token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevocationState {
    /// Its `jti` is revoked.
    pub jti: bool,
    /// Its session is revoked.
    pub session: bool,
    /// The user's not-before time, if any.
    pub not_before: Option<i64>,
}

impl RevocationState {
    /// Whether a token issued at `iat` is rejected.
    #[must_use]
    pub fn rejects(&self, iat: i64) -> bool {
        self.jti || self.session || self.not_before.is_some_and(|nb| iat < nb)
    }
}

/// The store: Redis or memory, chosen at start.
#[derive(Debug)]
pub enum Store {
    /// In-process, for a local run and tests.
    Memory(memory::MemoryStore),
    /// Redis, shared by every replica.
    Redis(redis::RedisStore),
}

impl Store {
    /// Records a new session and its first refresh token.
    ///
    /// # Errors
    /// When the store is unreachable.
    pub async fn create_session(&self, s: &NewSession<'_>) -> Result<()> {
        match self {
            Self::Memory(m) => {
                m.create_session(s);
                Ok(())
            }
            Self::Redis(r) => r.create_session(s).await,
        }
    }

    /// Rotates a refresh token atomically.
    ///
    /// # Errors
    /// When the store is unreachable.
    pub async fn rotate(&self, r: &Rotation<'_>) -> Result<RotateOutcome> {
        match self {
            Self::Memory(m) => Ok(m.rotate(r)),
            Self::Redis(s) => s.rotate(r).await,
        }
    }

    /// Ends one session by id: its family and every access token with its
    /// `sid`. Returns whether the family was still live.
    ///
    /// # Errors
    /// When the store is unreachable.
    pub async fn revoke_session(&self, sid: &str, now: i64, ttl: i64) -> Result<bool> {
        match self {
            Self::Memory(m) => Ok(m.revoke_session(sid, now, ttl)),
            Self::Redis(r) => r.revoke_session(sid, now, ttl).await,
        }
    }

    /// Revokes one access token (whose own `exp` is `token_exp`) until
    /// `keep_until`; `max_life` is the longest life of any revocation entry
    /// (the revoke ttl), which the revocation log's trust marker needs.
    ///
    /// # Errors
    /// When the store is unreachable.
    pub async fn revoke_jti(
        &self,
        jti: &str,
        token_exp: i64,
        keep_until: i64,
        now: i64,
        max_life: i64,
    ) -> Result<()> {
        match self {
            Self::Memory(m) => {
                m.revoke_jti(jti, keep_until, now);
                Ok(())
            }
            Self::Redis(r) => {
                r.revoke_jti(jti, token_exp, keep_until, now, max_life)
                    .await
            }
        }
    }

    /// Revokes the family of a refresh token; `None` when the token is
    /// unknown, its session already ended, or — with `client` set — the
    /// session is bound to another client (nothing changes then).
    ///
    /// # Errors
    /// When the store is unreachable.
    pub async fn revoke_refresh(
        &self,
        token: &Presented<'_>,
        client: Option<&str>,
        now: i64,
        ttl: i64,
    ) -> Result<Option<String>> {
        match self {
            Self::Memory(m) => Ok(m.revoke_refresh(token, client, now, ttl)),
            Self::Redis(r) => r.revoke_refresh(token, client, now, ttl).await,
        }
    }

    /// The session a refresh token of the old shape (its hash) belongs to,
    /// `None` when it is unknown. Only Redis can hold such tokens (a memory
    /// store starts empty with the process).
    ///
    /// # Errors
    /// When the store is unreachable.
    pub async fn legacy_sid(&self, hash: &str) -> Result<Option<String>> {
        match self {
            Self::Memory(_) => Ok(None),
            Self::Redis(r) => r.legacy_sid(hash).await,
        }
    }

    /// Stores a new authorization code under its hash until `record.exp`.
    ///
    /// # Errors
    /// When the store is unreachable.
    pub async fn put_code(&self, hash: &str, record: &CodeRecord) -> Result<()> {
        match self {
            Self::Memory(m) => {
                m.put_code(hash, record);
                Ok(())
            }
            Self::Redis(r) => r.put_code(hash, record).await,
        }
    }

    /// Reads a code (`None`: unknown or expired). Reading changes nothing.
    ///
    /// # Errors
    /// When the store is unreachable or the record is unreadable.
    pub async fn get_code(&self, hash: &str, now: i64) -> Result<Option<StoredCode>> {
        match self {
            Self::Memory(m) => Ok(m.get_code(hash, now)),
            Self::Redis(r) => r.get_code(hash, now).await,
        }
    }

    /// Exchanges a code atomically: of concurrent exchanges exactly one is
    /// [`RedeemOutcome::Redeemed`]; every later one revokes the session.
    ///
    /// # Errors
    /// When the store is unreachable.
    pub async fn redeem_code(&self, r: &Redemption<'_>) -> Result<RedeemOutcome> {
        match self {
            Self::Memory(m) => Ok(m.redeem_code(r)),
            Self::Redis(s) => s.redeem_code(r).await,
        }
    }

    /// Sets the user's not-before to `now` (no session created before it
    /// refreshes again, no token issued before it passes) and revokes the
    /// user's sessions created in that same second explicitly (the memory
    /// store: every live one); returns those.
    ///
    /// # Errors
    /// When the store is unreachable.
    pub async fn revoke_user(&self, sub: &str, now: i64, ttl: i64) -> Result<Vec<String>> {
        match self {
            Self::Memory(m) => Ok(m.revoke_user(sub, now, ttl)),
            Self::Redis(r) => r.revoke_user(sub, now, ttl).await,
        }
    }

    /// What the revocation list says about a token (its `jti`, own `exp`,
    /// `sid` and `sub`).
    ///
    /// # Errors
    /// When the store is unreachable.
    pub async fn revocation_state(
        &self,
        jti: &str,
        token_exp: i64,
        sid: &str,
        sub: &str,
        now: i64,
    ) -> Result<RevocationState> {
        match self {
            Self::Memory(m) => Ok(m.revocation_state(jti, sid, sub, now)),
            Self::Redis(r) => r.revocation_state(jti, token_exp, sid, sub).await,
        }
    }

    /// Whether the store answers.
    ///
    /// # Errors
    /// When it does not.
    pub async fn ping(&self) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(r) => r.ping().await,
        }
    }

    /// For the memory store: every revocation in force at `now` and the
    /// events from then on (what `GET /v1/revocations` streams). Redis
    /// publishes on its channel instead; there this returns `None`.
    #[must_use]
    pub fn follow_memory(
        &self,
        now: i64,
    ) -> Option<(
        Vec<RevocationEvent>,
        tokio::sync::broadcast::Receiver<RevocationEvent>,
    )> {
        match self {
            Self::Memory(m) => Some(m.follow(now)),
            Self::Redis(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_refresh_token() {
        let token = "live-refresh-token-0123456789abcdefghijklmn";
        let successor = Successor {
            refresh_token: token.to_owned(),
            jti: "j".into(),
            iat: 1,
            exp: 2,
            kid: "k".into(),
            refresh_exp: 3,
            scope: None,
        };
        let json = serde_json::to_string(&successor).unwrap_or_default();
        let info = SessionInfo {
            sid: "s".into(),
            sub: "u".into(),
            claims_json: "{}".into(),
        };
        let shown = format!(
            "{successor:?} {:?} {:?}",
            Rotation {
                sid: "s",
                presented: &Presented::Session {
                    sid: "s",
                    digest: [7; 16],
                },
                client: "",
                new_digest: [9; 16],
                successor_json: &json,
                refresh_exp: 3,
                now: 1,
                grace_secs: 10,
                revoke_ttl: 60,
            },
            RotateOutcome::Repeat(info, json.clone()),
        );
        assert!(json.contains(token));
        assert!(!shown.contains(token), "{shown}");
    }
}
