//! The JWT verifier OP uses (and anyone else may): checks the header, picks the
//! key by `kid`, verifies the signature with `jsonwebtoken`, then checks
//! `exp`/`nbf`/`iss`/`aud` against a `now` the caller passes in.

use std::collections::HashMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::algorithm::SigningAlgorithm;
use crate::claims::AccessClaims;
use crate::jwks::{JwkError, JwkSet};

/// Longest token the verifier will look at; anything larger is `malformed`.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused. [`VerifyError::code`] is the stable string clients see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not three base64url parts, bad JSON, missing claims, too long, or a
    /// header with a `crit` parameter (RFC 7515 §4.1.11: this verifier
    /// understands no JWS extension, so every critical one is refused).
    #[error("token is malformed")]
    Malformed,
    /// The signature does not match the header and claims.
    #[error("token signature is invalid")]
    BadSignature,
    /// No `kid`, or a `kid` that is not in the key set.
    #[error("token is signed by an unknown key")]
    UnknownKid,
    /// `exp` has passed.
    #[error("token has expired")]
    Expired,
    /// `nbf`, or `iat`, is still in the future (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iss` is not the expected issuer.
    #[error("token was issued by someone else")]
    WrongIssuer,
    /// `aud` is not the expected audience.
    #[error("token is meant for another audience")]
    WrongAudience,
    /// `none`, HMAC, or an algorithm that does not match the key.
    #[error("token algorithm is not allowed")]
    AlgNotAllowed,
}

impl VerifyError {
    /// Stable machine-readable code (also used as a metrics label).
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::UnknownKid => "unknown_kid",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::AlgNotAllowed => "alg_not_allowed",
        }
    }
}

/// What a token must say about who issued it and for whom.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: i64,
}

struct VerifyKey {
    alg: SigningAlgorithm,
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
}

/// Verifies access tokens against one JWKS snapshot. Build a new one when the
/// key set changes; verification itself takes `&self` and never allocates keys.
pub struct Verifier {
    keys: HashMap<String, VerifyKey>,
    config: VerifierConfig,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Whether the header names critical extensions (any value, even `null`).
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

impl Verifier {
    /// Builds a verifier from a JWKS. Keys that cannot be used (wrong type for
    /// their algorithm, bad material) are left out and returned, so one bad key
    /// does not take the others down.
    #[must_use]
    pub fn new(jwks: &JwkSet, config: VerifierConfig) -> (Self, Vec<JwkError>) {
        let mut keys = HashMap::with_capacity(jwks.keys.len());
        let mut skipped = Vec::new();
        for jwk in &jwks.keys {
            match jwk.decoding_key() {
                Ok(key) => {
                    let mut validation = jsonwebtoken::Validation::new(jwk.alg.jwt());
                    // Time, issuer and audience are checked below with the caller's clock.
                    validation.validate_exp = false;
                    validation.validate_nbf = false;
                    validation.validate_aud = false;
                    validation.required_spec_claims.clear();
                    keys.insert(
                        jwk.kid.clone(),
                        VerifyKey {
                            alg: jwk.alg,
                            key,
                            validation,
                        },
                    );
                }
                Err(e) => skipped.push(e),
            }
        }
        (Self { keys, config }, skipped)
    }

    /// Whether a key id is known.
    #[must_use]
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// Number of usable keys.
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Verifies `token` at time `now` (Unix seconds) and returns its claims.
    ///
    /// # Errors
    /// The first check that fails, as a [`VerifyError`].
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, VerifyError> {
        let claims: AccessClaims = self.decode(token)?;
        self.check_times(&claims, now)?;
        if claims.iss != self.config.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if claims.aud != self.config.audience {
            return Err(VerifyError::WrongAudience);
        }
        Ok(claims)
    }

    /// The issuer tokens must name (for checks of other token kinds).
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Checks size, header (`crit`, `alg`, `kid`) and signature, and reads
    /// the claims as `T`; no claim is checked.
    ///
    /// # Errors
    /// [`VerifyError::Malformed`], [`VerifyError::AlgNotAllowed`],
    /// [`VerifyError::UnknownKid`] or [`VerifyError::BadSignature`].
    pub fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::Malformed);
        }
        let header = parse_header(token)?;
        if header.crit {
            return Err(VerifyError::Malformed);
        }
        let alg = SigningAlgorithm::from_header(&header.alg).ok_or(VerifyError::AlgNotAllowed)?;
        let kid = header.kid.ok_or(VerifyError::UnknownKid)?;
        let key = self.keys.get(&kid).ok_or(VerifyError::UnknownKid)?;
        if key.alg != alg {
            return Err(VerifyError::AlgNotAllowed);
        }
        Ok(jsonwebtoken::decode::<T>(token, &key.key, &key.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => VerifyError::BadSignature,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => VerifyError::AlgNotAllowed,
                _ => VerifyError::Malformed,
            })?
            .claims)
    }
}

impl Verifier {
    /// The time checks of [`Verifier::verify`] alone, with this verifier's
    /// leeway: expired at `exp`, not valid before `nbf`, and never valid
    /// while `iat` is in the future (a token "issued" years ahead would
    /// otherwise also outlive a later "log out everywhere", which compares
    /// `iat`). For claims verified earlier and cached.
    ///
    /// # Errors
    /// [`VerifyError::Expired`] or [`VerifyError::NotYetValid`].
    pub fn check_times(&self, claims: &AccessClaims, now: i64) -> Result<(), VerifyError> {
        let leeway = self.config.leeway_secs;
        if now >= claims.exp.saturating_add(leeway) {
            return Err(VerifyError::Expired);
        }
        let not_before = claims.nbf.max(claims.iat);
        if now.saturating_add(leeway) < not_before {
            return Err(VerifyError::NotYetValid);
        }
        Ok(())
    }
}

/// Reads the `kid` of a token without verifying anything (for metrics and
/// deciding whether to refetch the JWKS).
///
/// # Errors
/// [`VerifyError::Malformed`] when the header cannot be read.
pub fn peek_kid(token: &str) -> Result<Option<String>, VerifyError> {
    parse_header(token).map(|h| h.kid)
}

fn parse_header(token: &str) -> Result<Header, VerifyError> {
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .map_err(|_| VerifyError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| VerifyError::Malformed)
}
