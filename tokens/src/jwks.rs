//! JSON Web Key Set types (RFC 7517) for the public signing keys MA publishes:
//! Ed25519 (`OKP`), P-256 (`EC`) and RSA keys, one shape each.

use serde::{Deserialize, Serialize};

use crate::algorithm::SigningAlgorithm;

/// A public key as published in the JWKS. Private members never appear here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key id, matched against the `kid` header of a token.
    pub kid: String,
    /// Algorithm the key signs with.
    pub alg: SigningAlgorithm,
    /// Intended use: always `sig`.
    #[serde(rename = "use", default = "sig")]
    pub use_: String,
    /// The key material, tagged by `kty`.
    #[serde(flatten)]
    pub params: JwkParams,
}

fn sig() -> String {
    "sig".to_owned()
}

/// Key material by key type; coordinates and moduli are base64url without padding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub enum JwkParams {
    /// Octet key pair (RFC 8037), `crv` = `Ed25519`.
    #[serde(rename = "OKP")]
    Okp {
        /// Curve name.
        crv: String,
        /// Public key bytes.
        x: String,
    },
    /// Elliptic curve key, `crv` = `P-256`.
    #[serde(rename = "EC")]
    Ec {
        /// Curve name.
        crv: String,
        /// X coordinate.
        x: String,
        /// Y coordinate.
        y: String,
    },
    /// RSA public key.
    #[serde(rename = "RSA")]
    Rsa {
        /// Modulus.
        n: String,
        /// Public exponent.
        e: String,
    },
}

/// A JWK Set document, as served at `/.well-known/jwks.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys; a set may hold keys of several algorithms at once.
    pub keys: Vec<Jwk>,
}

/// Why a JWK cannot be used for verification.
#[derive(Debug, thiserror::Error)]
pub enum JwkError {
    /// The key type or curve does not fit the declared algorithm.
    #[error("key {kid}: key type does not match algorithm {alg:?}")]
    Mismatch {
        /// Offending key id.
        kid: String,
        /// Its declared algorithm.
        alg: SigningAlgorithm,
    },
    /// The key material was rejected by the crypto library.
    #[error("key {kid}: invalid key material")]
    Invalid {
        /// Offending key id.
        kid: String,
        /// The library's reason.
        #[source]
        source: jsonwebtoken::errors::Error,
    },
}

impl Jwk {
    /// The `jsonwebtoken` decoding key for this public key, checking that the
    /// key type matches the algorithm.
    ///
    /// # Errors
    /// [`JwkError`] when `kty`/`crv` and `alg` disagree or the material is invalid.
    pub fn decoding_key(&self) -> Result<jsonwebtoken::DecodingKey, JwkError> {
        use jsonwebtoken::DecodingKey;
        let invalid = |source| JwkError::Invalid {
            kid: self.kid.clone(),
            source,
        };
        match (&self.params, self.alg) {
            (JwkParams::Okp { crv, x }, SigningAlgorithm::EdDSA) if crv == "Ed25519" => {
                DecodingKey::from_ed_components(x).map_err(invalid)
            }
            (JwkParams::Ec { crv, x, y }, SigningAlgorithm::ES256) if crv == "P-256" => {
                DecodingKey::from_ec_components(x, y).map_err(invalid)
            }
            (JwkParams::Rsa { n, e }, SigningAlgorithm::RS256) => {
                DecodingKey::from_rsa_components(n, e).map_err(invalid)
            }
            _ => Err(JwkError::Mismatch {
                kid: self.kid.clone(),
                alg: self.alg,
            }),
        }
    }
}
