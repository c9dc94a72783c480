//! Random and hostile input for the parsers of this crate that face the
//! network or a mounted file: the verifier (any string; any header and claim
//! set, correctly signed), `peek_kid`, the key-set file and durations. None
//! may panic, and the verifier may accept only what it should.

use authrealm_tokens::keyset::{FORMAT_VERSION, KeyEntry, KeySetFile, KeyState, SigningAlgorithm};
use authrealm_tokens::testsupport::{claims_for, header_for, sign_raw};
use authrealm_tokens::{Verifier, VerifierConfig, duration, verify};
use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const ISS: &str = "https://auth.example.test";
const AUD: &str = "example-api";
const NOW: i64 = 1_800_000_000;
const LEEWAY: i64 = 5;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        (NOW - 1000..NOW + 1000).prop_map(|n| json!(n)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![Just(ISS), Just(AUD), Just("EdDSA"), Just("k")].prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A claim set near a valid one: each registered claim kept, dropped, or
/// replaced by any JSON value; extra claims added.
fn arb_claims() -> impl Strategy<Value = Value> {
    let names = ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid"];
    (
        prop::collection::vec(
            prop_oneof![
                17 => Just(None),
                1 => Just(Some(Value::Null)),
                2 => arb_json().prop_map(Some),
            ],
            names.len(),
        ),
        prop::collection::vec(any::<bool>(), names.len()),
        prop::collection::btree_map("[a-z_]{1,8}", arb_json(), 0..4),
        prop_oneof![3 => Just(0i64), 1 => -50i64..50, 1 => Just(10 * 365 * 86_400i64)],
    )
        .prop_map(move |(replace, drop, extra, iat_shift)| {
            let mut claims = claims_for(ISS, AUD, "user", NOW);
            claims["iat"] = json!(NOW + iat_shift);
            for (i, name) in names.iter().enumerate() {
                if let Some(obj) = claims.as_object_mut() {
                    match &replace[i] {
                        Some(Value::Null) if drop[i] => {
                            obj.remove(*name);
                        }
                        Some(v) => {
                            obj.insert((*name).to_owned(), v.clone());
                        }
                        None => {}
                    }
                }
            }
            if let Some(obj) = claims.as_object_mut() {
                for (k, v) in extra {
                    obj.entry(k).or_insert(v);
                }
            }
            claims
        })
}

/// A header near a valid one: `alg`, `kid`, `crit` and others varied.
fn arb_header() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            6 => Just(json!("EdDSA")),
            1 => Just(json!("ES256")),
            1 => Just(json!("none")),
            1 => Just(json!("HS256")),
            1 => arb_json(),
        ],
        prop_oneof![6 => Just(json!("ed")), 1 => Just(json!("other")), 1 => arb_json()],
        prop::option::weighted(0.2, arb_json()),
        prop::collection::btree_map("[a-z]{1,6}", arb_json(), 0..3),
    )
        .prop_map(|(alg, kid, crit, extra)| {
            let mut h = Map::new();
            for (k, v) in extra {
                h.insert(k, v);
            }
            h.insert("alg".into(), alg);
            h.insert("kid".into(), kid);
            if let Some(c) = crit {
                h.insert("crit".into(), c);
            }
            Value::Object(h)
        })
}

fn fixture() -> Result<(KeyEntry, Verifier), TestCaseError> {
    let fail = |e: authrealm_tokens::KeySetError| TestCaseError::fail(e.to_string());
    let key = KeyEntry::generate(SigningAlgorithm::EdDSA, "ed".into(), KeyState::Active, NOW)
        .map_err(fail)?;
    let set = KeySetFile {
        version: FORMAT_VERSION,
        access_token_alg: None,
        keys: vec![key.clone()],
    };
    let (v, _) = Verifier::new(
        &set.jwks().map_err(fail)?,
        VerifierConfig {
            issuer: ISS.into(),
            audience: AUD.into(),
            leeway_secs: LEEWAY,
        },
    );
    Ok((key, v))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_string_is_refused_without_panicking(token in ".{0,300}", dots in "[A-Za-z0-9_.-]{0,300}") {
        let (_, v) = fixture()?;
        prop_assert!(v.verify(&token, NOW).is_err());
        prop_assert!(v.verify(&dots, NOW).is_err());
        let _ = verify::peek_kid(&token);
        let _ = verify::peek_kid(&dots);
    }

    #[test]
    fn any_json_in_any_part_is_refused(header in arb_json(), payload in arb_json(), sig in prop::collection::vec(any::<u8>(), 0..80)) {
        let (_, v) = fixture()?;
        let token = format!("{}.{}.{}", b64(header.to_string().as_bytes()), b64(payload.to_string().as_bytes()), b64(&sig));
        prop_assert!(v.verify(&token, NOW).is_err());
        let _ = verify::peek_kid(&token);
    }

    #[test]
    fn correctly_signed_hostile_tokens_pass_only_when_every_rule_holds(header in arb_header(), claims in arb_claims(), at in NOW - 400..NOW + 400) {
        let (key, v) = fixture()?;
        let Ok(token) = sign_raw(&key, &header, &claims) else {
            return Ok(());
        };
        if let Ok(got) = v.verify(&token, at) {
            // Accepted: the header is the key's own, uncritical; the claims
            // are exactly right for `at`.
            prop_assert_eq!(&header["alg"], &json!("EdDSA"));
            prop_assert_eq!(&header["kid"], &json!("ed"));
            prop_assert!(header.get("crit").is_none());
            prop_assert_eq!(got.iss.as_str(), ISS);
            prop_assert_eq!(got.aud.as_str(), AUD);
            prop_assert!(at < got.exp.saturating_add(LEEWAY));
            prop_assert!(at.saturating_add(LEEWAY) >= got.nbf);
            prop_assert!(at.saturating_add(LEEWAY) >= got.iat);
        }
    }

    #[test]
    fn the_unchanged_valid_token_is_accepted(at in NOW - LEEWAY..NOW + 300 + LEEWAY) {
        let (key, v) = fixture()?;
        let token = sign_raw(&key, &header_for(&key), &claims_for(ISS, AUD, "user", NOW));
        prop_assert!(token.is_ok_and(|t| v.verify(&t, at).is_ok()));
    }

    #[test]
    fn any_key_set_file_is_refused_or_valid(bytes in prop::collection::vec(any::<u8>(), 0..400), doc in arb_json()) {
        let _ = KeySetFile::parse(&bytes);
        if let Ok(set) = KeySetFile::parse(doc.to_string().as_bytes()) {
            prop_assert!(set.active().is_some());
        }
    }

    #[test]
    fn key_set_entries_with_hostile_fields_are_refused_or_valid(
        version in prop_oneof![Just(json!(1)), arb_json()],
        kid in prop_oneof![Just(json!("k")), arb_json()],
        alg in prop_oneof![Just(json!("EdDSA")), Just(json!("RS256")), arb_json()],
        state in prop_oneof![Just(json!("active")), Just(json!("next")), arb_json()],
        pem in prop_oneof![
            Just("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned()),
            ".{0,200}",
        ],
        created in arb_json(),
    ) {
        let doc = json!({
            "version": version,
            "keys": [{ "kid": kid, "alg": alg, "state": state, "privateKeyPem": pem, "createdAt": created }],
        });
        if let Ok(set) = KeySetFile::parse(doc.to_string().as_bytes()) {
            prop_assert!(set.validate().is_ok());
        }
    }

    #[test]
    fn durations_never_panic_and_valid_ones_round_trip(text in ".{0,40}", parts in prop::collection::vec((0u64..100_000, prop_oneof![Just('s'), Just('m'), Just('h'), Just('d')]), 1..5)) {
        let _ = duration::parse(&text);
        let written: String = parts.iter().map(|(n, u)| format!("{n}{u}")).collect();
        let expected: u64 = parts.iter().map(|(n, u)| n * match u { 's' => 1, 'm' => 60, 'h' => 3600, _ => 86_400 }).sum();
        let parsed = duration::parse(&written);
        prop_assert_eq!(parsed.clone().map(|d| d.as_secs()), Ok(expected));
        if let Ok(d) = parsed {
            prop_assert_eq!(duration::parse(&duration::format(d)), Ok(d));
        }
    }
}
