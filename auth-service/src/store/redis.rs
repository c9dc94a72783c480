//! The Redis store: one round trip per operation — an atomic pipeline for
//! mint and jti revocation, a Lua script for every decision (rotation,
//! family revocation, log out everywhere), so no decision is ever
//! read-then-write. Every revocation is published on the revocation channel
//! inside the same atomic step. Keys expire with what they describe.
//!
//! The scripts derive some key names from stored values (the session of a
//! token), so all keys of a prefix must live on one Redis node (no Redis
//! Cluster slot spreading).

use std::time::Duration;

use authrealm_tokens::revocation::{RevocationEvent, RevocationKeys, RevocationKind};
use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{
    CodeRecord, NewSession, RedeemOutcome, Redemption, RevocationState, RotateOutcome, Rotation,
    SessionInfo, StoredCode,
};
use crate::error::{Error, Result};

/// Shared Lua: ends a session — deletes the family, writes the revoked
/// session entry, drops it from the user's set, publishes the event; and
/// moves a key's expiry later, never earlier (sessions of different
/// clients live differently long; the user's set must outlive them all).
const REVOKE_FAMILY_LUA: &str = r"
local function expire_not_before(key, at)
  if redis.call('TTL', key) == -1 then redis.call('EXPIREAT', key, at)
  else redis.call('EXPIREAT', key, at, 'GT') end
end
local function revoke_family(p, sid, sub, now, ttl)
  redis.call('DEL', p .. ':fam:' .. sid)
  local untl = now + ttl
  redis.call('SET', p .. ':revoked:sid:' .. sid, tostring(untl), 'EX', ttl)
  if sub then redis.call('SREM', p .. ':usersids:' .. sub, sid) end
  redis.call('PUBLISH', p .. ':revocations',
    cjson.encode({kind = 'session', id = sid, at = untl, expires = untl}))
end
";

/// KEYS: rt:{old}, rtnext:{old}, rt:{new}.
/// ARGV: prefix, now, grace, successor json, refresh exp, successor ttl ms,
/// revoke ttl, client ('' for OP's own sessions).
const ROTATE_LUA: &str = r"
local p = ARGV[1]
local now = tonumber(ARGV[2])
local rec = redis.call('HMGET', KEYS[1], 'sid', 'exp', 'spent')
local sid = rec[1]
if not sid or tonumber(rec[2]) <= now then return {'invalid'} end
local fam_key = p .. ':fam:' .. sid
local fam = redis.call('HMGET', fam_key, 'sub', 'claims', 'created', 'client')
local sub = fam[1]
if not sub then return {'invalid'} end
local nb = redis.call('GET', p .. ':notbefore:' .. sub)
if nb and tonumber(fam[3]) < tonumber(nb) then return {'invalid'} end
if (fam[4] or '') ~= ARGV[8] then return {'wrong_client'} end
if rec[3] then
  if now - tonumber(rec[3]) <= tonumber(ARGV[3]) then
    local nxt = redis.call('GET', KEYS[2])
    if nxt then return {'repeat', sid, sub, fam[2], nxt} end
  end
  revoke_family(p, sid, sub, now, tonumber(ARGV[7]))
  return {'reused', sid}
end
redis.call('HSET', KEYS[1], 'spent', ARGV[2])
redis.call('HSET', KEYS[3], 'sid', sid, 'exp', ARGV[5])
redis.call('EXPIREAT', KEYS[3], ARGV[5])
redis.call('EXPIREAT', fam_key, ARGV[5])
expire_not_before(p .. ':usersids:' .. sub, ARGV[5])
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[6])
return {'rotated', sid, sub, fam[2]}
";

/// KEYS: rt:{hash}. ARGV: prefix, now, revoke ttl, client (absent: any).
const REVOKE_REFRESH_LUA: &str = r"
local p = ARGV[1]
local sid = redis.call('HGET', KEYS[1], 'sid')
if not sid then return false end
local fam = redis.call('HMGET', p .. ':fam:' .. sid, 'sub', 'client')
local sub = fam[1]
if not sub then return false end
if ARGV[4] and (fam[2] or '') ~= ARGV[4] then return false end
revoke_family(p, sid, sub, tonumber(ARGV[2]), tonumber(ARGV[3]))
return sid
";

/// KEYS: code:{hash}. ARGV: prefix, now, sid, sub, claims, client, refresh
/// hash ('' for none), refresh exp, revoke ttl, code iat.
const REDEEM_CODE_LUA: &str = r"
local p = ARGV[1]
local now = tonumber(ARGV[2])
local rec = redis.call('HMGET', KEYS[1], 'exp', 'used')
if not rec[1] or tonumber(rec[1]) <= now then return 'invalid' end
local sid, sub = ARGV[3], ARGV[4]
local nb = redis.call('GET', p .. ':notbefore:' .. sub)
if nb and tonumber(ARGV[10]) < tonumber(nb) then return 'invalid' end
if rec[2] then
  revoke_family(p, sid, sub, now, tonumber(ARGV[9]))
  return 'reused'
end
redis.call('HSET', KEYS[1], 'used', ARGV[2])
local fam = p .. ':fam:' .. sid
redis.call('HSET', fam, 'sub', sub, 'claims', ARGV[5], 'created', ARGV[2], 'client', ARGV[6])
redis.call('EXPIREAT', fam, ARGV[8])
if ARGV[7] ~= '' then
  local rt = p .. ':rt:' .. ARGV[7]
  redis.call('HSET', rt, 'sid', sid, 'exp', ARGV[8])
  redis.call('EXPIREAT', rt, ARGV[8])
end
local users = p .. ':usersids:' .. sub
redis.call('SADD', users, sid)
expire_not_before(users, ARGV[8])
return 'redeemed'
";

/// ARGV: prefix, sid, now, revoke ttl. The revoked entry is written even when
/// the family is already gone, so the session's access tokens die with it.
const REVOKE_SESSION_LUA: &str = r"
local p = ARGV[1]
local sid = ARGV[2]
local sub = redis.call('HGET', p .. ':fam:' .. sid, 'sub')
revoke_family(p, sid, sub, tonumber(ARGV[3]), tonumber(ARGV[4]))
if sub then return 1 else return 0 end
";

/// ARGV: prefix, sub, now, revoke ttl.
const REVOKE_USER_LUA: &str = r"
local p = ARGV[1]
local sub = ARGV[2]
local now = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
redis.call('SET', p .. ':notbefore:' .. sub, ARGV[3], 'EX', ttl)
local set_key = p .. ':usersids:' .. sub
local revoked = {}
for _, sid in ipairs(redis.call('SMEMBERS', set_key)) do
  if redis.call('EXISTS', p .. ':fam:' .. sid) == 1 then
    revoke_family(p, sid, nil, now, ttl)
    revoked[#revoked + 1] = sid
  end
end
redis.call('DEL', set_key)
redis.call('PUBLISH', p .. ':revocations',
  cjson.encode({kind = 'user', id = sub, at = now, expires = now + ttl}))
return revoked
";

/// Redis-backed families and revocation list.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    keys: RevocationKeys,
    rotate: redis::Script,
    revoke_refresh: redis::Script,
    revoke_user: redis::Script,
    revoke_session: redis::Script,
    redeem_code: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
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
        let script = |body: &str| redis::Script::new(&format!("{REVOKE_FAMILY_LUA}\n{body}"));
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            keys: RevocationKeys::new(prefix),
            rotate: script(ROTATE_LUA),
            revoke_refresh: script(REVOKE_REFRESH_LUA),
            revoke_user: script(REVOKE_USER_LUA),
            revoke_session: script(REVOKE_SESSION_LUA),
            redeem_code: script(REDEEM_CODE_LUA),
        })
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:{kind}:{id}", self.prefix)
    }

    /// The Redis key of a refresh token record (for tests and operators).
    #[must_use]
    pub fn token_key(prefix: &str, hash: &str) -> String {
        format!("{prefix}:rt:{hash}")
    }

    pub(super) async fn create_session(&self, s: &NewSession<'_>) -> Result<()> {
        let fam = self.key("fam", s.sid);
        let users = self.key("usersids", s.sub);
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_multiple(
                &fam,
                &[
                    ("sub", s.sub),
                    ("claims", s.claims_json),
                    ("created", &s.now.to_string()),
                    ("client", s.client),
                ],
            )
            .ignore()
            .expire_at(&fam, s.refresh_exp)
            .ignore();
        if let Some(hash) = s.refresh_hash {
            let rt = self.key("rt", hash);
            pipe.hset_multiple(&rt, &[("sid", s.sid), ("exp", &s.refresh_exp.to_string())])
                .ignore()
                .expire_at(&rt, s.refresh_exp)
                .ignore();
        }
        // The user's set expires with the longest-lived of their sessions:
        // set when it has no expiry yet (NX), otherwise only moved later (GT).
        pipe.sadd(&users, s.sid)
            .ignore()
            .cmd("EXPIREAT")
            .arg(&users)
            .arg(s.refresh_exp)
            .arg("NX")
            .ignore()
            .cmd("EXPIREAT")
            .arg(&users)
            .arg(s.refresh_exp)
            .arg("GT")
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
        let mut conn = self.conn.clone();
        let tag: String = self
            .redeem_code
            .key(self.key("code", r.code_hash))
            .arg(&self.prefix)
            .arg(s.now)
            .arg(s.sid)
            .arg(s.sub)
            .arg(s.claims_json)
            .arg(s.client)
            .arg(s.refresh_hash.unwrap_or(""))
            .arg(s.refresh_exp)
            .arg(r.revoke_ttl)
            .arg(r.code_iat)
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

    pub(super) async fn rotate(&self, r: &Rotation<'_>) -> Result<RotateOutcome> {
        let mut conn = self.conn.clone();
        let successor_ttl_ms = r.grace_secs.saturating_mul(1000).saturating_add(1000);
        let reply: Vec<String> = self
            .rotate
            .key(self.key("rt", r.old_hash))
            .key(self.key("rtnext", r.old_hash))
            .key(self.key("rt", r.new_hash))
            .arg(&self.prefix)
            .arg(r.now)
            .arg(r.grace_secs)
            .arg(r.successor_json)
            .arg(r.refresh_exp)
            .arg(successor_ttl_ms)
            .arg(r.revoke_ttl)
            .arg(r.client)
            .invoke_async(&mut conn)
            .await
            .map_err(Error::Store)?;
        let mut it = reply.into_iter();
        let tag = it.next().unwrap_or_default();
        let mut field = || {
            it.next()
                .ok_or_else(|| Error::StoreProtocol(format!("short rotate reply ({tag})")))
        };
        Ok(match tag.as_str() {
            "invalid" => RotateOutcome::Invalid,
            "wrong_client" => RotateOutcome::WrongClient,
            "reused" => RotateOutcome::Reused { sid: field()? },
            "rotated" => RotateOutcome::Rotated(SessionInfo {
                sid: field()?,
                sub: field()?,
                claims_json: field()?,
            }),
            "repeat" => {
                let info = SessionInfo {
                    sid: field()?,
                    sub: field()?,
                    claims_json: field()?,
                };
                RotateOutcome::Repeat(info, field()?)
            }
            other => return Err(Error::StoreProtocol(format!("rotate answered {other:?}"))),
        })
    }

    pub(super) async fn revoke_jti(&self, jti: &str, exp: i64, now: i64) -> Result<()> {
        let ttl = u64::try_from(exp.saturating_sub(now)).unwrap_or(0).max(1);
        let event = RevocationEvent {
            kind: RevocationKind::Jti,
            id: jti.to_owned(),
            at: exp,
            expires: exp,
        };
        let event = serde_json::to_string(&event)
            .map_err(|e| Error::StoreProtocol(format!("event encoding: {e}")))?;
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .set_ex(self.keys.jti(jti), exp, ttl)
            .ignore()
            .publish(self.keys.channel(), event)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(Error::Store)
    }

    pub(super) async fn revoke_refresh(
        &self,
        hash: &str,
        client: Option<&str>,
        now: i64,
        ttl: i64,
    ) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        let mut invocation = self.revoke_refresh.key(self.key("rt", hash));
        invocation.arg(&self.prefix).arg(now).arg(ttl);
        if let Some(c) = client {
            invocation.arg(c);
        }
        invocation
            .invoke_async(&mut conn)
            .await
            .map_err(Error::Store)
    }

    pub(super) async fn revoke_session(&self, sid: &str, now: i64, ttl: i64) -> Result<bool> {
        let mut conn = self.conn.clone();
        let live: i64 = self
            .revoke_session
            .arg(&self.prefix)
            .arg(sid)
            .arg(now)
            .arg(ttl)
            .invoke_async(&mut conn)
            .await
            .map_err(Error::Store)?;
        Ok(live == 1)
    }

    pub(super) async fn revoke_user(&self, sub: &str, now: i64, ttl: i64) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        self.revoke_user
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
        sid: &str,
        sub: &str,
    ) -> Result<RevocationState> {
        let mut conn = self.conn.clone();
        let (j, s, nb): (Option<String>, Option<String>, Option<i64>) = redis::pipe()
            .get(self.keys.jti(jti))
            .get(self.keys.session(sid))
            .get(self.keys.not_before(sub))
            .query_async(&mut conn)
            .await
            .map_err(Error::Store)?;
        Ok(RevocationState {
            jti: j.is_some(),
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
