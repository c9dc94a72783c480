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

use authrealm_tokens::revocation::{RevocationEvent, RevocationKeys, RevocationKind};
use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{
    CodeRecord, NewSession, RedeemOutcome, Redemption, RevocationState, RotateOutcome, Rotation,
    SessionInfo, StoredCode, record,
};
use crate::error::{Error, Result};
use crate::opaque::{Presented, sid_bytes};

/// Seconds a session stays in its user's `recent` set: longer than the
/// second it was created in, so a "log out everywhere" in that same second
/// finds it (an older session is older than the not-before and ends by it).
pub const RECENT_SECS: i64 = 3;

/// Shared Lua: reads a session record (layout: [`super::record`]), checks
/// a user's not-before, finds a spent token, and ends a session — deletes
/// its record and successor (and a record of the old shape), writes the
/// revoked session entry and publishes it.
const PRELUDE_LUA: &str = r"
local ZERO = string.rep('\0', 16)
local function parse(rec)
  local created, exp, h, cl, sl, ml, pos = struct.unpack('>I4I4c16I2I2I2', rec)
  local client = string.sub(rec, pos, pos + cl - 1)
  pos = pos + cl
  local sub
  if sl == 65535 then
    sub = string.format('%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x',
      string.byte(rec, pos, pos + 15))
    pos = pos + 16
  else
    sub = string.sub(rec, pos, pos + sl - 1)
    pos = pos + sl
  end
  local claims = string.sub(rec, pos, pos + ml - 1)
  pos = pos + ml
  return {created = created, exp = exp, h = h, client = client, sub = sub,
    claims = claims, tail = pos, spent = string.sub(rec, pos)}
end
local function logged_out(p, sub, at)
  local nb = redis.call('GET', p .. ':notbefore:' .. sub)
  return nb and tonumber(at) < tonumber(nb)
end
-- Position of digest d among the spent tokens (entries of 20 bytes), or nil.
local function find_spent(spent, d)
  local at = 1
  while true do
    local f = string.find(spent, d, at, true)
    if not f then return nil end
    if (f - 1) % 20 == 0 then return f end
    at = f + 1
  end
end
local function revoke_family(p, sid, rec_key, next_key, now, ttl)
  if rec_key ~= '' then redis.call('DEL', rec_key, next_key) end
  redis.call('DEL', p .. ':fam:' .. sid)
  local untl = now + ttl
  redis.call('SET', p .. ':revoked:sid:' .. sid, tostring(untl), 'EX', ttl)
  redis.call('PUBLISH', p .. ':revocations',
    cjson.encode({kind = 'session', id = sid, at = untl, expires = untl}))
end
";

/// KEYS: s:{sid}, n:{sid}.
/// ARGV: prefix, now, grace, successor json, refresh exp, successor ttl ms,
/// revoke ttl, client ('' for OP's own sessions), presented digest, new
/// digest, sid.
const ROTATE_LUA: &str = r"
local p = ARGV[1]
local now = tonumber(ARGV[2])
local rec = redis.call('GET', KEYS[1])
if not rec then return {'invalid'} end
local s = parse(rec)
if s.exp <= now then return {'invalid'} end
if logged_out(p, s.sub, s.created) then return {'invalid'} end
if s.client ~= ARGV[8] then return {'wrong_client'} end
local d = ARGV[9]
if d == s.h and d ~= ZERO then
  -- Spent tokens that expired are dropped (they are in expiry order).
  local keep = 1
  while keep + 19 <= #s.spent and struct.unpack('>I4', s.spent, keep + 16) <= now do
    keep = keep + 20
  end
  local head = struct.pack('>I4I4c16', s.created, tonumber(ARGV[5]), ARGV[10])
  redis.call('SET', KEYS[1], head .. string.sub(rec, 25, s.tail - 1)
    .. string.sub(s.spent, keep) .. d .. struct.pack('>I4', s.exp), 'EXAT', ARGV[5])
  redis.call('SET', KEYS[2], struct.pack('>I4', now) .. ARGV[4], 'PX', ARGV[6])
  return {'rotated', s.sub, s.claims}
end
local f = find_spent(s.spent, d)
if not f or struct.unpack('>I4', s.spent, f + 16) <= now then return {'invalid'} end
if f + 19 == #s.spent then
  local nxt = redis.call('GET', KEYS[2])
  if nxt and now - struct.unpack('>I4', nxt) <= tonumber(ARGV[3]) then
    return {'repeat', s.sub, s.claims, string.sub(nxt, 5)}
  end
end
revoke_family(p, ARGV[11], KEYS[1], KEYS[2], now, tonumber(ARGV[7]))
return {'reused'}
";

/// A token of the old shape. KEYS: rt:{old}, rtnext:{old}, s:{sid}, n:{sid}.
/// ARGV: as [`ROTATE_LUA`] (the presented digest unused). Its first live
/// rotation moves the session into one record.
const LEGACY_ROTATE_LUA: &str = r"
local p = ARGV[1]
local now = tonumber(ARGV[2])
local sid = ARGV[11]
local rt = redis.call('HMGET', KEYS[1], 'sid', 'exp', 'spent')
if rt[1] ~= sid or tonumber(rt[2]) <= now then return {'invalid'} end
local sub, claims, created, client
local rec = redis.call('GET', KEYS[3])
if rec then
  local s = parse(rec)
  sub, claims, created, client = s.sub, s.claims, s.created, s.client
else
  local f = redis.call('HMGET', p .. ':fam:' .. sid, 'sub', 'claims', 'created', 'client')
  sub, claims, created, client = f[1], f[2], f[3], f[4] or ''
end
if not sub then return {'invalid'} end
if logged_out(p, sub, created) then return {'invalid'} end
if client ~= ARGV[8] then return {'wrong_client'} end
if rt[3] then
  if now - tonumber(rt[3]) <= tonumber(ARGV[3]) then
    local nxt = redis.call('GET', KEYS[2])
    if nxt then return {'repeat', sub, claims, nxt} end
  end
  revoke_family(p, sid, KEYS[3], KEYS[4], now, tonumber(ARGV[7]))
  return {'reused'}
end
if rec then return {'invalid'} end
redis.call('HSET', KEYS[1], 'spent', ARGV[2])
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[6])
redis.call('SET', KEYS[3], struct.pack('>I4I4c16I2I2I2', tonumber(created), tonumber(ARGV[5]),
  ARGV[10], #client, #sub, #claims) .. client .. sub .. claims, 'EXAT', ARGV[5])
redis.call('DEL', p .. ':fam:' .. sid)
return {'rotated', sub, claims}
";

/// KEYS: s:{sid}, n:{sid}. ARGV: prefix, now, revoke ttl, digest, sid,
/// client (absent: any).
const REVOKE_REFRESH_LUA: &str = r"
local p = ARGV[1]
local now = tonumber(ARGV[2])
local rec = redis.call('GET', KEYS[1])
if not rec then return false end
local s = parse(rec)
if s.exp <= now then return false end
if ARGV[6] and s.client ~= ARGV[6] then return false end
local d = ARGV[4]
if d ~= s.h or d == ZERO then
  local f = find_spent(s.spent, d)
  if not f or struct.unpack('>I4', s.spent, f + 16) <= now then return false end
end
revoke_family(p, ARGV[5], KEYS[1], KEYS[2], now, tonumber(ARGV[3]))
return ARGV[5]
";

/// A token of the old shape. KEYS: rt:{hash}, s:{sid}, n:{sid}. ARGV:
/// prefix, now, revoke ttl, sid, client (absent: any).
const LEGACY_REVOKE_REFRESH_LUA: &str = r"
local p = ARGV[1]
local sid = ARGV[4]
if redis.call('HGET', KEYS[1], 'sid') ~= sid then return false end
local client
local rec = redis.call('GET', KEYS[2])
if rec then
  client = parse(rec).client
else
  local f = redis.call('HMGET', p .. ':fam:' .. sid, 'sub', 'client')
  if not f[1] then return false end
  client = f[2] or ''
end
if ARGV[5] and client ~= ARGV[5] then return false end
revoke_family(p, sid, KEYS[2], KEYS[3], tonumber(ARGV[2]), tonumber(ARGV[3]))
return sid
";

/// KEYS: code:{hash}, s:{sid}, n:{sid}, recent:{sub}. ARGV: prefix, now,
/// sid, sub, session record, refresh exp, revoke ttl, code iat, recent
/// member, recent seconds.
const REDEEM_CODE_LUA: &str = r"
local p = ARGV[1]
local now = tonumber(ARGV[2])
local rec = redis.call('HMGET', KEYS[1], 'exp', 'used')
if not rec[1] or tonumber(rec[1]) <= now then return 'invalid' end
if logged_out(p, ARGV[4], ARGV[8]) then return 'invalid' end
if rec[2] then
  revoke_family(p, ARGV[3], KEYS[2], KEYS[3], now, tonumber(ARGV[7]))
  return 'reused'
end
redis.call('HSET', KEYS[1], 'used', ARGV[2])
redis.call('SET', KEYS[2], ARGV[5], 'EXAT', ARGV[6])
redis.call('SADD', KEYS[4], ARGV[9])
redis.call('EXPIRE', KEYS[4], ARGV[10])
return 'redeemed'
";

/// ARGV: prefix, sid, now, revoke ttl; KEYS: s:{sid}, n:{sid} ('' when the
/// sid is none MA makes). The revoked entry is written even when the
/// session is already gone, so its access tokens die with it.
const REVOKE_SESSION_LUA: &str = r"
local p = ARGV[1]
local sid = ARGV[2]
local live = redis.call('EXISTS', p .. ':fam:' .. sid)
if KEYS[1] ~= '' then live = live + redis.call('EXISTS', KEYS[1]) end
revoke_family(p, sid, KEYS[1], KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
return live
";

/// KEYS: recent:{sub}. ARGV: prefix, sub, now, revoke ttl. Members of the
/// recent set are the sid followed by its 16 bytes (the record's key).
const REVOKE_USER_LUA: &str = r"
local p = ARGV[1]
local sub = ARGV[2]
local now = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
redis.call('SET', p .. ':notbefore:' .. sub, ARGV[3], 'EX', ttl)
local revoked = {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local sid = string.sub(m, 1, #m - 16)
  local raw = string.sub(m, #m - 15)
  local rec_key = p .. ':s:' .. raw
  if redis.call('EXISTS', rec_key) == 1 then
    revoke_family(p, sid, rec_key, p .. ':n:' .. raw, now, ttl)
    revoked[#revoked + 1] = sid
  end
end
redis.call('DEL', KEYS[1])
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
    legacy_rotate: redis::Script,
    revoke_refresh: redis::Script,
    legacy_revoke_refresh: redis::Script,
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
        let script = |body: &str| redis::Script::new(&format!("{PRELUDE_LUA}\n{body}"));
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
        let (script, presented): (_, &[u8]) = match r.presented {
            Presented::Session { digest, .. } => {
                let mut inv = self.rotate.key(&keys.record);
                inv.key(&keys.next);
                (inv, digest)
            }
            Presented::Legacy { hash } => {
                let mut inv = self.legacy_rotate.key(self.key("rt", hash));
                inv.key(self.key("rtnext", hash))
                    .key(&keys.record)
                    .key(&keys.next);
                (inv, &[0; 16])
            }
        };
        let mut script = script;
        let reply: Vec<String> = script
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
