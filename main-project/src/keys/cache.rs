//! The verified-token cache of one key-set snapshot: the claims of tokens
//! whose signature has already been checked, keyed by the full token text.
//!
//! A token is admitted on its second sighting only. The first verified
//! sighting leaves a 64-bit fingerprint in a small fixed table (the
//! doorkeeper); a token that is presented once, as most are under a flood
//! of new tokens, costs one hash and one atomic swap, not an allocation
//! and a write lock. A fingerprint collision only admits a token early,
//! and every hit still compares the full token text.
//!
//! Bounded: at the cap, entries past their expiry are dropped, and if the
//! cache is still full it starts over (no recency is tracked on the hot
//! path). The caller checks times on every hit, and revocation after.

use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use authrealm_tokens::AccessClaims;
use hashbrown::{DefaultHashBuilder, HashTable};

/// Most doorkeeper slots (8 bytes each), whatever the cap.
const MAX_DOORKEEPER_SLOTS: usize = 1 << 15;

struct Entry {
    hash: u64,
    token: Box<str>,
    claims: Arc<AccessClaims>,
}

/// A token's hash under one cache's (randomly seeded) hasher: computed
/// once per request, used for the lookup and the doorkeeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TokenHash(u64);

/// Verified claims by token text, at most `cap` of them.
pub(super) struct VerifiedCache {
    cap: usize,
    hasher: DefaultHashBuilder,
    entries: RwLock<HashTable<Entry>>,
    /// Fingerprints of tokens verified once, by `hash & (len - 1)`.
    seen: Box<[AtomicU64]>,
}

impl VerifiedCache {
    /// A cache of at most `cap` tokens; 0 disables it.
    pub(super) fn new(cap: usize) -> Self {
        let slots = if cap == 0 {
            0
        } else {
            cap.min(MAX_DOORKEEPER_SLOTS).next_power_of_two()
        };
        Self {
            cap,
            hasher: DefaultHashBuilder::default(),
            entries: RwLock::new(HashTable::new()),
            seen: (0..slots).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Whether the cache keeps anything at all.
    pub(super) fn enabled(&self) -> bool {
        self.cap > 0
    }

    pub(super) fn hash(&self, token: &str) -> TokenHash {
        TokenHash(self.hasher.hash_one(token))
    }

    /// The cached claims of `token` (`hash` is [`VerifiedCache::hash`] of it).
    pub(super) fn get(&self, hash: TokenHash, token: &str) -> Option<Arc<AccessClaims>> {
        let entries = self.entries.read().ok()?;
        entries
            .find(hash.0, |e| e.hash == hash.0 && *e.token == *token)
            .map(|e| e.claims.clone())
    }

    /// Records that `token` was just verified to `claims`: the first
    /// sighting leaves a fingerprint, the second admits it. `now` decides
    /// which entries are dropped as expired when the cache is full.
    pub(super) fn verified(
        &self,
        hash: TokenHash,
        token: &str,
        claims: &Arc<AccessClaims>,
        now: i64,
    ) {
        if !self.seen_before(hash) {
            return;
        }
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries
            .find(hash.0, |e| e.hash == hash.0 && *e.token == *token)
            .is_some()
        {
            // Another request admitted it meanwhile.
            return;
        }
        if entries.len() >= self.cap {
            entries.retain(|e| e.claims.exp > now);
            if entries.len() >= self.cap {
                entries.clear();
            }
        }
        entries.insert_unique(
            hash.0,
            Entry {
                hash: hash.0,
                token: token.into(),
                claims: claims.clone(),
            },
            |e| e.hash,
        );
    }

    /// Leaves `hash`'s fingerprint in its doorkeeper slot; whether the same
    /// fingerprint was already there.
    fn seen_before(&self, hash: TokenHash) -> bool {
        let Some(mask) = self.seen.len().checked_sub(1) else {
            return false;
        };
        // Low bits pick the slot; 0 marks an empty slot, so never store it.
        let fingerprint = hash.0 | 1;
        let slot = usize::try_from(hash.0).unwrap_or(usize::MAX) & mask;
        self.seen
            .get(slot)
            .is_some_and(|s| s.swap(fingerprint, Ordering::Relaxed) == fingerprint)
    }

    /// Tokens cached now.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "https://issuer".into(),
            sub: "user-1".into(),
            aud: "api".into(),
            exp,
            iat: 1_000,
            nbf: 1_000,
            jti: "j".into(),
            sid: "s".into(),
            extra: serde_json::Map::new(),
        })
    }

    /// Verifies (as far as the cache knows) `token` once more.
    fn sighting(cache: &VerifiedCache, token: &str, exp: i64, now: i64) {
        cache.verified(cache.hash(token), token, &claims(exp), now);
    }

    fn cached(cache: &VerifiedCache, token: &str) -> bool {
        cache.get(cache.hash(token), token).is_some()
    }

    #[test]
    fn a_token_is_cached_on_its_second_sighting_only() {
        let cache = VerifiedCache::new(100);
        sighting(&cache, "token-a", 2_000, 1_500);
        assert!(!cached(&cache, "token-a"));
        assert_eq!(cache.len(), 0);
        sighting(&cache, "token-a", 2_000, 1_500);
        assert!(cached(&cache, "token-a"));
        // A third sighting does not add it twice.
        sighting(&cache, "token-a", 2_000, 1_500);
        assert_eq!(cache.len(), 1);
        assert!(!cached(&cache, "token-b"));
    }

    #[test]
    fn a_hit_needs_the_whole_token_not_just_its_hash() {
        let cache = VerifiedCache::new(100);
        sighting(&cache, "token-a", 2_000, 1_500);
        sighting(&cache, "token-a", 2_000, 1_500);
        // The hash of the cached token with another text finds nothing.
        assert!(cache.get(cache.hash("token-a"), "token-b").is_none());
    }

    #[test]
    fn the_cache_stays_within_its_cap() {
        let cap = 50;
        let cache = VerifiedCache::new(cap);
        for i in 0..10 * cap {
            let token = format!("token-{i}");
            sighting(&cache, &token, 2_000, 1_500);
            sighting(&cache, &token, 2_000, 1_500);
            assert!(cache.len() <= cap, "{} entries", cache.len());
            assert!(cached(&cache, &token));
        }
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first() {
        let cache = VerifiedCache::new(4);
        for (token, exp) in [("old-1", 1_000), ("old-2", 1_000), ("new-1", 3_000)] {
            sighting(&cache, token, exp, 500);
            sighting(&cache, token, exp, 500);
        }
        sighting(&cache, "new-2", 3_000, 500);
        sighting(&cache, "new-2", 3_000, 500);
        assert_eq!(cache.len(), 4);
        // Full at 2 000: the expired ones make room, the live ones stay.
        sighting(&cache, "new-3", 3_000, 2_000);
        sighting(&cache, "new-3", 3_000, 2_000);
        assert_eq!(cache.len(), 3);
        for token in ["new-1", "new-2", "new-3"] {
            assert!(cached(&cache, token), "{token}");
        }
        assert!(!cached(&cache, "old-1"));
    }

    #[test]
    fn a_cap_of_zero_keeps_nothing() {
        let cache = VerifiedCache::new(0);
        assert!(!cache.enabled());
        sighting(&cache, "token-a", 2_000, 1_500);
        sighting(&cache, "token-a", 2_000, 1_500);
        assert_eq!(cache.len(), 0);
    }
}
