//! Key sets from a directory laid out the way Kubernetes mounts a Secret
//! (`keyset.json -> ..data/keyset.json`, `..data -> ..<version>`, swapped by
//! a symlink rename): loading, reloading under load, refusing bad sets.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use auth_service::Clock;
use authrealm_tokens::api;
use authrealm_tokens::keyset::FORMAT_VERSION;
use authrealm_tokens::{
    JwkSet, KeyEntry, KeySetFile, KeyState, SigningAlgorithm, Verifier, VerifierConfig,
};

use crate::helpers::{Backend, TestApp, TestResult, err, spawn_with, test_config};

fn key(kid: &str, state: KeyState) -> TestResult<KeyEntry> {
    Ok(KeyEntry::generate(
        SigningAlgorithm::EdDSA,
        kid.to_owned(),
        state,
        authrealm_tokens::unix_now(),
    )?)
}

fn set(keys: Vec<KeyEntry>) -> TestResult<Vec<u8>> {
    Ok(KeySetFile {
        version: FORMAT_VERSION,
        access_token_alg: None,
        keys,
    }
    .to_json()?)
}

/// Publishes `bytes` as the Secret's new version, atomically, like the kubelet.
fn publish(dir: &Path, version: usize, bytes: &[u8]) -> TestResult {
    let data_dir = format!("..v{version}");
    std::fs::create_dir(dir.join(&data_dir))?;
    std::fs::write(dir.join(&data_dir).join("keyset.json"), bytes)?;
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(&data_dir, &tmp)?;
    std::fs::rename(&tmp, dir.join("..data"))?;
    let link = dir.join("keyset.json");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("..data/keyset.json", &link)?;
    }
    Ok(())
}

async fn spawn_on_dir(dir: &Path) -> TestResult<TestApp> {
    let mut config = test_config(Backend::Memory)?;
    config.keys_dir = Some(dir.to_path_buf());
    spawn_with(config, Clock::System).await
}

async fn wait_for_metric(app: &TestApp, sample: &str, at_least: f64) -> TestResult {
    for _ in 0..100 {
        if app.metric(sample).await? >= at_least {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(err(format!("{sample} never reached {at_least}")))
}

fn kid_of(token: &str) -> TestResult<String> {
    authrealm_tokens::verify::peek_kid(token)?.ok_or_else(|| err("token without kid"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_reload_under_concurrent_minting_never_fails_a_request() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (a, b, c) = (
        key("key-a", KeyState::Active)?,
        key("key-b", KeyState::Next)?,
        key("key-c", KeyState::Next)?,
    );
    let with_state = |k: &KeyEntry, s: KeyState| {
        let mut k = k.clone();
        k.state = s;
        k
    };
    publish(dir.path(), 1, &set(vec![a.clone(), b.clone()])?)?;
    let app = Arc::new(spawn_on_dir(dir.path()).await?);
    let all_keys = set(vec![
        with_state(&a, KeyState::Retiring),
        with_state(&b, KeyState::Retiring),
        with_state(&c, KeyState::Active),
    ])?;

    let failures = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..4 {
        let app = app.clone();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            let mut tokens = Vec::new();
            for i in 0..150 {
                match app.mint(&format!("user-{t}-{i}")).await {
                    Ok(p) => tokens.push(p.access_token),
                    Err(_) => {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            tokens
        }));
    }
    // Rotate twice and publish a broken set in between, while minting runs
    // (once it demonstrably runs: some tokens are out).
    wait_for_metric(&app, "authrealm_ma_tokens_minted_total", 40.0).await?;
    publish(
        dir.path(),
        2,
        &set(vec![
            with_state(&a, KeyState::Retiring),
            with_state(&b, KeyState::Active),
        ])?,
    )?;
    wait_for_metric(&app, "authrealm_ma_key_reloads_total{result=\"ok\"}", 1.0).await?;
    publish(dir.path(), 3, b"{\"version\":1,\"keys\":[")?;
    wait_for_metric(
        &app,
        "authrealm_ma_key_reloads_total{result=\"failed\"}",
        1.0,
    )
    .await?;
    publish(dir.path(), 4, &all_keys)?;
    wait_for_metric(&app, "authrealm_ma_key_reloads_total{result=\"ok\"}", 2.0).await?;

    let mut tokens = Vec::new();
    for t in tasks {
        tokens.extend(t.await.map_err(|e| err(e.to_string()))?);
    }
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "a mint failed during reload"
    );
    assert_eq!(tokens.len(), 600);
    // Every token verifies against the published keys (retiring ones included).
    let jwks: JwkSet = app.jwks().await?;
    let kids: Vec<&str> = jwks.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids.len(), 3, "{kids:?}");
    let (verifier, _) = Verifier::new(
        &jwks,
        VerifierConfig {
            issuer: app.base.clone(),
            audience: app.config.audience.clone(),
            leeway_secs: 0,
        },
    );
    for t in &tokens {
        verifier.verify(t, authrealm_tokens::unix_now())?;
    }
    // The last set signs from now on.
    assert_eq!(kid_of(&app.mint("after").await?.access_token)?, "key-c");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_set_keeps_the_previous_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    publish(dir.path(), 1, &set(vec![key("old", KeyState::Active)?])?)?;
    let app = spawn_on_dir(dir.path()).await?;
    let jwks_before = app.jwks().await?;
    // Two active keys: refused.
    publish(
        dir.path(),
        2,
        &set(vec![
            key("x", KeyState::Active)?,
            key("y", KeyState::Active)?,
        ])?,
    )?;
    wait_for_metric(
        &app,
        "authrealm_ma_key_reloads_total{result=\"failed\"}",
        1.0,
    )
    .await?;
    assert_eq!(app.jwks().await?, jwks_before);
    assert_eq!(kid_of(&app.mint("u").await?.access_token)?, "old");
    assert_eq!(
        app.metric("authrealm_ma_key_reloads_total{result=\"ok\"}")
            .await?,
        0.0
    );
    assert_eq!(app.get("/readyz").await?.status().as_u16(), 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_bad_key_set_at_start_is_a_clear_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut config = test_config(Backend::Memory)?;
    config.keys_dir = Some(dir.path().to_path_buf());
    let describe = |e: auth_service::Error| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        text
    };
    let missing = auth_service::build(&config, Clock::System)
        .err()
        .map(describe)
        .ok_or_else(|| err("started without a key set"))?;
    assert!(missing.contains("keyset.json"), "{missing}");
    publish(
        dir.path(),
        1,
        &set(vec![key("only-next", KeyState::Next)?])?,
    )?;
    let bad = auth_service::build(&config, Clock::System)
        .err()
        .map(describe)
        .ok_or_else(|| err("started with a key set without an active key"))?;
    assert!(bad.contains("no active key"), "{bad}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rs256_track_signs_nothing_but_is_published_and_advertised() -> TestResult {
    let dir = tempfile::tempdir()?;
    let rs = KeyEntry::generate(
        SigningAlgorithm::RS256,
        "rs-1".to_owned(),
        KeyState::Active,
        authrealm_tokens::unix_now(),
    )?;
    let mut file = KeySetFile::new(vec![
        key("ed-1", KeyState::Active)?,
        key("ed-2", KeyState::Next)?,
        rs,
    ]);
    // Two active keys without accessTokenAlg: refused at start, naming why.
    publish(dir.path(), 1, &file.to_json()?)?;
    let mut config = test_config(Backend::Memory)?;
    config.keys_dir = Some(dir.path().to_path_buf());
    let refused = auth_service::build(&config, Clock::System)
        .err()
        .map(|e| {
            format!(
                "{e}: {:?}",
                std::error::Error::source(&e).map(ToString::to_string)
            )
        })
        .ok_or_else(|| err("started with an ambiguous key set"))?;
    assert!(refused.contains("accessTokenAlg"), "{refused}");
    file.access_token_alg = Some(SigningAlgorithm::EdDSA);
    publish(dir.path(), 2, &file.to_json()?)?;
    let app = spawn_on_dir(dir.path()).await?;
    // Access tokens: the realm's algorithm; the JWKS: every key.
    assert_eq!(kid_of(&app.mint("u").await?.access_token)?, "ed-1");
    let kids: Vec<String> = app.jwks().await?.keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, ["ed-1", "ed-2", "rs-1"]);
    // Discovery: the algorithms of the active keys (the `next` key adds none).
    let disco: serde_json::Value = app.get(api::PATH_DISCOVERY).await?.json().await?;
    assert_eq!(
        disco["id_token_signing_alg_values_supported"],
        serde_json::json!(["EdDSA", "RS256"])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_run_has_an_rs256_key_beside_the_configured_one() -> TestResult {
    for (alg, want) in [
        (SigningAlgorithm::EdDSA, vec!["EdDSA", "RS256"]),
        (SigningAlgorithm::ES256, vec!["ES256", "RS256"]),
        (SigningAlgorithm::RS256, vec!["RS256"]),
    ] {
        let mut config = test_config(Backend::Memory)?;
        config.ephemeral_key_alg = alg;
        let app = spawn_with(config, Clock::System).await?;
        let jwks = app.jwks().await?;
        let mut algs: Vec<&str> = jwks.keys.iter().map(|k| k.alg.as_str()).collect();
        algs.sort_unstable();
        assert_eq!(algs, want);
        // Access tokens are signed with the configured algorithm.
        let kid = kid_of(&app.mint("u").await?.access_token)?;
        let signer = jwks.keys.iter().find(|k| k.kid == kid).map(|k| k.alg);
        assert_eq!(signer, Some(alg));
    }
    Ok(())
}
