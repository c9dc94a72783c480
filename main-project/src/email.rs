//! Email addresses as OP accepts and stores them: one normal form, so one
//! mailbox is one account.

use crate::error::Error;

/// Longest email accepted (RFC 5321 path limit).
pub const MAX_EMAIL_BYTES: usize = 254;

const SHAPE: &str = "the email must look like name@example.com";

/// Normalises and checks an email: trimmed, lower-cased, one `@`, a dotted
/// domain, no spaces, control or quoting characters.
///
/// # Errors
/// [`Error::InvalidEmail`].
pub fn normalize(raw: &str) -> Result<String, Error> {
    let bad = || Error::InvalidEmail(SHAPE);
    let email = raw.trim().to_lowercase();
    if email.is_empty() || email.len() > MAX_EMAIL_BYTES {
        return Err(bad());
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(bad)?;
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || "@<>()[],;:\"\\'`".contains(c);
    if local.is_empty()
        || local.len() > 64
        || local.chars().any(forbidden)
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err(bad());
    }
    let labels_ok = domain.split('.').all(|l| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    if !domain.contains('.') || !labels_ok {
        return Err(bad());
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() -> Result<(), Error> {
        assert_eq!(normalize("  Alice@Example.COM ")?, "alice@example.com");
        assert_eq!(
            normalize("a.b+tag@sub.example.org")?,
            "a.b+tag@sub.example.org"
        );
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a b@example.com",
            "a@exa mple.com",
            "a@@example.com",
            "'; DROP TABLE users; --@example.com",
            "a@example..com",
            ".a@example.com",
            "a@-example.com",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(normalize(&long).is_err());
        Ok(())
    }
}
