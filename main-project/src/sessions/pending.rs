//! Refreshes that MA rotated but OP could not finish: the database failed
//! between the rotation and the account check. The old refresh token is
//! spent at MA by then, so answering 503 would log the user out unless the
//! retry can still succeed. The rotated pair waits here, under the SHA-256
//! of the token the client presented; the retry (same token, as
//! `Retry-After` says) finishes the check and gets that pair.
//!
//! Bounded in count and time. The pair never leaves this map except to the
//! client that presented the old token (or when it expires).

use std::collections::HashMap;
use std::sync::Mutex;

use authrealm_tokens::api::TokenPair;

use authrealm_tokens::digest::sha256;

/// Most refreshes held at once.
pub const MAX_PENDING: usize = 10_000;
/// Longest a pair is held, seconds (capped by its refresh token's own life).
pub const MAX_HOLD_SECS: i64 = 86_400;

/// Rotated pairs waiting for their account check, by hash of the old token.
#[derive(Default)]
pub struct PendingRefreshes {
    map: Mutex<HashMap<[u8; 32], (TokenPair, i64)>>,
}

impl std::fmt::Debug for PendingRefreshes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.map.lock().map(|m| m.len()).unwrap_or_default();
        f.debug_struct("PendingRefreshes")
            .field("held", &n)
            .finish()
    }
}

impl PendingRefreshes {
    /// Holds `pair`, rotated from `old_token`, until the client retries.
    /// False when full of live entries (the refresh is then lost, as before).
    pub fn hold(&self, old_token: &str, pair: TokenPair, now: i64) -> bool {
        let Ok(mut map) = self.map.lock() else {
            return false;
        };
        if map.len() >= MAX_PENDING {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= MAX_PENDING {
                return false;
            }
        }
        let life = i64::try_from(pair.refresh_expires_in)
            .unwrap_or(i64::MAX)
            .min(MAX_HOLD_SECS);
        map.insert(
            sha256(old_token.as_bytes()),
            (pair, now.saturating_add(life)),
        );
        true
    }

    /// The pair held for `old_token`, if any and still live.
    pub fn get(&self, old_token: &str, now: i64) -> Option<TokenPair> {
        let map = self.map.lock().ok()?;
        map.get(&sha256(old_token.as_bytes()))
            .filter(|(_, until)| *until > now)
            .map(|(pair, _)| pair.clone())
    }

    /// Forgets the pair held for `old_token` (handed out, or refused).
    pub fn release(&self, old_token: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&sha256(old_token.as_bytes()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(refresh_expires_in: u64) -> TokenPair {
        TokenPair {
            access_token: "a".into(),
            token_type: "Bearer".into(),
            expires_in: 300,
            refresh_token: "r2".into(),
            refresh_expires_in,
            session_id: "s".into(),
            sub: "u".into(),
        }
    }

    #[test]
    fn a_held_pair_goes_to_the_same_token_only_and_expires() {
        let p = PendingRefreshes::default();
        assert!(p.hold("r1", pair(100), 1_000));
        assert_eq!(
            p.get("r1", 1_050).map(|x| x.refresh_token),
            Some("r2".into())
        );
        assert!(p.get("r1x", 1_050).is_none());
        assert!(p.get("r1", 1_100).is_none());
        p.release("r1");
        assert!(p.get("r1", 1_050).is_none());
        assert!(!format!("{p:?}").contains("r2"));
    }
}
