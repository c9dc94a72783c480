//! The Lua scripts of the Redis store: each decision (rotation, revocation
//! of a refresh token or a session, code exchange, log out everywhere) and
//! its writes and `PUBLISH` run as one atomic step in Redis. They read and
//! write the session record of [`super::record`].

/// Seconds a session stays in its user's `recent` set: longer than the
/// second it was created in, so a "log out everywhere" in that same second
/// finds it (an older session is older than the not-before and ends by it).
pub const RECENT_SECS: i64 = 3;

/// KEYS: revoked jti key. ARGV: prefix, jti, forget-after, ttl, now,
/// revoke ttl (the longest life of an entry). Writes the entry, logs it
/// and publishes it.
pub(super) const REVOKE_JTI_LUA: &str = r"
local p = ARGV[1]
local untl = tonumber(ARGV[3])
local now = tonumber(ARGV[5])
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
log_revocation(p, 1, ARGV[2], untl, untl, now, tonumber(ARGV[6]))
redis.call('PUBLISH', p .. ':revocations',
  cjson.encode({kind = 'jti', id = ARGV[2], at = untl, expires = untl}))
return 0
";

/// Shared Lua: reads a session record (layout: [`super::record`]), checks
/// a user's not-before, finds a spent token, and ends a session — deletes
/// its record and successor (and a record of the old shape), writes the
/// revoked session entry and publishes it.
pub(super) const PRELUDE_LUA: &str = r"
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
  log_revocation(p, 2, sid, untl, untl, now, ttl)
  redis.call('PUBLISH', p .. ':revocations',
    cjson.encode({kind = 'session', id = sid, at = untl, expires = untl}))
end
";

/// KEYS: s:{sid}, n:{sid}.
/// ARGV: prefix, now, grace, successor json, refresh exp, successor ttl ms,
/// revoke ttl, client ('' for OP's own sessions), presented digest, new
/// digest, sid.
pub(super) const ROTATE_LUA: &str = r"
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
pub(super) const LEGACY_ROTATE_LUA: &str = r"
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
pub(super) const REVOKE_REFRESH_LUA: &str = r"
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
pub(super) const LEGACY_REVOKE_REFRESH_LUA: &str = r"
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
pub(super) const REDEEM_CODE_LUA: &str = r"
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
pub(super) const REVOKE_SESSION_LUA: &str = r"
local p = ARGV[1]
local sid = ARGV[2]
local live = redis.call('EXISTS', p .. ':fam:' .. sid)
if KEYS[1] ~= '' then live = live + redis.call('EXISTS', KEYS[1]) end
revoke_family(p, sid, KEYS[1], KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
return live
";

/// KEYS: recent:{sub}. ARGV: prefix, sub, now, revoke ttl. Members of the
/// recent set are the sid followed by its 16 bytes (the record's key).
pub(super) const REVOKE_USER_LUA: &str = r"
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
log_revocation(p, 3, sub, now, now + ttl, now, ttl)
redis.call('PUBLISH', p .. ':revocations',
  cjson.encode({kind = 'user', id = sub, at = now, expires = now + ttl}))
return revoked
";
