//! The JWKS cache: a new key is picked up on its first token (one refetch),
//! and a flood of made-up `kid`s causes at most one refetch per interval
//! (counted by MA's own `authrealm_ma_jwks_requests_total`). OP runs on a
//! manual clock: the refetch interval passes when the test moves it.

use std::time::Duration;

use authrealm_tokens::Clock;
use authrealm_tokens::keyset::{KeyEntry, KeyState, SigningAlgorithm};
use authrealm_tokens::testsupport::{claims_for, header_for, sign_raw};
use serde_json::json;

use crate::helpers::{AUDIENCE, Mode, TestResult, eventually, random_suffix, stack_with};

async fn unknown_kids(mode: Mode) -> TestResult {
    let now = authrealm_tokens::unix_now();
    let clock = Clock::manual(now);
    let op_clock = clock.clone();
    let mut st = stack_with(mode, move |c| {
        c.jwks_min_refetch_interval = Duration::from_secs(3);
        c.jwks_refresh_interval = Duration::from_secs(3600);
        c.clock = op_clock;
    })
    .await?;
    let http = reqwest::Client::new();
    let iss = st.ma.issuer.clone();

    // MA publishes a new (next) key; OP has not seen it yet.
    let next = KeyEntry::generate(
        SigningAlgorithm::ES256,
        format!("k2-{}", random_suffix()?),
        KeyState::Next,
        now,
    )?;
    st.env.keys.push(next.clone());
    st.env.write_keys()?;
    let jwks_url = format!("{}/.well-known/jwks.json", st.ma.base());
    eventually("MA publishes the new key", Duration::from_secs(10), || {
        let http = http.clone();
        let url = jwks_url.clone();
        let kid = next.kid.clone();
        async move { Ok(http.get(&url).send().await?.text().await?.contains(&kid)) }
    })
    .await?;

    // Let the start-up fetch's interval pass, then a token of the new key:
    // one refetch, then accepted.
    clock.advance(3);
    let before = st.ma.jwks_requests(&http).await?;
    let token = sign_raw(
        &next,
        &header_for(&next),
        &claims_for(&iss, AUDIENCE, "user-9", now),
    )?;
    let r = st.api.get("/api/v1/session", Some(&token)).await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(st.ma.jwks_requests(&http).await? - before, 1);

    // A flood of made-up kids right after: no further fetch in the interval.
    let active = st.env.active_key()?.clone();
    let before = st.ma.jwks_requests(&http).await?;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let api = st.api.clone();
        let header = json!({ "alg": "EdDSA", "kid": format!("made-up-{i}"), "typ": "JWT" });
        let t = sign_raw(&active, &header, &claims_for(&iss, AUDIENCE, "user-9", now))?;
        tasks.push(tokio::spawn(async move {
            api.get("/api/v1/session", Some(&t)).await
        }));
    }
    for t in tasks {
        let r = t.await??;
        assert_eq!((r.status, r.code()), (401, "token_unknown_kid"), "{r:?}");
    }
    let fetched = st.ma.jwks_requests(&http).await? - before;
    assert!(fetched <= 1, "{fetched} JWKS fetches for one flood");
    // After the interval, another unknown kid may trigger one more fetch.
    clock.advance(3);
    let before = st.ma.jwks_requests(&http).await?;
    let header = json!({ "alg": "EdDSA", "kid": "made-up-later", "typ": "JWT" });
    let t = sign_raw(&active, &header, &claims_for(&iss, AUDIENCE, "user-9", now))?;
    for _ in 0..10 {
        st.api.get("/api/v1/session", Some(&t)).await?;
    }
    assert_eq!(st.ma.jwks_requests(&http).await? - before, 1);
    Ok(())
}

both_modes!(unknown_kids: unknown_kids_postgres_redis, unknown_kids_sqlite_memory);
