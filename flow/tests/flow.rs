//! The end-to-end flow against real processes: the `auth-service` binary with
//! a key set in the operator's format, two `main-project` replicas sharing
//! Postgres, and Redis between them (all from the test command's environment).

use std::time::Duration;

use authrealm_flow::processes::{Binaries, Part, Service, free_port, fresh_database};
use authrealm_flow::{Targets, soak, steps};
use authrealm_runtime::env;
use authrealm_tokens::keyset::{FILE_NAME, KeyEntry, KeySetFile, KeyState, SigningAlgorithm};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set: run the tests with ./scripts/test"))
}

struct Realm {
    _keys: tempfile::TempDir,
    ma: Service,
    ops: Vec<Service>,
}

async fn start_realm(replicas: usize) -> Result<Realm, Box<dyn std::error::Error>> {
    let database = fresh_database(&env("DATABASE_URL")?).await?;
    let redis = env("REDIS_URL")?;
    let bins = Binaries::build(false)?;
    let prefix = format!("flowtest:{}", authrealm_tokens::random_token(6)?);
    let credential = authrealm_tokens::random_token(32)?;

    // The key set in the format the operator writes into the Secret.
    let keys = tempfile::tempdir()?;
    let now = authrealm_tokens::unix_now();
    let set = KeySetFile::new(vec![
        KeyEntry::generate(SigningAlgorithm::EdDSA, "k1".into(), KeyState::Active, now)?,
        KeyEntry::generate(SigningAlgorithm::EdDSA, "k2".into(), KeyState::Next, now)?,
    ]);
    std::fs::write(keys.path().join(FILE_NAME), set.to_json()?)?;

    let ma_port = free_port()?;
    let ma_url = format!("http://127.0.0.1:{ma_port}");
    let ready = Duration::from_secs(60);
    let ma = Service::start(
        &bins.auth_service,
        Part::AuthService,
        ma_port,
        &[
            (env::ISSUER, ma_url.clone()),
            (env::ma::KEYS_DIR, keys.path().display().to_string()),
            (env::SERVICE_CREDENTIAL, credential.clone()),
            (env::REDIS_URL, redis.clone()),
            (env::REDIS_PREFIX, prefix.clone()),
            (env::ma::REFRESH_GRACE, "1s".into()),
        ],
        ready,
    )
    .await?;
    let mut ops = Vec::new();
    for _ in 0..replicas {
        ops.push(
            Service::start(
                &bins.main_project,
                Part::MainProject,
                free_port()?,
                &[
                    (env::op::AUTH_SERVICE_URL, ma.internal_url.clone()),
                    (
                        env::op::JWKS_URL,
                        format!("{ma_url}{}", authrealm_tokens::api::PATH_JWKS),
                    ),
                    (env::ISSUER, ma_url.clone()),
                    (env::SERVICE_CREDENTIAL, credential.clone()),
                    (env::op::DATABASE_URL, database.clone()),
                    (env::REDIS_URL, redis.clone()),
                    (env::REDIS_PREFIX, prefix.clone()),
                ],
                ready,
            )
            .await?,
        );
    }
    Ok(Realm {
        _keys: keys,
        ma,
        ops,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_user_flow_works_against_real_processes_and_two_replicas() -> TestResult {
    let realm = start_realm(2).await?;
    let targets = Targets {
        op: realm.ops.iter().map(|s| s.url.clone()).collect(),
        ma: realm.ma.url.clone(),
        op_metrics: realm.ops.iter().map(|s| s.metrics_url.clone()).collect(),
        ma_metrics: realm.ma.metrics_url.clone(),
    };
    let opts = steps::FlowOptions {
        audience: "authrealm".into(),
        run_id: authrealm_tokens::random_token(6)?,
        refresh_grace: Duration::from_secs(1),
    };
    steps::run(&targets, &opts, &|line| println!("ok  {line}")).await?;
    Ok(())
}

/// OP's count of protected requests it accepted.
async fn verified_ok(
    http: &reqwest::Client,
    metrics_url: &str,
) -> Result<u64, Box<dyn std::error::Error>> {
    let text = http
        .get(format!("{metrics_url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with("authrealm_op_token_verifications_total{") && l.contains("result=\"ok\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_mode_counts_no_failures_on_a_healthy_realm_and_counts_them_when_op_is_gone()
-> TestResult {
    let mut realm = start_realm(1).await?;
    let targets = Targets {
        op: realm.ops.iter().map(|s| s.url.clone()).collect(),
        ma: realm.ma.url.clone(),
        op_metrics: realm.ops.iter().map(|s| s.metrics_url.clone()).collect(),
        ma_metrics: realm.ma.metrics_url.clone(),
    };
    let report = soak::run(
        &targets,
        "healthy",
        Duration::from_secs(2),
        2,
        Duration::from_millis(500),
    )
    .await?;
    assert!(report.ok > 0, "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    assert!(report.refreshes >= 1, "{report:?}");
    // The soak must notice failures: stop OP halfway through a second run.
    let soak = tokio::spawn({
        let targets = targets.clone();
        async move {
            soak::run(
                &targets,
                "broken",
                Duration::from_secs(3),
                2,
                Duration::from_secs(60),
            )
            .await
        }
    });
    // Once OP has served the second soak, take it away.
    let metrics = reqwest::Client::new();
    let served_before = verified_ok(&metrics, &realm.ops[0].metrics_url).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while verified_ok(&metrics, &realm.ops[0].metrics_url).await? <= served_before {
        assert!(
            std::time::Instant::now() < deadline,
            "the second soak never reached OP"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    realm.ops.clear();
    let broken = soak.await??;
    assert!(broken.failed > 0, "{broken:?}");
    Ok(())
}
