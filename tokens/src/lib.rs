//! What AuthRealm's services and operator share: the access-token claims, JWKS
//! types, the JWT verifier, the signing-key-set file format, and the internal
//! service credential. One definition of each format, used by every side.

pub mod algorithm;
pub mod api;
pub mod claims;
pub mod clients;
pub mod clock;
pub mod credential;
pub mod digest;
pub mod duration;
pub mod jwks;
pub mod keypair;
pub mod keyset;
pub mod oauth;
pub mod oidc;
pub mod revocation;
pub mod uuid;
pub mod verify;

#[cfg(feature = "test-support")]
pub mod testsupport;

pub use algorithm::SigningAlgorithm;
pub use claims::AccessClaims;
pub use clock::Clock;
pub use credential::ServiceCredential;
pub use jwks::{Jwk, JwkSet};
pub use keyset::{KeyEntry, KeySetError, KeySetFile, KeyState};
pub use verify::{Verifier, VerifierConfig, VerifyError};

/// Seconds since the Unix epoch from the system clock. The only place the
/// shared code reads the clock; everything else takes `now` as a parameter.
#[must_use]
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `n` bytes from the operating system's CSPRNG (aws-lc-rs), base64url without padding.
///
/// # Errors
/// Fails only when the system random source is unavailable.
pub fn random_token(n: usize) -> Result<String, aws_lc_rs::error::Unspecified> {
    use base64::Engine as _;
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut buf)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}
