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
}

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
