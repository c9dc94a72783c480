//! Redis killed with SIGKILL (no persistence) under load and restarted
//! empty: two OP replicas never accept a revoked token, notice the loss
//! (generation marker gone), write their revocations back, and a third
//! replica started afterwards learns them from Redis.

use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::process::{Child, Command};

use crate::helpers::{
    Api, Env, Mode, TestResult, eventually, metric_value, op_config, s, start_ma, start_op,
    wait_metric, wait_session,
};

const KNOWN: &str = "authrealm_op_revocation_state_known";
const LOSSES: &str = "authrealm_op_revocation_data_losses_total";

/// A throwaway `redis-server` with persistence off, on a port of its own.
struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    async fn start(port: u16) -> TestResult<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start redis-server (is it installed?): {e}"))?;
        let server = Self { port, child };
        let client = redis::Client::open(server.url())?;
        eventually("redis-server answers", Duration::from_secs(10), || {
            let client = client.clone();
            async move {
                Ok(match client.get_multiplexed_async_connection().await {
                    Ok(mut c) => redis::cmd("PING")
                        .query_async::<String>(&mut c)
                        .await
                        .is_ok(),
                    Err(_) => false,
                })
            }
        })
        .await?;
        Ok(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown, no save; everything in memory is gone.
    async fn kill(&mut self) -> TestResult {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

fn free_port() -> TestResult<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn exists(url: &str, key: &str) -> TestResult<bool> {
    let client = redis::Client::open(url)?;
    let Ok(mut c) = client.get_multiplexed_async_connection().await else {
        return Ok(false);
    };
    Ok(redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(&mut c)
        .await?
        == 1)
}

/// Counts answers to the revoked tokens (any 2xx is a failure) and to the
/// valid one, on every replica, until stopped.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    revoked_accepted: AtomicU64,
    revoked_checked: AtomicU64,
    valid_ok: AtomicU64,
}

async fn hammer(
    load: Arc<Load>,
    apis: Vec<Api>,
    revoked: Vec<String>,
    valid: String,
) -> TestResult {
    while !load.stop.load(Ordering::SeqCst) {
        for api in &apis {
            for t in &revoked {
                let r = api.get("/api/v1/session", Some(t)).await?;
                load.revoked_checked.fetch_add(1, Ordering::SeqCst);
                if (200..300).contains(&r.status) {
                    load.revoked_accepted.fetch_add(1, Ordering::SeqCst);
                }
            }
            if api.get("/api/v1/session", Some(&valid)).await?.status == 200 {
                load.valid_ok.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    Ok(())
}

/// The ids of every record in the revocation log.
async fn logged_ids(
    url: &str,
    keys: &authrealm_tokens::revocation::RevocationKeys,
) -> TestResult<Vec<String>> {
    let mut conn = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let buckets: Vec<i64> =
        redis::AsyncCommands::zrange(&mut conn, keys.log_buckets(), 0, -1).await?;
    let mut ids = Vec::new();
    for bucket in buckets {
        let bytes: Vec<u8> = redis::AsyncCommands::get(&mut conn, keys.log(bucket)).await?;
        authrealm_tokens::revocation::read_log(&bytes, |r| {
            ids.push(String::from_utf8_lossy(r.id).into_owned());
        })?;
    }
    Ok(ids)
}

async fn metric(api: &Api, name: &str) -> TestResult<u64> {
    metric_value(&api.metrics().await?, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocations_survive_redis_losing_its_data() -> TestResult {
    let port = free_port()?;
    let mut redis = RedisServer::start(port).await?;
    let mut env = Env::new(Mode::PostgresRedis).await?;
    env.redis_url = Some(redis.url());
    let ma = start_ma(&env).await?;
    let mut config = op_config(&env, &ma);
    config.revocation_ping_interval = Duration::from_millis(200);
    let op1 = start_op(config.clone()).await?;
    let op2 = start_op(config.clone()).await?;
    let (a1, a2) = (Api::new(&op1.base), Api::new(&op2.base));

    // Two sessions logged out, one user logged out everywhere, one session live.
    let pair = a1.user("mia@example.com", "tangerine-oboe-42").await?;
    let second = a1.login("mia@example.com", "tangerine-oboe-42").await?.body;
    let live = a1.login("mia@example.com", "tangerine-oboe-42").await?.body;
    let other = a2.user("ned@example.com", "tangerine-oboe-42").await?;
    for p in [&pair, &second] {
        let out = a1
            .post("/api/v1/logout", &json!({}), Some(&s(p, "access_token")?))
            .await?;
        assert_eq!(out.status, 204, "{out:?}");
    }
    let all = a2
        .post(
            "/api/v1/logout-all",
            &json!({}),
            Some(&s(&other, "access_token")?),
        )
        .await?;
    assert_eq!(all.status, 204, "{all:?}");
    let revoked = vec![
        s(&pair, "access_token")?,
        s(&second, "access_token")?,
        s(&other, "access_token")?,
    ];
    let valid = s(&live, "access_token")?;
    for api in [&a1, &a2] {
        for t in &revoked {
            let what = "both replicas reject the revoked tokens";
            wait_session(api, t, what, |r| r.code() == "token_revoked").await?;
        }
    }

    let load = Arc::new(Load::default());
    let worker = tokio::spawn(hammer(
        load.clone(),
        vec![a1.clone(), a2.clone()],
        revoked.clone(),
        valid.clone(),
    ));
    let checked = load.revoked_checked.load(Ordering::SeqCst);
    eventually("the load is running", Duration::from_secs(10), || {
        let load = load.clone();
        async move { Ok(load.revoked_checked.load(Ordering::SeqCst) > checked + 10) }
    })
    .await?;

    redis.kill().await?;
    for api in [&a1, &a2] {
        wait_metric(api, "the replica notices Redis is gone", KNOWN, |v| v == 0).await?;
    }
    let mut redis = RedisServer::start(port).await?;
    for api in [&a1, &a2] {
        wait_metric(api, "the replica detects the loss", LOSSES, |v| v >= 1).await?;
        wait_metric(api, "the replica is current again", KNOWN, |v| v == 1).await?;
    }
    let keys = authrealm_tokens::revocation::RevocationKeys::new(&env.prefix);
    for key in [
        keys.session(&s(&pair, "session_id")?),
        keys.session(&s(&second, "session_id")?),
        keys.not_before(&s(&other, "sub")?),
    ] {
        assert!(exists(&redis.url(), &key).await?, "{key} is back in Redis");
    }
    // And in the revocation log, once each however many replicas healed.
    // (The other user's session may be logged too: a session that new is
    // ended by name as well as by the not-before.)
    let mut logged = logged_ids(&redis.url(), &keys).await?;
    logged.sort();
    let before = logged.len();
    logged.dedup();
    assert_eq!(logged.len(), before, "an entry logged twice: {logged:?}");
    for id in [
        s(&pair, "session_id")?,
        s(&second, "session_id")?,
        s(&other, "sub")?,
    ] {
        assert!(logged.contains(&id), "{id} is not in the log {logged:?}");
    }
    let ok_before = load.valid_ok.load(Ordering::SeqCst);
    eventually(
        "the live session works again",
        Duration::from_secs(10),
        || {
            let load = load.clone();
            async move { Ok(load.valid_ok.load(Ordering::SeqCst) > ok_before) }
        },
    )
    .await?;
    load.stop.store(true, Ordering::SeqCst);
    worker.await??;
    assert_eq!(
        load.revoked_accepted.load(Ordering::SeqCst),
        0,
        "a revoked token was accepted during the outage"
    );

    // A replica that never saw the revocations learns them from the healed Redis.
    let op3 = start_op(config).await?;
    let a3 = Api::new(&op3.base);
    for t in &revoked {
        let r = a3.get("/api/v1/session", Some(t)).await?;
        assert_eq!((r.status, r.code()), (401, "token_revoked"), "{r:?}");
    }
    assert_eq!(a3.get("/api/v1/session", Some(&valid)).await?.status, 200);
    let healed = metric(&a1, "authrealm_op_revocation_healed_entries_total").await?
        + metric(&a2, "authrealm_op_revocation_healed_entries_total").await?;
    assert!(healed >= 3, "{healed} entries healed");
    redis.kill().await?;
    Ok(())
}
