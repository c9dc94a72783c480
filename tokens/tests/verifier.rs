//! The verifier against tokens made by an independent signer (raw aws-lc-rs):
//! every error code, and a valid token of each algorithm.

use authrealm_tokens::keyset::{FORMAT_VERSION, KeyEntry, KeySetFile, KeyState, SigningAlgorithm};
use authrealm_tokens::testsupport::{claims_for, header_for, sign_hs256, sign_raw};
use authrealm_tokens::{Verifier, VerifierConfig, VerifyError};
use base64::Engine as _;
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ISS: &str = "https://auth.example.test";
const AUD: &str = "example-api";
const NOW: i64 = 1_800_000_000;

fn key(alg: SigningAlgorithm, kid: &str) -> Result<KeyEntry, Box<dyn std::error::Error>> {
    Ok(KeyEntry::generate(alg, kid.into(), KeyState::Active, NOW)?)
}

fn verifier_for(keys: &[&KeyEntry]) -> Result<Verifier, Box<dyn std::error::Error>> {
    let mut set = KeySetFile {
        version: FORMAT_VERSION,
        access_token_alg: None,
        keys: keys.iter().map(|k| (*k).clone()).collect(),
    };
    // Only one key may be active in a file; the others are published as next.
    for k in set.keys.iter_mut().skip(1) {
        k.state = KeyState::Next;
    }
    let (v, skipped) = Verifier::new(
        &set.jwks()?,
        VerifierConfig {
            issuer: ISS.into(),
            audience: AUD.into(),
            leeway_secs: 5,
        },
    );
    assert!(skipped.is_empty(), "{skipped:?}");
    Ok(v)
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[test]
fn valid_tokens_of_every_algorithm_verify() -> TestResult {
    for (alg, kid) in [
        (SigningAlgorithm::EdDSA, "ed"),
        (SigningAlgorithm::ES256, "es"),
        (SigningAlgorithm::RS256, "rs"),
    ] {
        let k = key(alg, kid)?;
        let v = verifier_for(&[&k])?;
        let mut claims = claims_for(ISS, AUD, "user-7", NOW);
        claims["email"] = json!("a@example.test");
        let token = sign_raw(&k, &header_for(&k), &claims)?;
        let got = v.verify(&token, NOW + 10)?;
        assert_eq!(got.sub, "user-7");
        assert_eq!(got.sid, "sid-user-7");
        assert_eq!(got.extra.get("email"), Some(&json!("a@example.test")));
    }
    Ok(())
}

#[test]
fn key_sets_with_several_algorithms_pick_the_key_by_kid() -> TestResult {
    let ed = key(SigningAlgorithm::EdDSA, "ed")?;
    let es = key(SigningAlgorithm::ES256, "es")?;
    let v = verifier_for(&[&ed, &es])?;
    for k in [&ed, &es] {
        let token = sign_raw(k, &header_for(k), &claims_for(ISS, AUD, "u", NOW))?;
        assert_eq!(v.verify(&token, NOW)?.sub, "u");
    }
    Ok(())
}

#[test]
fn malformed_tokens_are_malformed() -> TestResult {
    let k = key(SigningAlgorithm::EdDSA, "ed")?;
    let v = verifier_for(&[&k])?;
    let good = sign_raw(&k, &header_for(&k), &claims_for(ISS, AUD, "u", NOW))?;
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        String::new(),
        "abc".to_owned(),
        "a.b".to_owned(),
        format!("{good}.extra"),
        format!("!!!.{}.{}", parts[1], parts[2]),
        format!("{}.{}.{}", b64(&json!("not an object")), parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], parts[1], "%%%"),
        "x".repeat(authrealm_tokens::verify::MAX_TOKEN_BYTES + 1),
    ];
    for t in &cases {
        assert_eq!(v.verify(t, NOW), Err(VerifyError::Malformed), "{t:.40}");
    }
    // Correctly signed, but the payload is not a claim set.
    let not_claims = sign_raw(&k, &header_for(&k), &json!({"sub": "only"}))?;
    assert_eq!(v.verify(&not_claims, NOW), Err(VerifyError::Malformed));
    assert_eq!(VerifyError::Malformed.code(), "malformed");
    Ok(())
}

#[test]
fn tampered_or_foreign_signatures_are_bad_signature() -> TestResult {
    for alg in [
        SigningAlgorithm::EdDSA,
        SigningAlgorithm::ES256,
        SigningAlgorithm::RS256,
    ] {
        let k = key(alg, "k")?;
        let v = verifier_for(&[&k])?;
        let good = sign_raw(&k, &header_for(&k), &claims_for(ISS, AUD, "u", NOW))?;
        // Change the subject but keep the signature.
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(&claims_for(ISS, AUD, "admin", NOW)),
            parts[2]
        );
        assert_eq!(
            v.verify(&forged, NOW),
            Err(VerifyError::BadSignature),
            "{alg:?}"
        );
        // Same kid, other key.
        let impostor = key(alg, "k")?;
        let foreign = sign_raw(
            &impostor,
            &header_for(&impostor),
            &claims_for(ISS, AUD, "u", NOW),
        )?;
        assert_eq!(
            v.verify(&foreign, NOW),
            Err(VerifyError::BadSignature),
            "{alg:?}"
        );
    }
    assert_eq!(VerifyError::BadSignature.code(), "bad_signature");
    Ok(())
}

#[test]
fn unknown_or_missing_kid_is_unknown_kid() -> TestResult {
    let k = key(SigningAlgorithm::EdDSA, "known")?;
    let v = verifier_for(&[&k])?;
    let claims = claims_for(ISS, AUD, "u", NOW);
    let other = sign_raw(&k, &json!({"alg": "EdDSA", "kid": "other"}), &claims)?;
    assert_eq!(v.verify(&other, NOW), Err(VerifyError::UnknownKid));
    let none = sign_raw(&k, &json!({"alg": "EdDSA"}), &claims)?;
    assert_eq!(v.verify(&none, NOW), Err(VerifyError::UnknownKid));
    assert_eq!(VerifyError::UnknownKid.code(), "unknown_kid");
    Ok(())
}

#[test]
fn time_claims_are_checked_with_leeway() -> TestResult {
    let k = key(SigningAlgorithm::EdDSA, "ed")?;
    let v = verifier_for(&[&k])?;
    let token = sign_raw(&k, &header_for(&k), &claims_for(ISS, AUD, "u", NOW))?;
    // exp = NOW + 300, leeway 5 s.
    assert!(v.verify(&token, NOW + 304).is_ok());
    assert_eq!(v.verify(&token, NOW + 305), Err(VerifyError::Expired));
    // nbf = NOW.
    assert!(v.verify(&token, NOW - 5).is_ok());
    assert_eq!(v.verify(&token, NOW - 6), Err(VerifyError::NotYetValid));
    assert_eq!(VerifyError::Expired.code(), "expired");
    assert_eq!(VerifyError::NotYetValid.code(), "not_yet_valid");
    Ok(())
}

#[test]
fn a_token_issued_in_the_future_is_not_valid_yet() -> TestResult {
    let k = key(SigningAlgorithm::EdDSA, "ed")?;
    let v = verifier_for(&[&k])?;
    // Issued ten years ahead, otherwise valid now (nbf now, exp far ahead).
    let ten_years = 10 * 365 * 86_400;
    let mut claims = claims_for(ISS, AUD, "u", NOW);
    claims["iat"] = json!(NOW + ten_years);
    claims["exp"] = json!(NOW + ten_years + 300);
    let token = sign_raw(&k, &header_for(&k), &claims)?;
    assert_eq!(v.verify(&token, NOW), Err(VerifyError::NotYetValid));
    // Within the leeway (5 s) an `iat` a little ahead is clock skew, accepted.
    let mut skewed = claims_for(ISS, AUD, "u", NOW);
    skewed["iat"] = json!(NOW + 5);
    let token = sign_raw(&k, &header_for(&k), &skewed)?;
    assert!(v.verify(&token, NOW).is_ok());
    skewed["iat"] = json!(NOW + 6);
    let token = sign_raw(&k, &header_for(&k), &skewed)?;
    assert_eq!(v.verify(&token, NOW), Err(VerifyError::NotYetValid));
    Ok(())
}

#[test]
fn a_header_with_critical_extensions_is_refused() -> TestResult {
    let k = key(SigningAlgorithm::EdDSA, "ed")?;
    let v = verifier_for(&[&k])?;
    let claims = claims_for(ISS, AUD, "u", NOW);
    for crit in [
        json!(["exp"]),
        json!(["http://example.test/unknown"]),
        json!([]),
        json!(null),
        json!("b64"),
    ] {
        let mut header = header_for(&k);
        header["crit"] = crit.clone();
        header["http://example.test/unknown"] = json!(true);
        let token = sign_raw(&k, &header, &claims)?;
        assert_eq!(
            v.verify(&token, NOW),
            Err(VerifyError::Malformed),
            "crit {crit}"
        );
    }
    // Unknown parameters that are not critical are ignored (RFC 7515 §4).
    let mut header = header_for(&k);
    header["x-note"] = json!("ignored");
    assert!(v.verify(&sign_raw(&k, &header, &claims)?, NOW).is_ok());
    Ok(())
}

#[test]
fn issuer_and_audience_must_match() -> TestResult {
    let k = key(SigningAlgorithm::ES256, "es")?;
    let v = verifier_for(&[&k])?;
    let wrong_iss = sign_raw(
        &k,
        &header_for(&k),
        &claims_for("https://evil.test", AUD, "u", NOW),
    )?;
    assert_eq!(v.verify(&wrong_iss, NOW), Err(VerifyError::WrongIssuer));
    let wrong_aud = sign_raw(&k, &header_for(&k), &claims_for(ISS, "other-api", "u", NOW))?;
    assert_eq!(v.verify(&wrong_aud, NOW), Err(VerifyError::WrongAudience));
    assert_eq!(VerifyError::WrongIssuer.code(), "wrong_issuer");
    assert_eq!(VerifyError::WrongAudience.code(), "wrong_audience");
    Ok(())
}

#[test]
fn none_hmac_and_mismatched_algorithms_are_not_allowed() -> TestResult {
    let k = key(SigningAlgorithm::EdDSA, "ed")?;
    let v = verifier_for(&[&k])?;
    let claims = claims_for(ISS, AUD, "u", NOW);
    // alg=none with an empty signature.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "ed"})),
        b64(&claims)
    );
    assert_eq!(v.verify(&none, NOW), Err(VerifyError::AlgNotAllowed));
    // HS256 keyed with the published public key: the classic confusion attack.
    let jwks = serde_json::to_value(
        KeySetFile {
            version: FORMAT_VERSION,
            access_token_alg: None,
            keys: vec![k.clone()],
        }
        .jwks()?,
    )?;
    let public_x = jwks["keys"][0]["x"].as_str().unwrap_or_default().to_owned();
    let hs = sign_hs256(
        public_x.as_bytes(),
        &json!({"alg": "HS256", "kid": "ed"}),
        &claims,
    );
    assert_eq!(v.verify(&hs, NOW), Err(VerifyError::AlgNotAllowed));
    // A real ES256 signature presented under the EdDSA key's kid.
    let es = key(SigningAlgorithm::ES256, "ed")?;
    let mismatched = sign_raw(&es, &header_for(&es), &claims)?;
    assert_eq!(v.verify(&mismatched, NOW), Err(VerifyError::AlgNotAllowed));
    assert_eq!(VerifyError::AlgNotAllowed.code(), "alg_not_allowed");
    Ok(())
}

#[test]
fn tokens_signed_by_jsonwebtoken_verify_too() -> TestResult {
    // MA signs with jsonwebtoken; the same token must pass the shared verifier.
    let k = key(SigningAlgorithm::RS256, "rs")?;
    let v = verifier_for(&[&k])?;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rs".into());
    let token = jsonwebtoken::encode(&header, &claims_for(ISS, AUD, "u", NOW), &k.encoding_key()?)?;
    assert_eq!(v.verify(&token, NOW)?.sub, "u");
    Ok(())
}
