//! Micro-benchmarks of the shared token code: verification and signing per
//! algorithm (what OP pays per new token, and MA per mint).

use std::hint::black_box;

use authrealm_tokens::keyset::{FORMAT_VERSION, KeyEntry, KeySetFile, KeyState, SigningAlgorithm};
use authrealm_tokens::testsupport::{claims_for, header_for, sign_raw};
use authrealm_tokens::{AccessClaims, Verifier, VerifierConfig};
use criterion::{Criterion, criterion_group, criterion_main};

const ISS: &str = "https://auth.example.test";
const AUD: &str = "bench";
const NOW: i64 = 1_800_000_000;

fn algorithms(c: &mut Criterion) {
    for alg in [
        SigningAlgorithm::EdDSA,
        SigningAlgorithm::ES256,
        SigningAlgorithm::RS256,
    ] {
        let Ok(key) = KeyEntry::generate(alg, "k".into(), KeyState::Active, NOW) else {
            return;
        };
        let set = KeySetFile {
            version: FORMAT_VERSION,
            access_token_alg: None,
            keys: vec![key.clone()],
        };
        let Ok(jwks) = set.jwks() else { return };
        let (verifier, _) = Verifier::new(
            &jwks,
            VerifierConfig {
                issuer: ISS.into(),
                audience: AUD.into(),
                leeway_secs: 5,
            },
        );
        let Ok(token) = sign_raw(
            &key,
            &header_for(&key),
            &claims_for(ISS, AUD, "user-1", NOW),
        ) else {
            return;
        };
        c.bench_function(&format!("verify/{}", alg.as_str()), |b| {
            b.iter(|| verifier.verify(black_box(&token), NOW))
        });

        let Ok(encoding) = key.encoding_key() else {
            return;
        };
        let mut header = jsonwebtoken::Header::new(alg.jwt());
        header.kid = Some("k".into());
        let Ok(claims) =
            serde_json::from_value::<AccessClaims>(claims_for(ISS, AUD, "user-1", NOW))
        else {
            return;
        };
        c.bench_function(&format!("sign/{}", alg.as_str()), |b| {
            b.iter(|| jsonwebtoken::encode(black_box(&header), black_box(&claims), &encoding))
        });
    }
}

criterion_group!(benches, algorithms);
criterion_main!(benches);
