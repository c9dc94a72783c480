//! The end-to-end flow against real processes: the `auth-service` binary with
//! a key set in the operator's format, two `main-project` replicas sharing
//! Postgres, and Redis between them (all from the test command's environment).

use std::time::Duration;

use authrealm_flow::{soak, steps};

mod realm;

use realm::{TestResult, start_realm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_user_flow_works_against_real_processes_and_two_replicas() -> TestResult {
    let realm = start_realm(2).await?;
    let targets = realm.targets();
    let opts = steps::FlowOptions {
        audience: realm::AUDIENCE.into(),
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
    let targets = realm.targets();
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
