//! Identifiers and digests: random UUIDs for users and notes, the cheap
//! shape check that turns a garbage id into a 404 before the database, and
//! SHA-256 in hex (migration checksums, limiter keys, pending refreshes).

use crate::error::Error;

/// Lower-case hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// SHA-256 of `bytes`.
#[must_use]
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-256 of `bytes` in lower-case hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha256(bytes))
}

/// A random UUID (version 4) as text, from the system CSPRNG.
///
/// # Errors
/// [`Error::Random`] when the random source fails.
pub fn new_id() -> Result<String, Error> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| Error::Random)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(uuid_text(&b))
}

/// 16 bytes in the hyphenated lower-case UUID form.
#[must_use]
pub fn uuid_text(bytes: &[u8; 16]) -> String {
    let h = hex(bytes);
    let part = |r: std::ops::Range<usize>| h.get(r).unwrap_or_default();
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

/// Whether a string has the shape of [`new_id`]'s output (cheap 404 for garbage ids).
#[must_use]
pub fn looks_like_id(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_shaped_and_distinct() -> Result<(), Error> {
        let a = new_id()?;
        let b = new_id()?;
        assert_ne!(a, b);
        assert!(looks_like_id(&a), "{a}");
        assert!(!looks_like_id("1' OR '1'='1"));
        assert!(!looks_like_id(""));
        Ok(())
    }

    #[test]
    fn sha256_hex_matches_the_standard_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
