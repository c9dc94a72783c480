//! The opaque strings MA issues — refresh tokens, session ids, token ids —
//! how they are made (random bytes, base64url), what a refresh token looks
//! like, and the hash under which one is stored (never the token itself).

use crate::error::{Error, Result};

/// Length of a refresh token: 32 bytes in base64url without padding.
pub const REFRESH_TOKEN_LEN: usize = 43;

/// `n` random bytes from the system CSPRNG, base64url (a refresh token is
/// 32 bytes, session and token ids 16).
///
/// # Errors
/// [`Error::Random`] when the system random source fails.
pub fn random(n: usize) -> Result<String> {
    authrealm_tokens::random_token(n).map_err(|_| Error::Random)
}

/// The storage key of a refresh token: SHA-256, base64url.
#[must_use]
pub fn hash_token(token: &str) -> String {
    authrealm_tokens::digest::sha256_b64url(token.as_bytes())
}

/// Whether `token` has the shape of a refresh token this service issues.
#[must_use]
pub fn is_refresh_shaped(token: &str) -> bool {
    token.len() == REFRESH_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_issued_shapes_are_refresh_tokens() -> Result<()> {
        let t = random(32)?;
        assert!(is_refresh_shaped(&t));
        assert!(!is_refresh_shaped(&t[1..]));
        assert!(!is_refresh_shaped(&format!("{}+", &t[1..])));
        assert!(!is_refresh_shaped("a.b.c"));
        assert_eq!(hash_token(&t).len(), 43);
        assert_ne!(hash_token(&t), t);
        Ok(())
    }
}
