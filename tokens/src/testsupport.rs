//! Test support: a JWT signer written directly on aws-lc-rs, independent of
//! `jsonwebtoken`, so the verifier (and MA's signer) are checked against a
//! second implementation rather than only against themselves.

use aws_lc_rs::signature::{self as sig};
use base64::Engine as _;

use crate::algorithm::SigningAlgorithm;
use crate::keyset::{KeyEntry, KeySetError};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Why the independent signer failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key did not parse.
    #[error(transparent)]
    Key(#[from] KeySetError),
    /// aws-lc-rs refused to sign.
    #[error("signing failed")]
    Crypto,
}

/// Signs `header` and `claims` (any JSON) with `key` as a compact JWS, using
/// aws-lc-rs directly. The header is used exactly as given.
///
/// # Errors
/// When the key does not parse or signing fails.
pub fn sign_raw(
    key: &KeyEntry,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> Result<String, SignError> {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let der = key.pkcs8_der()?;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let signature: Vec<u8> = match key.alg {
        SigningAlgorithm::EdDSA => sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|_| SignError::Crypto)?
            .sign(input.as_bytes())
            .as_ref()
            .to_vec(),
        SigningAlgorithm::ES256 => {
            sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                .map_err(|_| SignError::Crypto)?
                .sign(&rng, input.as_bytes())
                .map_err(|_| SignError::Crypto)?
                .as_ref()
                .to_vec()
        }
        SigningAlgorithm::RS256 => {
            let kp = sig::RsaKeyPair::from_pkcs8(&der).map_err(|_| SignError::Crypto)?;
            let mut out = vec![0u8; kp.public_modulus_len()];
            kp.sign(&sig::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut out)
                .map_err(|_| SignError::Crypto)?;
            out
        }
    };
    Ok(format!("{input}.{}", b64(&signature)))
}

/// Signs with HMAC-SHA256 under `secret`: the classic "alg confusion" attack
/// token a verifier must refuse.
#[must_use]
pub fn sign_hs256(secret: &[u8], header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// A standard header for `key`: `{"alg": .., "kid": .., "typ": "JWT"}`.
#[must_use]
pub fn header_for(key: &KeyEntry) -> serde_json::Value {
    serde_json::json!({ "alg": key.alg.as_str(), "kid": key.kid, "typ": "JWT" })
}

/// A complete, valid claim set around `now` (5 minutes of life).
#[must_use]
pub fn claims_for(issuer: &str, audience: &str, subject: &str, now: i64) -> serde_json::Value {
    serde_json::json!({
        "iss": issuer, "aud": audience, "sub": subject,
        "iat": now, "nbf": now, "exp": now + 300,
        "jti": format!("jti-{subject}-{now}"), "sid": format!("sid-{subject}"),
    })
}

/// Verified access claims as a revocation view checks them: `jti`, `sid`,
/// `sub` and `iat` as given, the rest fixed.
#[must_use]
pub fn access_claims(jti: &str, sid: &str, sub: &str, iat: i64) -> crate::AccessClaims {
    crate::AccessClaims {
        iss: "i".into(),
        sub: sub.into(),
        aud: "a".into(),
        exp: iat + 300,
        iat,
        nbf: iat,
        jti: jti.into(),
        sid: sid.into(),
        extra: serde_json::Map::new(),
    }
}

/// Queues on `pipe` what MA's log writers do for `records` (encoded with
/// [`crate::revocation::LogRecord::encode`], every one of them in
/// `bucket`): append them to the bucket's string, make it expire at the
/// bucket's end, and list the bucket. Tests and the benchmark write a log
/// that exists without MA this way.
pub fn append_log(
    pipe: &mut redis::Pipeline,
    keys: &crate::revocation::RevocationKeys,
    bucket: i64,
    records: &[u8],
) {
    let key = keys.log(bucket);
    let end = crate::revocation::log_bucket_end(bucket);
    pipe.append(&key, records)
        .ignore()
        .cmd("EXPIREAT")
        .arg(&key)
        .arg(end)
        .ignore()
        .zadd(keys.log_buckets(), bucket, end)
        .ignore();
}
