//! Soak mode: keeps calling a protected endpoint with a live session (refreshed
//! before it expires) for a while and counts every failure. `e2e/kind.sh` runs
//! it across a key rotation to show that rotation fails no request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::sync::RwLock;

use crate::{FlowError, Targets};

/// Failures printed before the rest are only counted.
const MAX_REPORTED: u64 = 5;

/// What a soak run saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct SoakReport {
    /// Protected requests answered 200.
    pub ok: u64,
    /// Protected requests answered anything else, or not at all.
    pub failed: u64,
    /// Refreshes performed.
    pub refreshes: u64,
}

/// Registers a user, logs in, then for `duration` runs `concurrency` loops of
/// `GET /api/v1/session` against every OP replica in turn, refreshing the
/// session every `refresh_every`.
///
/// # Errors
/// When the setup (register, login) fails or a refresh fails.
pub async fn run(
    targets: &Targets,
    run_id: &str,
    duration: Duration,
    concurrency: usize,
    refresh_every: Duration,
) -> Result<SoakReport, FlowError> {
    let (ops, _) = targets.clients(Duration::from_secs(10))?;
    let op = ops
        .first()
        .ok_or_else(|| FlowError::Setup("no OP URL given".into()))?
        .clone();
    let email = format!("soak-{run_id}@example.test").to_lowercase();
    let password = "correct horse battery staple";
    let step = "soak setup";
    let reg = op
        .call(
            step,
            Method::POST,
            "/api/v1/register",
            None,
            Some(&json!({"email": email, "password": password})),
        )
        .await?;
    if reg.status != StatusCode::CREATED && reg.code() != Some("email_taken") {
        return Err(FlowError::Step {
            step,
            detail: format!("register answered {} {}", reg.status, reg.body),
        });
    }
    let tokens = Arc::new(RwLock::new(op.login(step, &email, password).await?));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;

    let mut workers = Vec::new();
    for i in 0..concurrency.max(1) {
        let (ops, tokens, ok, failed) = (ops.clone(), tokens.clone(), ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let mut n = i;
            while Instant::now() < deadline {
                let api = &ops[n % ops.len()];
                n += 1;
                let access = tokens.read().await.0.clone();
                match api.get("soak", "/api/v1/session", Some(&access)).await {
                    Ok(a) if a.status == StatusCode::OK => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(a) => {
                        let n = failed.fetch_add(1, Ordering::Relaxed);
                        if n < MAX_REPORTED {
                            eprintln!("soak: {} answered {} {}", api.base(), a.status, a.body);
                        }
                        n
                    }
                    Err(e) => {
                        let n = failed.fetch_add(1, Ordering::Relaxed);
                        if n < MAX_REPORTED {
                            eprintln!("soak: {e}");
                        }
                        n
                    }
                };
            }
        }));
    }
    let mut refreshes = 0;
    while Instant::now() + refresh_every < deadline {
        tokio::time::sleep(refresh_every).await;
        let refresh = tokens.read().await.1.clone();
        let pair = op
            .refresh("soak refresh", &refresh)
            .await?
            .expect("soak refresh", StatusCode::OK)?
            .pair("soak refresh")?;
        *tokens.write().await = pair;
        refreshes += 1;
    }
    for w in workers {
        w.await
            .map_err(|e| FlowError::Setup(format!("soak worker died: {e}")))?;
    }
    Ok(SoakReport {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        refreshes,
    })
}
