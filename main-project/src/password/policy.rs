//! The rules a new password must meet: a length in characters, a bound in
//! bytes (hashing input), and a small deny list of common passwords.

use crate::error::Error;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, in bytes (bounds hashing input and memory).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Common and breached passwords that pass the length rule; compared
/// case-insensitively. Small on purpose: a real deployment should add a
/// breached-password service.
const DENY_LIST: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "123456789123",
    "111111111111",
    "000000000000",
    "123123123123",
    "password1234",
    "password12345",
    "password123456",
    "passwordpassword",
    "password123!",
    "qwertyuiop12",
    "qwertyuiopasdf",
    "qwerty123456",
    "qwertyqwerty",
    "1q2w3e4r5t6y",
    "1qaz2wsx3edc",
    "zaq12wsxcde3",
    "abc123abc123",
    "abcdefghijkl",
    "iloveyou1234",
    "letmein12345",
    "welcome12345",
    "welcome123456",
    "changeme1234",
    "administrator",
    "admin1234567",
    "trustno1trustno1",
    "correcthorsebatterystaple",
    "monkey123456",
    "football1234",
    "baseball1234",
    "sunshine1234",
    "princess1234",
    "superman1234",
    "starwars1234",
    "dragon123456",
    "master123456",
    "P@ssw0rd1234",
    "p@ssword1234",
];

/// Checks a new password against the rules.
///
/// # Errors
/// The first rule it breaks: [`Error::PasswordTooLong`],
/// [`Error::PasswordTooShort`] or [`Error::PasswordTooCommon`].
pub fn check_new_password(password: &str, email: &str) -> Result<(), Error> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::PasswordTooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::PasswordTooShort);
    }
    let lower = password.to_lowercase();
    if DENY_LIST.iter().any(|d| d.to_lowercase() == lower) || lower == email {
        return Err(Error::PasswordTooCommon);
    }
    // One character repeated is as weak as anything on the list.
    let mut chars = password.chars();
    if let Some(first) = chars.next()
        && chars.all(|c| c == first)
    {
        return Err(Error::PasswordTooCommon);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_refuse_short_long_and_common() {
        assert!(matches!(
            check_new_password("short", "a@b.c"),
            Err(Error::PasswordTooShort)
        ));
        // 11 characters, but more than 12 bytes: characters count, not bytes.
        assert!(matches!(
            check_new_password("ééééééééééé", "a@b.c"),
            Err(Error::PasswordTooShort)
        ));
        assert!(matches!(
            check_new_password(&"x".repeat(1025), "a@b.c"),
            Err(Error::PasswordTooLong)
        ));
        assert!(matches!(
            check_new_password("Password1234", "a@b.c"),
            Err(Error::PasswordTooCommon)
        ));
        assert!(matches!(
            check_new_password("aaaaaaaaaaaaaaa", "a@b.c"),
            Err(Error::PasswordTooCommon)
        ));
        assert!(matches!(
            check_new_password("someone@example.com", "someone@example.com"),
            Err(Error::PasswordTooCommon)
        ));
        assert!(check_new_password("tangerine-oboe-42", "a@b.c").is_ok());
    }
}
