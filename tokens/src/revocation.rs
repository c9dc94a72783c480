//! The revocation contract in Redis, shared by MA (writer) and OP (reader
//! and healer): key names, values, the pub/sub channel, the event published
//! on it, and the generation marker that tells a reader Redis lost its data.
//!
//! - `{prefix}:revoked:jti-exp:{exp}:{jti}` — a revoked access token, named
//!   with the token's own `exp` (Unix seconds), so a reader learns how long
//!   to keep it from the name alone: a full reload is one pass of SCAN, no
//!   value read per key. Value: the Unix second after which it may be
//!   forgotten (`exp` plus the writer's clock skew); TTL ends then too.
//! - `{prefix}:revoked:jti:{jti}` — the same with the expiry only in the
//!   value: what MA wrote before, and what a reader's write-back (below)
//!   writes, since it keeps when an entry may go rather than the token's
//!   `exp`. Every reader reads both names.
//! - `{prefix}:revoked:sid:{sid}` — a revoked session. Value and TTL as above
//!   (the longest access token life from the revocation).
//! - `{prefix}:notbefore:{sub}` — Unix seconds; tokens of `sub` issued earlier are
//!   rejected. TTL = the longest access token life (older tokens have expired by then).
//! - `{prefix}:revocation-generation` — a random value with no TTL, written
//!   (`SET NX`) by the first reader that finds it missing. It disappears only
//!   when Redis loses its data (a restart without persistence, a flush, a
//!   failover to an empty replica). A reader that knew one value and finds
//!   none, or another, knows the list above was lost and writes back what it
//!   still holds, each entry with its remaining life (`SET NX` with the same
//!   value format, so nothing MA wrote meanwhile is overwritten; not-before
//!   times only ever move later).
//!
//! - `{prefix}:rlog:{bucket}` — the revocation log: every entry above, as
//!   it was written, appended as one binary record ([`LogRecord`]) to the
//!   string of the hour (`bucket` = forget-after time / [`LOG_BUCKET_SECS`])
//!   in which it may be forgotten. The string expires at that hour's end,
//!   when every record in it may go. A reader that trusts the log reloads
//!   the whole list with a few `GETRANGE`s instead of a `SCAN` that visits
//!   every key of the database.
//! - `{prefix}:rlog-buckets` — sorted set of the log's buckets, scored by
//!   the Unix second at which each ends.
//! - `{prefix}:rlog-trusted-from` — Unix seconds from which the log may be
//!   read alone: written (`SET NX`) by the first write that logs, as that
//!   time plus the longest life of an entry plus [`LOG_TRUST_MARGIN_SECS`],
//!   so every entry written before the writers logged (by an earlier
//!   version, or before Redis lost its data) has expired by then. Until
//!   then a reader scans the keys.
//!
//! Every write by MA is followed by a [`RevocationEvent`] on
//! `{prefix}:revocations`; a write-back is not (every reader heals itself).

use serde::{Deserialize, Serialize};

/// Default key prefix (one Redis may serve several realms with different prefixes).
pub const DEFAULT_PREFIX: &str = "authrealm";

/// What was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationKind {
    /// One access token, by `jti`.
    Jti,
    /// A whole session (refresh family), by `sid`.
    Session,
    /// Every token of a user issued before a time, by `sub`.
    User,
}

impl RevocationKind {
    /// Metrics label and key segment.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jti => "jti",
            Self::Session => "session",
            Self::User => "user",
        }
    }
}

/// The message published on the revocation channel (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationEvent {
    /// What kind of revocation.
    pub kind: RevocationKind,
    /// The `jti`, `sid` or `sub`.
    pub id: String,
    /// For `jti`/`session`: Unix seconds after which the entry may be forgotten.
    /// For `user`: the not-before time itself.
    pub at: i64,
    /// For `user`: when the not-before entry may be forgotten; otherwise equal to `at`.
    pub expires: i64,
}

/// What the name of a revocation entry's key says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryKey<'k> {
    /// What is revoked.
    pub kind: RevocationKind,
    /// Its id (`jti`, `sid` or `sub`).
    pub id: &'k str,
    /// For a revoked `jti` named with it: the token's `exp`.
    pub exp: Option<i64>,
}

/// Redis key names for one prefix.
#[derive(Debug, Clone)]
pub struct RevocationKeys {
    prefix: String,
}

impl Default for RevocationKeys {
    fn default() -> Self {
        Self::new(DEFAULT_PREFIX)
    }
}

impl RevocationKeys {
    /// Key names under `prefix`.
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Revoked access token key: the token's `exp` and `jti`.
    #[must_use]
    pub fn jti(&self, jti: &str, exp: i64) -> String {
        format!("{}:revoked:jti-exp:{exp}:{jti}", self.prefix)
    }

    /// Revoked access token key as written before the name carried `exp`.
    #[must_use]
    pub fn legacy_jti(&self, jti: &str) -> String {
        format!("{}:revoked:jti:{jti}", self.prefix)
    }

    /// Revoked session key.
    #[must_use]
    pub fn session(&self, sid: &str) -> String {
        format!("{}:revoked:sid:{sid}", self.prefix)
    }

    /// Per-user not-before key.
    #[must_use]
    pub fn not_before(&self, sub: &str) -> String {
        format!("{}:notbefore:{sub}", self.prefix)
    }

    /// SCAN pattern matching every revoked jti (either naming).
    #[must_use]
    pub fn jti_pattern(&self) -> String {
        format!("{}:revoked:jti*", self.prefix)
    }

    /// SCAN pattern matching every revoked session.
    #[must_use]
    pub fn session_pattern(&self) -> String {
        format!("{}:revoked:sid:*", self.prefix)
    }

    /// SCAN pattern matching every not-before entry.
    #[must_use]
    pub fn not_before_pattern(&self) -> String {
        format!("{}:notbefore:*", self.prefix)
    }

    /// One SCAN pattern that finds every revocation entry — revoked `jti`s,
    /// revoked sessions and not-before entries — in a single pass over the
    /// keyspace (the prefix's glob characters escaped). It may also match a
    /// few other keys of the prefix; [`RevocationKeys::classify`] tells
    /// them apart.
    #[must_use]
    pub fn scan_pattern(&self) -> String {
        let mut escaped = String::with_capacity(self.prefix.len() + 16);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        escaped.push_str(":[rn][eo][vt]*");
        escaped
    }

    /// The kind and id of a revocation entry's key, or `None` for any other
    /// key (what [`RevocationKeys::scan_pattern`] also matches).
    #[must_use]
    pub fn classify<'k>(&self, key: &'k str) -> Option<(RevocationKind, &'k str)> {
        self.read_key(key).map(|k| (k.kind, k.id))
    }

    /// What a revocation entry's key says: kind, id and, for a revoked
    /// `jti` named with it, the token's `exp`. `None` for any other key.
    #[must_use]
    pub fn read_key<'k>(&self, key: &'k str) -> Option<EntryKey<'k>> {
        let rest = key.strip_prefix(self.prefix.as_str())?.strip_prefix(':')?;
        let plain = |kind, id| EntryKey {
            kind,
            id,
            exp: None,
        };
        if let Some(named) = rest.strip_prefix("revoked:jti-exp:") {
            let (exp, id) = named.split_once(':')?;
            if exp.is_empty() || exp.len() > 12 || !exp.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(EntryKey {
                kind: RevocationKind::Jti,
                id,
                exp: Some(exp.parse().ok()?),
            })
        } else if let Some(id) = rest.strip_prefix("revoked:jti:") {
            Some(plain(RevocationKind::Jti, id))
        } else if let Some(id) = rest.strip_prefix("revoked:sid:") {
            Some(plain(RevocationKind::Session, id))
        } else {
            rest.strip_prefix("notbefore:")
                .map(|id| plain(RevocationKind::User, id))
        }
    }

    /// The generation marker: present, with the same value, as long as Redis
    /// has kept the revocation list.
    #[must_use]
    pub fn generation(&self) -> String {
        format!("{}:revocation-generation", self.prefix)
    }

    /// The pub/sub channel revocation events go to.
    #[must_use]
    pub fn channel(&self) -> String {
        format!("{}:revocations", self.prefix)
    }

    /// The revocation log's string for one bucket ([`log_bucket`]).
    #[must_use]
    pub fn log(&self, bucket: i64) -> String {
        format!("{}:rlog:{bucket}", self.prefix)
    }

    /// The sorted set of the log's buckets, scored by when each ends.
    #[must_use]
    pub fn log_buckets(&self) -> String {
        format!("{}:rlog-buckets", self.prefix)
    }

    /// The time from which the log may be read alone.
    #[must_use]
    pub fn log_trusted_from(&self) -> String {
        format!("{}:rlog-trusted-from", self.prefix)
    }
}

/// Width of a log bucket: the entries that may be forgotten within one hour
/// share a string, which expires as a whole at the hour's end.
pub const LOG_BUCKET_SECS: i64 = 3600;

/// Added to the longest life of an entry before the log is trusted alone:
/// the time an upgrade may take to replace writers that did not log yet.
pub const LOG_TRUST_MARGIN_SECS: i64 = 600;

/// The log bucket of an entry that may be forgotten at `expires`.
#[must_use]
pub fn log_bucket(expires: i64) -> i64 {
    expires.div_euclid(LOG_BUCKET_SECS)
}

/// When a log bucket ends (its string's expiry; its score in the set).
#[must_use]
pub fn log_bucket_end(bucket: i64) -> i64 {
    bucket.saturating_add(1).saturating_mul(LOG_BUCKET_SECS)
}

/// Bytes of a log record before its id.
const LOG_HEAD: usize = 11;

/// One record of the revocation log, as laid out in Redis (big-endian):
/// kind (1 byte: 1 `jti`, 2 session, 3 user), `at` (u32 Unix seconds),
/// `expires` (u32), the id's length (u16), the id's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRecord<'a> {
    /// What is revoked.
    pub kind: RevocationKind,
    /// Its id, as written (MA writes UTF-8; a reader checks).
    pub id: &'a [u8],
    /// As in [`RevocationEvent::at`].
    pub at: u32,
    /// As in [`RevocationEvent::expires`].
    pub expires: u32,
}

/// A log that is not one MA or OP wrote: an unknown kind or an empty id.
/// The reader then scans the keys instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the revocation log holds a record no writer makes, at byte {0}")]
pub struct LogCorrupt(pub usize);

fn kind_byte(kind: RevocationKind) -> u8 {
    match kind {
        RevocationKind::Jti => 1,
        RevocationKind::Session => 2,
        RevocationKind::User => 3,
    }
}

fn clamp_secs(t: i64) -> u32 {
    u32::try_from(t.clamp(0, i64::from(u32::MAX))).unwrap_or(u32::MAX)
}

impl LogRecord<'_> {
    /// Appends the record of `ev` to `out` (what the Lua writers append
    /// too); `false`, and nothing appended, for an id no writer makes
    /// (empty, or longer than 65 535 bytes).
    pub fn encode(ev: &RevocationEvent, out: &mut Vec<u8>) -> bool {
        let Ok(len) = u16::try_from(ev.id.len()) else {
            return false;
        };
        if len == 0 {
            return false;
        }
        out.push(kind_byte(ev.kind));
        out.extend_from_slice(&clamp_secs(ev.at).to_be_bytes());
        out.extend_from_slice(&clamp_secs(ev.expires).to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(ev.id.as_bytes());
        true
    }
}

/// Reads the records at the start of `buf`: calls `each` for every whole
/// record and returns how many bytes they took (the rest is the start of a
/// record whose end has not been read yet).
///
/// # Errors
/// [`LogCorrupt`] at the first record no writer makes.
pub fn read_log<'a>(
    buf: &'a [u8],
    mut each: impl FnMut(LogRecord<'a>),
) -> Result<usize, LogCorrupt> {
    let mut pos = 0;
    loop {
        let Some(head) = buf.get(pos..pos + LOG_HEAD) else {
            return Ok(pos);
        };
        let [k, a0, a1, a2, a3, e0, e1, e2, e3, l0, l1] = *head else {
            return Ok(pos);
        };
        let kind = match k {
            1 => RevocationKind::Jti,
            2 => RevocationKind::Session,
            3 => RevocationKind::User,
            _ => return Err(LogCorrupt(pos)),
        };
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        if len == 0 {
            return Err(LogCorrupt(pos));
        }
        let Some(id) = buf.get(pos + LOG_HEAD..pos + LOG_HEAD + len) else {
            return Ok(pos);
        };
        each(LogRecord {
            kind,
            id,
            at: u32::from_be_bytes([a0, a1, a2, a3]),
            expires: u32::from_be_bytes([e0, e1, e2, e3]),
        });
        pos += LOG_HEAD + len;
    }
}

/// Lua that appends one entry to the revocation log (bucket string, its
/// expiry, the bucket set, old buckets dropped from the set) and, given the
/// longest life of an entry (`max_life`, seconds), writes the trust marker
/// if it is missing: `now + max_life +` [`LOG_TRUST_MARGIN_SECS`]. Shared by
/// every writer's script, so they all lay records out as [`LogRecord`]
/// reads them. `kind` is 1 (`jti`), 2 (session) or 3 (user).
pub const LOG_LUA: &str = r"
local function log_revocation(p, kind, id, at, expires, now, max_life)
  if #id == 0 or #id > 65535 then return end
  local b = math.floor(expires / 3600)
  local key = p .. ':rlog:' .. b
  local ends = (b + 1) * 3600
  redis.call('APPEND', key, struct.pack('>BI4I4H', kind, at, expires, #id) .. id)
  redis.call('EXPIREAT', key, ends)
  local set = p .. ':rlog-buckets'
  redis.call('ZADD', set, ends, b)
  redis.call('ZREMRANGEBYSCORE', set, '-inf', '(' .. now)
  if max_life then
    redis.call('SET', p .. ':rlog-trusted-from', now + max_life + 600, 'NX')
  end
end
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generation_marker_matches_no_scan_pattern() {
        let k = RevocationKeys::new("realm-a");
        let marker = k.generation();
        for pattern in [k.jti_pattern(), k.session_pattern(), k.not_before_pattern()] {
            let prefix = pattern.trim_end_matches('*');
            assert!(!marker.starts_with(prefix), "{marker} ~ {pattern}");
        }
        for key in [k.jti("j", 5), k.legacy_jti("j")] {
            assert!(key.starts_with(k.jti_pattern().trim_end_matches('*')));
        }
    }

    /// A glob matcher with Redis's rules for the characters the patterns use.
    fn glob(pattern: &[u8], text: &[u8]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some((b'*', rest)) => {
                (0..=text.len()).any(|i| glob(rest, text.get(i..).unwrap_or_default()))
            }
            Some((b'\\', rest)) => match (rest.split_first(), text.split_first()) {
                (Some((p, rest)), Some((t, tail))) => p == t && glob(rest, tail),
                _ => false,
            },
            Some((b'[', rest)) => {
                let Some(end) = rest.iter().position(|&c| c == b']') else {
                    return false;
                };
                let (set, after) = rest.split_at(end);
                match text.split_first() {
                    Some((t, tail)) => {
                        set.contains(t) && glob(after.get(1..).unwrap_or_default(), tail)
                    }
                    None => false,
                }
            }
            Some((p, rest)) => text
                .split_first()
                .is_some_and(|(t, tail)| p == t && glob(rest, tail)),
        }
    }

    #[test]
    fn one_scan_pattern_finds_every_entry_and_classify_names_it() {
        for prefix in ["authrealm", "realm-a", "we*ird[1]?"] {
            let k = RevocationKeys::new(prefix);
            let pattern = k.scan_pattern();
            for (key, kind, id) in [
                (
                    k.jti("Ab-_0123456789abcdefgh", 1_800_000_300),
                    RevocationKind::Jti,
                    "Ab-_0123456789abcdefgh",
                ),
                (
                    k.legacy_jti("Ab-_0123456789abcdefgh"),
                    RevocationKind::Jti,
                    "Ab-_0123456789abcdefgh",
                ),
                (k.session("s1"), RevocationKind::Session, "s1"),
                (k.not_before("0f8e-user"), RevocationKind::User, "0f8e-user"),
            ] {
                assert!(
                    glob(pattern.as_bytes(), key.as_bytes()),
                    "{pattern} ~ {key}"
                );
                assert_eq!(k.classify(&key), Some((kind, id)));
            }
            // Keys the pattern may match but that are no revocation.
            assert_eq!(k.classify(&k.generation()), None);
            assert_eq!(k.classify(&format!("{prefix}:revoked:other:x")), None);
            // Another prefix's entries are neither matched nor classified.
            let other = RevocationKeys::new("other");
            assert!(!glob(pattern.as_bytes(), other.jti("x", 1).as_bytes()));
            assert_eq!(k.classify(&other.jti("x", 1)), None);
        }
    }

    fn event(kind: RevocationKind, id: &str, at: i64, expires: i64) -> RevocationEvent {
        RevocationEvent {
            kind,
            id: id.to_owned(),
            at,
            expires,
        }
    }

    type Read = (RevocationKind, Vec<u8>, u32, u32);

    fn records(buf: &[u8]) -> Result<(Vec<Read>, usize), LogCorrupt> {
        let mut out = Vec::new();
        let used = read_log(buf, |r| out.push((r.kind, r.id.to_vec(), r.at, r.expires)))?;
        Ok((out, used))
    }

    #[test]
    fn log_records_read_back_as_written_and_a_cut_record_waits_for_its_end()
    -> Result<(), LogCorrupt> {
        let events = [
            event(
                RevocationKind::Jti,
                "AAAAAAAAAAAAAAAAAAAAAQ",
                1_800_000_060,
                1_800_000_060,
            ),
            event(RevocationKind::Session, "s-1", 1_800_000_900, 1_800_000_900),
            event(
                RevocationKind::User,
                "0f8e-üser",
                1_800_000_000,
                1_800_000_960,
            ),
        ];
        let mut buf = Vec::new();
        for ev in &events {
            assert!(LogRecord::encode(ev, &mut buf));
        }
        let (read, used) = records(&buf)?;
        assert_eq!(used, buf.len());
        let expected: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    e.kind,
                    e.id.as_bytes().to_vec(),
                    clamp_secs(e.at),
                    clamp_secs(e.expires),
                )
            })
            .collect();
        assert_eq!(read, expected);
        // Every cut point: the whole records before it, the rest waits.
        for cut in 0..buf.len() {
            let (read, used) = records(&buf[..cut])?;
            assert!(used <= cut);
            assert_eq!(read[..], expected[..read.len()], "cut at {cut}");
            // What is left is less than one record.
            let whole = expected[..read.len()]
                .iter()
                .map(|r| LOG_HEAD + r.1.len())
                .sum::<usize>();
            assert_eq!(used, whole, "cut at {cut}");
            assert!(cut - used < LOG_HEAD + expected[read.len()].1.len());
        }
        Ok(())
    }

    #[test]
    fn ids_no_writer_makes_are_not_logged_and_odd_records_are_corrupt() -> Result<(), LogCorrupt> {
        let mut buf = Vec::new();
        assert!(!LogRecord::encode(
            &event(RevocationKind::Jti, "", 1, 1),
            &mut buf
        ));
        let long = "x".repeat(70_000);
        assert!(!LogRecord::encode(
            &event(RevocationKind::Jti, &long, 1, 1),
            &mut buf
        ));
        assert!(buf.is_empty());
        // Times outside u32 are clamped, not wrapped.
        assert!(LogRecord::encode(
            &event(RevocationKind::Jti, "j", -5, i64::MAX),
            &mut buf
        ));
        assert_eq!(
            records(&buf)?.0,
            [(RevocationKind::Jti, b"j".to_vec(), 0, u32::MAX)]
        );
        let good = buf.len();
        let mut bad_kind = buf.clone();
        bad_kind.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, b'x']);
        assert_eq!(read_log(&bad_kind, |_| {}), Err(LogCorrupt(good)));
        let mut empty_id = buf;
        empty_id.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(read_log(&empty_id, |_| {}), Err(LogCorrupt(good)));
        Ok(())
    }

    #[test]
    fn buckets_hold_what_may_go_within_their_hour() {
        for expires in [0, 1, 3599, 3600, 1_800_000_000, 1_800_003_599] {
            let b = log_bucket(expires);
            assert!(log_bucket_end(b) > expires);
            assert!(log_bucket_end(b) - LOG_BUCKET_SECS <= expires);
        }
        let k = RevocationKeys::new("realm-a");
        assert_eq!(k.log(500_000), "realm-a:rlog:500000");
        // The log's keys are no entries, and the one-pass pattern misses them.
        for key in [k.log(500_000), k.log_buckets(), k.log_trusted_from()] {
            assert_eq!(k.read_key(&key), None);
            assert!(!glob(k.scan_pattern().as_bytes(), key.as_bytes()), "{key}");
        }
    }

    #[test]
    fn the_lua_writers_use_the_same_layout_names_and_margin() {
        assert!(LOG_LUA.contains(&format!("max_life + {LOG_TRUST_MARGIN_SECS}")));
        assert!(LOG_LUA.contains(&format!("expires / {LOG_BUCKET_SECS}")));
        assert!(LOG_LUA.contains(&format!("(b + 1) * {LOG_BUCKET_SECS}")));
        let k = RevocationKeys::new("");
        for name in [k.log(0), k.log_buckets(), k.log_trusted_from()] {
            let name = name.trim_end_matches('0');
            assert!(LOG_LUA.contains(&format!("'{name}'")), "{name}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_without_a_panic(buf in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut n = 0;
            match read_log(&buf, |r| { n += LOG_HEAD + r.id.len(); }) {
                Ok(used) => proptest::prop_assert_eq!(used, n),
                Err(LogCorrupt(at)) => proptest::prop_assert_eq!(at, n),
            }
        }
    }

    #[test]
    fn a_revoked_jti_is_named_with_its_exp_and_odd_names_are_not_entries() {
        let k = RevocationKeys::new("authrealm");
        assert_eq!(
            k.read_key(&k.jti("j1", 1_800_000_300)),
            Some(EntryKey {
                kind: RevocationKind::Jti,
                id: "j1",
                exp: Some(1_800_000_300)
            })
        );
        assert_eq!(k.read_key(&k.legacy_jti("j1")).and_then(|e| e.exp), None);
        for odd in [
            "authrealm:revoked:jti-exp:",
            "authrealm:revoked:jti-exp:123",
            "authrealm:revoked:jti-exp::j1",
            "authrealm:revoked:jti-exp:-5:j1",
            "authrealm:revoked:jti-exp:12a:j1",
            "authrealm:revoked:jti-exp:99999999999999999999:j1",
        ] {
            assert_eq!(k.read_key(odd), None, "{odd}");
        }
    }
}
