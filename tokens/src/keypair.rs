//! Private key material of a key-set entry: generating a key pair (written
//! as PKCS#8 v1 PEM, the form OpenSSL, Python `cryptography` and every other
//! common tool reads), reading it back (v1, or v2 with the public key as
//! RFC 5958 allows), the public half as a JWK, and the signing key for
//! `jsonwebtoken`.

use aws_lc_rs::signature::{self as sig, KeyPair as _};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use crate::algorithm::SigningAlgorithm;
use crate::jwks::{Jwk, JwkParams};
use crate::keyset::{KeyEntry, KeySetError, KeyState};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl KeyEntry {
    /// Generates a new key pair for `alg` with the given id and state.
    ///
    /// # Errors
    /// [`KeySetError::Generate`] when the random source or key generation fails.
    pub fn generate(
        alg: SigningAlgorithm,
        kid: String,
        state: KeyState,
        now: i64,
    ) -> Result<Self, KeySetError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let der: Vec<u8> = match alg {
            // v1 (RFC 5208), not the v2 `generate_pkcs8` writes: OpenSSL 3.0
            // and Python `cryptography` refuse v2 Ed25519 keys.
            SigningAlgorithm::EdDSA => sig::Ed25519KeyPair::generate_pkcs8v1(&rng)
                .map_err(|_| KeySetError::Generate)?
                .as_ref()
                .to_vec(),
            SigningAlgorithm::ES256 => {
                sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| KeySetError::Generate)?
                    .as_ref()
                    .to_vec()
            }
            SigningAlgorithm::RS256 => {
                use aws_lc_rs::encoding::AsDer as _;
                let kp = sig::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| KeySetError::Generate)?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> =
                    kp.as_der().map_err(|_| KeySetError::Generate)?;
                der.as_ref().to_vec()
            }
        };
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der));
        Ok(Self {
            kid,
            alg,
            state,
            private_key_pem: SecretString::from(pem),
            created_at: now,
            activated_at: (state == KeyState::Active).then_some(now),
            retired_at: None,
            remove_after: None,
        })
    }

    /// The PKCS#8 DER bytes of the private key.
    pub(crate) fn der(&self) -> Result<Vec<u8>, KeySetError> {
        let bad = || KeySetError::BadKey {
            kid: self.kid.clone(),
            alg: self.alg,
        };
        let parsed =
            pem::parse(self.private_key_pem.expose_secret().as_bytes()).map_err(|_| bad())?;
        if parsed.tag() != "PRIVATE KEY" {
            return Err(bad());
        }
        Ok(parsed.into_contents())
    }

    /// The public half as a JWK.
    ///
    /// # Errors
    /// [`KeySetError::BadKey`] when the private key does not parse for its algorithm.
    pub fn public_jwk(&self) -> Result<Jwk, KeySetError> {
        let bad = || KeySetError::BadKey {
            kid: self.kid.clone(),
            alg: self.alg,
        };
        let der = self.der()?;
        let params = match self.alg {
            SigningAlgorithm::EdDSA => {
                let kp =
                    sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|_| bad())?;
                JwkParams::Okp {
                    crv: "Ed25519".to_owned(),
                    x: b64(kp.public_key().as_ref()),
                }
            }
            SigningAlgorithm::ES256 => {
                let kp = sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                    .map_err(|_| bad())?;
                let point = kp.public_key().as_ref();
                // Uncompressed SEC1 point: 0x04 || X (32) || Y (32).
                if point.len() != 65 || point[0] != 4 {
                    return Err(bad());
                }
                JwkParams::Ec {
                    crv: "P-256".to_owned(),
                    x: b64(&point[1..33]),
                    y: b64(&point[33..65]),
                }
            }
            SigningAlgorithm::RS256 => {
                let kp = sig::RsaKeyPair::from_pkcs8(&der).map_err(|_| bad())?;
                let parts = sig::RsaPublicKeyComponents::<Vec<u8>>::from(kp.public_key());
                JwkParams::Rsa {
                    n: b64(&parts.n),
                    e: b64(&parts.e),
                }
            }
        };
        Ok(Jwk {
            kid: self.kid.clone(),
            alg: self.alg,
            use_: "sig".to_owned(),
            params,
        })
    }

    /// The `jsonwebtoken` signing key. Parse it once and keep it: parsing is
    /// far costlier than signing for RSA.
    ///
    /// # Errors
    /// [`KeySetError::BadKey`] when the PEM does not parse for the algorithm.
    pub fn encoding_key(&self) -> Result<jsonwebtoken::EncodingKey, KeySetError> {
        use jsonwebtoken::EncodingKey;
        let bad = |_| KeySetError::BadKey {
            kid: self.kid.clone(),
            alg: self.alg,
        };
        let pem = self.private_key_pem.expose_secret().as_bytes();
        match self.alg {
            SigningAlgorithm::EdDSA => EncodingKey::from_ed_pem(pem).map_err(bad),
            SigningAlgorithm::ES256 => EncodingKey::from_ec_pem(pem).map_err(bad),
            SigningAlgorithm::RS256 => EncodingKey::from_rsa_pem(pem).map_err(bad),
        }
    }

    /// PKCS#8 DER, for independent signers in tests.
    ///
    /// # Errors
    /// [`KeySetError::BadKey`] when the PEM is not a private key.
    pub fn pkcs8_der(&self) -> Result<Vec<u8>, KeySetError> {
        self.der()
    }
}
