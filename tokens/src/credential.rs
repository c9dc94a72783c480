//! The internal service credential OP presents to MA's `/v1` API: a bearer
//! secret that never prints and is compared in constant time.

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// A shared bearer secret. `Debug` prints a placeholder, never the value.
#[derive(Clone)]
pub struct ServiceCredential(SecretString);

impl std::fmt::Debug for ServiceCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceCredential(<redacted>)")
    }
}

/// Why a credential could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The credential file could not be read.
    #[error("cannot read service credential file {path}")]
    Read {
        /// The path that was tried.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The credential is shorter than 16 characters after trimming.
    #[error("service credential is too short (at least 16 characters are required)")]
    TooShort,
}

impl ServiceCredential {
    /// Wraps a secret value; surrounding whitespace (a trailing newline in a
    /// mounted Secret file) is trimmed.
    ///
    /// # Errors
    /// [`CredentialError::TooShort`] when fewer than 16 characters remain.
    pub fn new(value: &str) -> Result<Self, CredentialError> {
        let value = value.trim();
        if value.len() < 16 {
            return Err(CredentialError::TooShort);
        }
        Ok(Self(SecretString::from(value.to_owned())))
    }

    /// Reads the credential from a file (a mounted Secret key).
    ///
    /// # Errors
    /// When the file cannot be read or holds too short a value.
    pub fn from_file(path: &std::path::Path) -> Result<Self, CredentialError> {
        let raw = std::fs::read_to_string(path).map_err(|source| CredentialError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(&raw)
    }

    /// A fresh random credential (256 bits, base64url).
    ///
    /// # Errors
    /// Fails only when the system random source is unavailable.
    pub fn generate() -> Result<Self, aws_lc_rs::error::Unspecified> {
        let token = crate::random_token(32)?;
        Ok(Self(SecretString::from(token)))
    }

    /// Constant-time comparison with a presented value.
    #[must_use]
    pub fn matches(&self, presented: &str) -> bool {
        let ours = self.0.expose_secret().as_bytes();
        // `ct_eq` on slices of different lengths returns false without
        // short-circuiting on content; the length itself is not secret.
        bool::from(ours.ct_eq(presented.as_bytes()))
    }

    /// Checks an `Authorization` header value of the form `Bearer <secret>`.
    #[must_use]
    pub fn matches_bearer(&self, header: &str) -> bool {
        header
            .strip_prefix("Bearer ")
            .is_some_and(|presented| self.matches(presented))
    }

    /// The secret, for sending it in an `Authorization` header.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_exact_value() -> Result<(), CredentialError> {
        let c = ServiceCredential::new("0123456789abcdef-secret\n")?;
        assert!(c.matches("0123456789abcdef-secret"));
        assert!(!c.matches("0123456789abcdef-secreT"));
        assert!(!c.matches("0123456789abcdef-secret-longer"));
        assert!(!c.matches(""));
        assert!(c.matches_bearer("Bearer 0123456789abcdef-secret"));
        assert!(!c.matches_bearer("Basic 0123456789abcdef-secret"));
        Ok(())
    }

    #[test]
    fn short_values_are_rejected_and_debug_hides_the_value() -> Result<(), CredentialError> {
        assert!(matches!(
            ServiceCredential::new("short"),
            Err(CredentialError::TooShort)
        ));
        let c = ServiceCredential::new("0123456789abcdef-secret")?;
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
        Ok(())
    }
}
