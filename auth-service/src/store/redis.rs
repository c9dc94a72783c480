//! The Redis store: one round trip per operation — an atomic pipeline for
//! mint and jti revocation, a Lua script for every decision (rotation,
//! family revocation, log out everywhere), so no decision is ever
//! read-then-write. Every revocation is published on the revocation channel
//! inside the same atomic step. Keys expire with what they describe. (A
//! refresh token of the old shape takes one more round trip first: the
//! lookup of the session it belongs to, which decides nothing.)
//!
//! The scripts derive some key names from stored values (the session of a
//! token), so all keys of a prefix must live on one Redis node (no Redis
//! Cluster slot spreading).

use std::time::Duration;

use authrealm_tokens::revocation::{LOG_LUA, RevocationKeys};
use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{
    CodeRecord, NewSession, RedeemOutcome, Redemption, RevocationState, RotateOutcome, Rotation,
    SessionInfo, StoredCode, record,
};
use crate::error::{Error, Result};
use crate::opaque::{Presented, sid_bytes};

pub use super::scripts::RECENT_SECS;
use super::scripts::{
    LEGACY_REVOKE_REFRESH_LUA, LEGACY_ROTATE_LUA, PRELUDE_LUA, REDEEM_CODE_LUA, REVOKE_JTI_LUA,
    REVOKE_REFRESH_LUA, REVOKE_SESSION_LUA, REVOKE_USER_LUA, ROTATE_LUA,
};

/// Redis-backed families and revocation list.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    keys: RevocationKeys,
    rotate: redis::Script,
    legacy_rotate: redis::Script,
    revoke_refresh: redis::Script,
    legacy_revoke_refresh: redis::Script,
    revoke_user: redis::Script,
    revoke_session: redis::Script,
    revoke_jti: redis::Script,
    redeem_code: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The two keys of a session: its record and its successor (empty when
/// the sid is none MA makes: no record can exist then).
struct SessionKeys {
    record: Vec<u8>,
    next: Vec<u8>,
}

impl RedisStore {
    /// Connects lazily: the service starts (not ready) while Redis is down
    /// and every request reconnects as needed, so it recovers by itself.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid URL.
    pub fn connect(url: &str, prefix: &str) -> Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|_| Error::Config("AUTHREALM_REDIS_URL is not a valid Redis URL".into()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(Error::Store)?;
        let script = |body: &str| redis::Script::new(&format!("{LOG_LUA}\n{PRELUDE_LUA}\n{body}"));
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            keys: RevocationKeys::new(prefix),
            rotate: script(ROTATE_LUA),
            legacy_rotate: script(LEGACY_ROTATE_LUA),
            revoke_refresh: script(REVOKE_REFRESH_LUA),
            legacy_revoke_refresh: script(LEGACY_REVOKE_REFRESH_LUA),
            revoke_user: script(REVOKE_USER_LUA),
            revoke_session: script(REVOKE_SESSION_LUA),
            revoke_jti: script(REVOKE_JTI_LUA),
            redeem_code: script(REDEEM_CODE_LUA),
        })
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:{kind}:{id}", self.prefix)
    }

    /// The Redis key of a session's record (for tests and operators):
    /// `{prefix}:s:` and the 16 bytes of the session id; `None` for a sid
    /// MA does not make.
    #[must_use]
    pub fn session_key(prefix: &str, sid: &str) -> Option<Vec<u8>> {
        let raw = sid_bytes(sid)?;
        let mut k = Vec::with_capacity(prefix.len() + 3 + raw.len());
        k.extend_from_slice(prefix.as_bytes());
        k.extend_from_slice(b":s:");
        k.extend_from_slice(&raw);
        Some(k)
    }

    fn session_keys(&self, sid: &str) -> SessionKeys {
        match Self::session_key(&self.prefix, sid) {
            Some(record) => {
                let mut next = record.clone();
                let at = self.prefix.len() + 1;
                next[at] = b'n';
                SessionKeys { record, next }
            }
            None => SessionKeys {
                record: Vec::new(),
                next: Vec::new(),
            },
        }
    }

    /// The member of the user's recent set for `sid`: the sid and its 16
    /// bytes (so the script finds the record without decoding).
    fn recent_member(sid: &str) -> Option<Vec<u8>> {
        let raw = sid_bytes(sid)?;
        Some([sid.as_bytes(), &raw].concat())
    }

    fn new_record(s: &NewSession<'_>) -> Result<Vec<u8>> {
        record::encode(&record::Record {
            created: s.now,
            exp: s.refresh_exp,
            current: s.refresh_digest,
            client: s.client.to_owned(),
            sub: s.sub.to_owned(),
            claims_json: s.claims_json.to_owned(),
            spent: Vec::new(),
        })
    }

    pub(super) async fn create_session(&self, s: &NewSession<'_>) -> Result<()> {
        let keys = self.session_keys(s.sid);
        let member = Self::recent_member(s.sid)
            .ok_or_else(|| Error::StoreProtocol("a session id MA did not make".into()))?;
        let recent = self.key("recent", s.sub);
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&keys.record)
            .arg(Self::new_record(s)?)
            .arg("EXAT")
            .arg(s.refresh_exp)
            .ignore()
            .sadd(&recent, member)
            .ignore()
            .expire(&recent, RECENT_SECS)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(Error::Store)
    }

    pub(super) async fn put_code(&self, hash: &str, record: &CodeRecord) -> Result<()> {
        let key = self.key("code", hash);
        let json = serde_json::to_string(record)
            .map_err(|e| Error::StoreProtocol(format!("code encoding: {e}")))?;
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .hset_multiple(&key, &[("rec", json), ("exp", record.exp.to_string())])
            .ignore()
            .expire_at(&key, record.exp)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(Error::Store)
    }

    pub(super) async fn get_code(&self, hash: &str, now: i64) -> Result<Option<StoredCode>> {
        let mut conn = self.conn.clone();
        let (rec, used): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.key("code", hash))
            .arg("rec")
            .arg("used")
            .query_async(&mut conn)
            .await
            .map_err(Error::Store)?;
        let Some(rec) = rec else {
            return Ok(None);
        };
        let record: CodeRecord = serde_json::from_str(&rec)
            .map_err(|e| Error::StoreProtocol(format!("stored code: {e}")))?;
        Ok((record.exp > now).then_some(StoredCode {
            record,
            used: used.is_some(),
        }))
    }

    pub(super) async fn redeem_code(&self, r: &Redemption<'_>) -> Result<RedeemOutcome> {
        let s = &r.session;
        let keys = self.session_keys(s.sid);
        let member = Self::recent_member(s.sid)
            .ok_or_else(|| Error::StoreProtocol("a session id MA did not make".into()))?;
        let mut conn = self.conn.clone();
        let tag: String = self
            .redeem_code
            .key(self.key("code", r.code_hash))
            .key(&keys.record)
            .key(&keys.next)
            .key(self.key("recent", s.sub))
            .arg(&self.prefix)
            .arg(s.now)
            .arg(s.sid)
            .arg(s.sub)
            .arg(Self::new_record(s)?)
            .arg(s.refresh_exp)
            .arg(r.revoke_ttl)
            .arg(r.code_iat)
            .arg(member)
            .arg(RECENT_SECS)
            .invoke_async(&mut conn)
            .await
            .map_err(Error::Store)?;
        match tag.as_str() {
            "redeemed" => Ok(RedeemOutcome::Redeemed),
            "reused" => Ok(RedeemOutcome::Reused),
            "invalid" => Ok(RedeemOutcome::Invalid),
            other => Err(Error::StoreProtocol(format!("redeem answered {other:?}"))),
        }
    }

    pub(super) async fn legacy_sid(&self, hash: &str) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        redis::cmd("HGET")
            .arg(self.key("rt", hash))
            .arg("sid")
            .query_async(&mut conn)
            .await
            .map_err(Error::Store)
    }

    pub(super) async fn rotate(&self, r: &Rotation<'_>) -> Result<RotateOutcome> {
        let mut conn = self.conn.clone();
        let successor_ttl_ms = r.grace_secs.saturating_mul(1000).saturating_add(1000);
        let keys = self.session_keys(r.sid);
        if keys.record.is_empty() {
            return Ok(RotateOutcome::Invalid);
        }
        let (mut script, presented): (_, &[u8]) = match r.presented {
            Presented::Session { digest, .. } => (self.rotate.key(&keys.record), digest),
            Presented::Legacy { hash } => {
                let mut inv = self.legacy_rotate.key(self.key("rt", hash));
                inv.key(self.key("rtnext", hash)).key(&keys.record);
                (inv, &[0; 16])
            }
        };
        let reply: Vec<String> = script
            .key(&keys.next)
            .arg(&self.prefix)
            .arg(r.now)
            .arg(r.grace_secs)
            .arg(r.successor_json)
            .arg(r.refresh_exp)
            .arg(successor_ttl_ms)
            .arg(r.revoke_ttl)
            .arg(r.client)
            .arg(presented)
            .arg(&r.new_digest[..])
            .arg(r.sid)
            .invoke_async(&mut conn)
            .await
            .map_err(Error::Store)?;
        let mut it = reply.into_iter();
        let tag = it.next().unwrap_or_default();
        let mut field = || {
            it.next()
                .ok_or_else(|| Error::StoreProtocol(format!("short rotate reply ({tag})")))
        };
        let mut info = || -> Result<SessionInfo> {
            Ok(SessionInfo {
                sid: r.sid.to_owned(),
                sub: field()?,
                claims_json: field()?,
            })
        };
        Ok(match tag.as_str() {
            "invalid" => RotateOutcome::Invalid,
            "wrong_client" => RotateOutcome::WrongClient,
            "reused" => RotateOutcome::Reused {
                sid: r.sid.to_owned(),
            },
            "rotated" => RotateOutcome::Rotated(info()?),
            "repeat" => {
                let session = info()?;
                RotateOutcome::Repeat(session, field()?)
            }
            other => return Err(Error::StoreProtocol(format!("rotate answered {other:?}"))),
        })
    }

    pub(super) async fn revoke_jti(
        &self,
        jti: &str,
        token_exp: i64,
        keep_until: i64,
        now: i64,
        max_life: i64,
    ) -> Result<()> {
        let ttl = keep_until.saturating_sub(now).max(1);
        let mut conn = self.conn.clone();
        self.revoke_jti
            .key(self.keys.jti(jti, token_exp))
            .arg(&self.prefix)
            .arg(jti)
            .arg(keep_until)
            .arg(ttl)
            .arg(now)
            .arg(max_life)
            .invoke_async::<()>(&mut conn)
            .await
            .map_err(Error::Store)
    }

    pub(super) async fn revoke_refresh(
        &self,
        token: &Presented<'_>,
        client: Option<&str>,
        now: i64,
        ttl: i64,
    ) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        let mut invocation = match token {
            Presented::Session { sid, digest } => {
                let keys = self.session_keys(sid);
                if keys.record.is_empty() {
                    return Ok(None);
                }
                let mut inv = self.revoke_refresh.key(&keys.record);
                inv.key(&keys.next)
                    .arg(&self.prefix)
                    .arg(now)
                    .arg(ttl)
                    .arg(&digest[..])
                    .arg(*sid);
                inv
            }
            Presented::Legacy { hash } => {
                let Some(sid) = self.legacy_sid(hash).await? else {
                    return Ok(None);
                };
                let keys = self.session_keys(&sid);
                if keys.record.is_empty() {
                    return Ok(None);
                }
                let mut inv = self.legacy_revoke_refresh.key(self.key("rt", hash));
                inv.key(&keys.record)
                    .key(&keys.next)
                    .arg(&self.prefix)
                    .arg(now)
                    .arg(ttl)
                    .arg(sid);
                inv
            }
        };
        if let Some(c) = client {
            invocation.arg(c);
        }
        invocation
            .invoke_async(&mut conn)
            .await
            .map_err(Error::Store)
    }

    pub(super) async fn revoke_session(&self, sid: &str, now: i64, ttl: i64) -> Result<bool> {
        let keys = self.session_keys(sid);
        let mut conn = self.conn.clone();
        let live: i64 = self
            .revoke_session
            .key(&keys.record)
            .key(&keys.next)
            .arg(&self.prefix)
            .arg(sid)
            .arg(now)
            .arg(ttl)
            .invoke_async(&mut conn)
            .await
            .map_err(Error::Store)?;
        Ok(live > 0)
    }

    pub(super) async fn revoke_user(&self, sub: &str, now: i64, ttl: i64) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        self.revoke_user
            .key(self.key("recent", sub))
            .arg(&self.prefix)
            .arg(sub)
            .arg(now)
            .arg(ttl)
            .invoke_async(&mut conn)
            .await
            .map_err(Error::Store)
    }

    pub(super) async fn revocation_state(
        &self,
        jti: &str,
        token_exp: i64,
        sid: &str,
        sub: &str,
    ) -> Result<RevocationState> {
        let mut conn = self.conn.clone();
        // A jti revoked before its key carried `exp` is under the old name.
        let (j, old, s, nb): (Option<String>, Option<String>, Option<String>, Option<i64>) =
            redis::pipe()
                .get(self.keys.jti(jti, token_exp))
                .get(self.keys.legacy_jti(jti))
                .get(self.keys.session(sid))
                .get(self.keys.not_before(sub))
                .query_async(&mut conn)
                .await
                .map_err(Error::Store)?;
        Ok(RevocationState {
            jti: j.is_some() || old.is_some(),
            session: s.is_some(),
            not_before: nb,
        })
    }

    pub(super) async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: String = conn.ping().await.map_err(Error::Store)?;
        Ok(())
    }
}
