//! The claims of an AuthRealm access token, as MA signs them and OP reads them.

use serde::{Deserialize, Serialize};

/// Claims of an access JWT. `extra` carries the claims OP asked MA to add.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: MA's public base URL.
    pub iss: String,
    /// Subject: the user id in OP's database.
    pub sub: String,
    /// Audience: the API the token is for.
    pub aud: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Unique token id, the key of the revocation list.
    pub jti: String,
    /// Session (refresh-token family) this token belongs to.
    pub sid: String,
    /// Further claims passed by OP at mint time (for example `email`).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl AccessClaims {
    /// Seconds this token still has to live at `now` (0 when already expired).
    #[must_use]
    pub fn remaining_secs(&self, now: i64) -> u64 {
        u64::try_from(self.exp.saturating_sub(now)).unwrap_or(0)
    }
}
