//! The signature algorithms AuthRealm signs with, and how each is named in
//! JWT headers, JWKs, flags and `jsonwebtoken`.

use serde::{Deserialize, Serialize};

/// Signature algorithms AuthRealm signs with. Nothing else is ever accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    /// Ed25519 (RFC 8037). The default.
    EdDSA,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
}

impl SigningAlgorithm {
    /// The name used in JWT headers and JWKs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    /// Parses a JWT `alg` header value; `none`, HMAC and every other algorithm give `None`.
    #[must_use]
    pub fn from_header(alg: &str) -> Option<Self> {
        match alg {
            "EdDSA" => Some(Self::EdDSA),
            "ES256" => Some(Self::ES256),
            "RS256" => Some(Self::RS256),
            _ => None,
        }
    }

    /// The matching `jsonwebtoken` algorithm.
    #[must_use]
    pub fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

impl std::str::FromStr for SigningAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_header(s)
            .ok_or_else(|| format!("unsupported algorithm {s:?} (EdDSA, ES256 or RS256)"))
    }
}
