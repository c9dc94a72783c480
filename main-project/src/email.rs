//! Email addresses as OP accepts and stores them: one normal form, so one
//! mailbox is one account, and nothing that can hurt the database or fool a
//! reader gets through.
//!
//! 1. At most [`MAX_RAW_BYTES`] before any work; surrounding white space is
//!    trimmed.
//! 2. Refused outright: control characters (NUL included), format
//!    characters (zero-width spaces and joiners, bidirectional controls, the
//!    soft hyphen, tags), private-use and unassigned code points, separators
//!    inside the address, and the invisible fillers and selectors that render
//!    as nothing.
//! 3. Unicode NFKC, then lower case: `ＡＬＩＣＥ@…`, `alice@…` and
//!    `Alice@…` are one address, and so are NFD `jose\u{301}@…` and NFC
//!    `josé@…`.
//! 4. Local part: 1–64 bytes, no dot at either end or twice in a row, none
//!    of `@ < > ( ) [ ] , ; : " \ '` or a backquote.
//! 5. Domain: IDNA (UTS 46, strict: letters, digits, hyphens) to its ASCII
//!    form, so `bücher.example` and `xn--bcher-kva.example` are one domain;
//!    at least two labels, the last not all digits.
//! 6. The stored address (local part in Unicode, domain in ASCII) is at most
//!    [`MAX_EMAIL_BYTES`].

use unicode_normalization::UnicodeNormalization as _;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

use crate::error::Error;

/// Longest email stored (RFC 5321 path limit).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest input looked at (NFKC can expand text; bound the work first).
pub const MAX_RAW_BYTES: usize = 1024;

const SHAPE: &str = "the email must look like name@example.com";
const INVISIBLE: &str = "the email must not contain control, invisible or space characters";
/// The message for an address over the length limits.
pub const TOO_LONG: &str = "the email is too long";

/// Characters that are letters or marks by category yet show nothing.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
        | '\u{034F}'                                     // combining grapheme joiner
        | '\u{17B4}' | '\u{17B5}'                        // Khmer inherent vowels
        | '\u{180B}'..='\u{180F}'                        // Mongolian selectors
        | '\u{FE00}'..='\u{FE0F}'                        // variation selectors
        | '\u{E0100}'..='\u{E01EF}'
        | '\u{2800}'                                     // braille blank
    )
}

/// Whether `c` may never appear in an address.
fn is_refused(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::Surrogate
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::SpaceSeparator
    ) || c.is_whitespace()
        || is_invisible(c)
}

/// The one normal form of an address, or why it is refused.
///
/// # Errors
/// [`Error::InvalidEmail`] with a sentence that names no input.
pub fn normalize(raw: &str) -> Result<String, Error> {
    if raw.len() > MAX_RAW_BYTES {
        return Err(Error::InvalidEmail(TOO_LONG));
    }
    let trimmed = raw.trim();
    if trimmed.chars().any(is_refused) {
        return Err(Error::InvalidEmail(INVISIBLE));
    }
    let folded: String = trimmed
        .nfkc()
        .collect::<String>()
        .to_lowercase()
        .nfkc()
        .collect();
    // NFKC can turn a harmless character into a refused one (U+2028-like
    // compatibility forms); check again.
    if folded.chars().any(is_refused) {
        return Err(Error::InvalidEmail(INVISIBLE));
    }
    let (local, domain) = folded.rsplit_once('@').ok_or(Error::InvalidEmail(SHAPE))?;
    let forbidden = |c: char| "@<>()[],;:\"\\'`".contains(c);
    if local.is_empty()
        || local.len() > 64
        || local.chars().any(forbidden)
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err(Error::InvalidEmail(SHAPE));
    }
    let domain = ascii_domain(domain).ok_or(Error::InvalidEmail(SHAPE))?;
    let email = format!("{local}@{domain}");
    if email.len() > MAX_EMAIL_BYTES {
        return Err(Error::InvalidEmail(TOO_LONG));
    }
    Ok(email)
}

/// The domain in its ASCII (punycode) form, if it is a usable host name.
fn ascii_domain(domain: &str) -> Option<String> {
    let ascii = idna::domain_to_ascii_strict(domain).ok()?;
    let labels: Vec<&str> = ascii.split('.').collect();
    let well_formed = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    well_formed.then_some(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
            "a@1.2.3.4",
            "a@exa_mple.com",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(normalize(&long).is_err());
        Ok(())
    }

    #[test]
    fn look_alikes_are_one_address() -> Result<(), Error> {
        let same = |a: &str, b: &str| -> Result<(), Error> {
            assert_eq!(normalize(a)?, normalize(b)?, "{a:?} vs {b:?}");
            Ok(())
        };
        same("ａｌｉｃｅ@example.com", "alice@example.com")?;
        same("ALICE@EXAMPLE.COM", "alice@example.com")?;
        same("jose\u{301}@example.com", "jos\u{e9}@example.com")?;
        same("ada@bücher.example", "ada@xn--bcher-kva.example")?;
        same("ada@BÜCHER.example", "ada@bücher.example")?;
        same("ada@example。com", "ada@example.com")?;
        assert_eq!(
            normalize("ada@bücher.example")?,
            "ada@xn--bcher-kva.example"
        );
        Ok(())
    }

    #[test]
    fn control_and_invisible_characters_are_refused() {
        for bad in [
            "al\u{0}ice@example.com",
            "alice@exam\u{0}ple.com",
            "al\u{7}ice@example.com",
            "al\u{200B}ice@example.com",
            "al\u{200D}ice@example.com",
            "\u{FEFF}alice@example.com",
            "al\u{202E}ice@example.com",
            "al\u{AD}ice@example.com",
            "al\u{3164}ice@example.com",
            "al\u{FE0F}ice@example.com",
            "al\u{E000}ice@example.com",
            "al\u{2028}ice@example.com",
            "al\u{A0}ice@example.com",
            "alice@example.com\u{E0041}",
        ] {
            assert!(
                matches!(normalize(bad), Err(Error::InvalidEmail(m)) if m == INVISIBLE),
                "{bad:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn normal_forms_are_fixed_points_and_never_hold_refused_characters(raw in any::<String>()) {
            if let Ok(email) = normalize(&raw) {
                prop_assert_eq!(normalize(&email).ok(), Some(email.clone()));
                prop_assert!(!email.chars().any(is_refused));
                prop_assert!(email.len() <= MAX_EMAIL_BYTES);
            }
        }

        #[test]
        fn any_spelling_of_an_ascii_address_is_the_same_account(
            local in "[a-z0-9]{1,12}",
            host in "[a-z]{1,12}",
            upper in any::<bool>(),
            fullwidth in any::<bool>(),
        ) {
            let plain = format!("{local}@{host}.example");
            let mut spelled: String = if fullwidth {
                plain.chars().map(|c| if c.is_ascii_alphanumeric() {
                    char::from_u32(u32::from(c) - 0x21 + 0xFF01).unwrap_or(c)
                } else { c }).collect()
            } else {
                plain.clone()
            };
            if upper { spelled = spelled.to_uppercase(); }
            prop_assert_eq!(normalize(&spelled)?, plain);
        }
    }
}
