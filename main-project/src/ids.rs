//! Identifiers: random UUIDs for users and notes, and the cheap shape
//! check that turns a garbage id into a 404 before the database.

use crate::error::Error;

/// A random UUID (version 4) as text, from the system CSPRNG.
///
/// # Errors
/// [`Error::Random`] when the random source fails.
pub fn new_id() -> Result<String, Error> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| Error::Random)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(authrealm_tokens::uuid::text(&b))
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
}
