//! The opaque strings MA issues — refresh tokens, session ids, token ids,
//! authorization codes — how they are made (random bytes, base64url), what
//! each looks like, and the digest under which a refresh token or code is
//! stored (never the token itself).
//!
//! A refresh token is `{sid}.{secret}`: it names its session, so the store
//! finds the session's one record without an index from token to session.
//! The session id is not secret (access tokens carry it as `sid`); the
//! 32 random bytes after the dot are. Tokens issued before sessions became
//! one record (43 characters, no session id) are still read, through the
//! records they were issued with, until they expire.

use base64::Engine as _;

use crate::error::{Error, Result};

/// Length of an authorization code (and of a refresh token issued before
/// sessions became one record): 32 bytes in base64url without padding.
pub const CODE_LEN: usize = 43;

/// Length of a session id MA makes: 16 bytes in base64url.
pub const SID_LEN: usize = 22;

/// What the store keeps of a refresh token: the first 16 bytes of its
/// SHA-256 (a token is 256 random bits; 128 bits of its digest identify it).
pub type Digest = [u8; 16];

/// `n` random bytes from the system CSPRNG, base64url (a refresh token's
/// secret and a code are 32 bytes, session and token ids 16).
///
/// # Errors
/// [`Error::Random`] when the system random source fails.
pub fn random(n: usize) -> Result<String> {
    authrealm_tokens::random_token(n).map_err(|_| Error::Random)
}

/// The storage key of a code (and of a refresh token of the old shape):
/// SHA-256, base64url.
#[must_use]
pub fn hash_token(token: &str) -> String {
    authrealm_tokens::digest::sha256_b64url(token.as_bytes())
}

/// The digest stored for a refresh token.
#[must_use]
pub fn digest(token: &str) -> Digest {
    let full = authrealm_tokens::digest::sha256(token.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

fn is_b64url(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `code` has the shape of an authorization code MA issues.
#[must_use]
pub fn is_code_shaped(code: &str) -> bool {
    is_b64url(code, CODE_LEN)
}

/// The 16 bytes of a session id MA made, or `None` for any other string
/// (no session record can exist under it).
#[must_use]
pub fn sid_bytes(sid: &str) -> Option<[u8; 16]> {
    if !is_b64url(sid, SID_LEN) {
        return None;
    }
    let v = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sid)
        .ok()?;
    v.try_into().ok()
}

/// A refresh token as presented.
#[derive(Clone, PartialEq, Eq)]
pub enum Presented<'a> {
    /// `{sid}.{secret}`: the session it names and the token's digest.
    Session {
        /// The session id.
        sid: &'a str,
        /// The digest of the whole token.
        digest: Digest,
    },
    /// A token of the old shape: the hash its record is stored under.
    Legacy {
        /// SHA-256 of the token, base64url.
        hash: String,
    },
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Session { sid, .. } => f.debug_struct("Session").field("sid", sid).finish(),
            Self::Legacy { .. } => f.write_str("Legacy"),
        }
    }
}

impl<'a> Presented<'a> {
    /// Reads a presented refresh token; `None` when it has neither shape
    /// MA issues (then it is unknown, and nothing is looked up).
    #[must_use]
    pub fn parse(token: &'a str) -> Option<Self> {
        if let Some((sid, secret)) = token.split_once('.') {
            return (sid_bytes(sid).is_some() && is_b64url(secret, CODE_LEN)).then(|| {
                Self::Session {
                    sid,
                    digest: digest(token),
                }
            });
        }
        is_b64url(token, CODE_LEN).then(|| Self::Legacy {
            hash: hash_token(token),
        })
    }
}

/// A new refresh token of session `sid`, and its digest.
///
/// # Errors
/// [`Error::Random`] when the system random source fails.
pub fn new_refresh(sid: &str) -> Result<(String, Digest)> {
    let token = format!("{sid}.{}", random(32)?);
    let d = digest(&token);
    Ok((token, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_name_their_session_and_only_issued_shapes_parse() -> Result<()> {
        let sid = random(16)?;
        let (token, d) = new_refresh(&sid)?;
        assert_eq!(
            Presented::parse(&token),
            Some(Presented::Session {
                sid: &sid,
                digest: d
            })
        );
        assert_ne!(&d[..], token.as_bytes().get(..16).unwrap_or_default());
        // Another token of the same session has another digest.
        let (other, d2) = new_refresh(&sid)?;
        assert_ne!(other, token);
        assert_ne!(d, d2);
        // The old shape is read as such.
        let old = random(32)?;
        assert_eq!(
            Presented::parse(&old),
            Some(Presented::Legacy {
                hash: hash_token(&old)
            })
        );
        for bad in [
            "",
            "a.b.c",
            &old[1..],
            &format!("{}+", &old[1..]),
            &format!("{sid}."),
            &format!(".{}", &old),
            &format!("{}.{old}", &sid[1..]),
            &format!("{sid}.{}", &old[1..]),
            &format!("{sid}.{old}.x"),
            &format!("{sid}!.{old}"),
        ] {
            assert!(Presented::parse(bad).is_none(), "{bad:?} parsed");
        }
        Ok(())
    }

    #[test]
    fn session_ids_decode_to_their_bytes_only_when_made_by_ma() -> Result<()> {
        let sid = random(16)?;
        assert!(sid_bytes(&sid).is_some());
        assert!(sid_bytes("not-a-session-id").is_none());
        assert!(sid_bytes(&"A".repeat(23)).is_none());
        // 22 characters whose last one carries bits beyond 16 bytes: not
        // a spelling MA makes, so two strings never name one record.
        assert!(sid_bytes(&format!("{}B", "A".repeat(21))).is_none());
        Ok(())
    }

    #[test]
    fn debug_output_never_shows_a_digest() -> Result<()> {
        let sid = random(16)?;
        let (token, d) = new_refresh(&sid)?;
        let shown = format!("{:?}", Presented::parse(&token));
        assert!(shown.contains(&sid));
        assert!(!shown.contains(&format!("{d:?}")));
        assert!(!shown.contains(&token));
        Ok(())
    }
}
