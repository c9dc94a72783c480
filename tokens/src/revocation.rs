//! The revocation contract in Redis, shared by MA (writer) and OP (reader):
//! key names, the pub/sub channel, and the event published on it.
//!
//! - `{prefix}:revoked:jti:{jti}` — a revoked access token, TTL = its remaining life.
//! - `{prefix}:revoked:sid:{sid}` — a revoked session, TTL = the longest access token life.
//! - `{prefix}:notbefore:{sub}` — Unix seconds; tokens of `sub` issued earlier are
//!   rejected. TTL = the longest access token life (older tokens have expired by then).
//!
//! Every write is followed by a [`RevocationEvent`] on `{prefix}:revocations`.

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

    /// Revoked access token key.
    #[must_use]
    pub fn jti(&self, jti: &str) -> String {
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

    /// SCAN pattern matching every revoked jti.
    #[must_use]
    pub fn jti_pattern(&self) -> String {
        format!("{}:revoked:jti:*", self.prefix)
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

    /// The pub/sub channel revocation events go to.
    #[must_use]
    pub fn channel(&self) -> String {
        format!("{}:revocations", self.prefix)
    }
}
