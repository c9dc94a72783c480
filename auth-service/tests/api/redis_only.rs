//! What only the Redis store can show: entries expiring with their tokens,
//! events on the revocation channel, hashes instead of tokens at rest, and
//! an outage of a real Redis (stopped and restarted inside the test).

use std::time::Duration;

use auth_service::Clock;
use authrealm_tokens::api;
use authrealm_tokens::revocation::{
    LOG_TRUST_MARGIN_SECS, RevocationEvent, RevocationKeys, RevocationKind, log_bucket,
    log_bucket_end, read_log,
};
use futures::StreamExt as _;
use redis::AsyncCommands as _;
use serde_json::json;

use crate::helpers::{Backend, TestResult, assert_error, err, spawn, spawn_with, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_jti_disappears_from_redis_after_the_token_expires() -> TestResult {
    let mut config = test_config(Backend::Redis)?;
    config.access_ttl = Duration::from_secs(2);
    config.clock_skew = Duration::from_secs(1);
    // MA's clock stands still, so the token stays valid for the revocation
    // however slow the machine; Redis expires the entry in its own real time.
    let app = spawn_with(config, Clock::manual(authrealm_tokens::unix_now())).await?;
    let pair = app.mint("pete").await?;
    let claims = app
        .verifier()
        .await?
        .verify(&pair.access_token, app.clock.now())?;
    let (status, _) = app
        .post(api::PATH_REVOKE, &json!({ "token": pair.access_token }))
        .await?;
    assert_eq!(status, 200);
    let key = RevocationKeys::new(app.prefix()).jti(&claims.jti, claims.exp);
    let mut conn = app.redis_conn().await?;
    let ttl: i64 = conn.ttl(&key).await?;
    // The token's remaining life (2 s) plus the 1 s skew verifiers allow past `exp`.
    assert!(
        (1..=3).contains(&ttl),
        "TTL {ttl} is not the token's remaining life + skew (3)"
    );
    // Gone once the token (and the skew) has passed (bounded wait, no timing asserted).
    let mut gone = false;
    for _ in 0..150 {
        if !conn.exists::<_, bool>(&key).await? {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "{key} still present long after the token expired");
    Ok(())
}

/// A jti revoked before its key carried the token's `exp` (or written back
/// by a verifier's heal, which knows no `exp`) is still found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jti_revoked_under_the_older_name_stays_revoked() -> TestResult {
    let app = spawn(Backend::Redis).await?;
    let pair = app.mint("quinn").await?;
    let claims = app
        .verifier()
        .await?
        .verify(&pair.access_token, app.clock.now())?;
    assert!(app.introspect_active(&pair.access_token).await?);
    let keys = RevocationKeys::new(app.prefix());
    let mut conn = app.redis_conn().await?;
    let _: () = conn
        .set_ex(keys.legacy_jti(&claims.jti), claims.exp + 60, 600)
        .await?;
    assert!(!app.introspect_active(&pair.access_token).await?);
    assert!(
        !conn
            .exists::<_, bool>(keys.jti(&claims.jti, claims.exp))
            .await?
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_revocation_is_written_and_published() -> TestResult {
    let app = spawn(Backend::Redis).await?;
    let keys = RevocationKeys::new(app.prefix());
    let client = app.redis.clone().ok_or_else(|| err("no redis"))?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(keys.channel()).await?;
    let mut messages = pubsub.into_on_message();

    let mut next_event = async || -> TestResult<RevocationEvent> {
        let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await?
            .ok_or_else(|| err("channel closed"))?;
        let payload: String = msg.get_payload()?;
        Ok(serde_json::from_str(&payload)?)
    };

    let mut published = Vec::new();
    let mut next_event = async || -> TestResult<RevocationEvent> {
        let e = next_event().await?;
        published.push(e.clone());
        Ok(e)
    };

    // Access token -> jti entry kept until the token's expiry plus the clock skew.
    let first_write = app.clock.now();
    let a = app.mint("quinn").await?;
    let claims = app
        .verifier()
        .await?
        .verify(&a.access_token, app.clock.now())?;
    app.post(api::PATH_REVOKE, &json!({ "token": a.access_token }))
        .await?;
    let e = next_event().await?;
    assert_eq!(
        (e.kind, e.id.as_str(), e.at, e.expires),
        (
            RevocationKind::Jti,
            claims.jti.as_str(),
            claims.exp + 60,
            claims.exp + 60
        )
    );

    // Reuse -> session entry.
    let b = app.mint("quinn").await?;
    app.refresh_ok(&b.refresh_token).await?;
    app.clock.advance(11);
    assert_error(
        &app.refresh(&b.refresh_token).await?,
        400,
        api::codes::REFRESH_TOKEN_REUSED,
    );
    let e = next_event().await?;
    assert_eq!(
        (e.kind, e.id.as_str()),
        (RevocationKind::Session, b.session_id.as_str())
    );
    let mut conn = app.redis_conn().await?;
    let ttl: i64 = conn.ttl(keys.session(&b.session_id)).await?;
    assert!(ttl > 300 && ttl <= 360, "session entry TTL {ttl}");

    // Log out everywhere -> each live session (a and c), then the user's not-before.
    let c = app.mint("quinn").await?;
    let (_, body) = app
        .post(api::PATH_REVOKE_ALL, &json!({ "sub": "quinn" }))
        .await?;
    let mut sessions = vec![next_event().await?.id, next_event().await?.id];
    sessions.sort();
    let mut expected = vec![a.session_id.clone(), c.session_id.clone()];
    expected.sort();
    assert_eq!(sessions, expected);
    let e = next_event().await?;
    assert_eq!((e.kind, e.id.as_str()), (RevocationKind::User, "quinn"));
    assert_eq!(json!(e.at), body["not_before"]);
    let nb: i64 = conn.get(keys.not_before("quinn")).await?;
    assert_eq!(json!(nb), body["not_before"]);
    assert!(conn.ttl::<_, i64>(keys.not_before("quinn")).await? > 0);

    // The revocation log holds every published entry, in the order written,
    // each in the bucket of the hour it may go, which expires then.
    let buckets: Vec<i64> = conn.zrange(keys.log_buckets(), 0, -1).await?;
    let mut logged = Vec::new();
    for bucket in &buckets {
        let key = keys.log(*bucket);
        let bytes: Vec<u8> = conn.get(&key).await?;
        let used = read_log(&bytes, |r| {
            assert_eq!(log_bucket(i64::from(r.expires)), *bucket);
            logged.push((
                r.kind,
                String::from_utf8_lossy(r.id).into_owned(),
                r.at,
                r.expires,
            ));
        })?;
        assert_eq!(used, bytes.len());
        let ends: i64 = redis::cmd("EXPIRETIME")
            .arg(&key)
            .query_async(&mut conn)
            .await?;
        assert_eq!(ends, log_bucket_end(*bucket));
        let score: i64 = conn.zscore(keys.log_buckets(), bucket).await?;
        assert_eq!(score, ends);
    }
    let mut expected: Vec<_> = published
        .iter()
        .map(|e| {
            (
                e.kind,
                e.id.clone(),
                u32::try_from(e.at).unwrap_or(0),
                u32::try_from(e.expires).unwrap_or(0),
            )
        })
        .collect();
    expected.sort_by_key(|e| log_bucket(i64::from(e.3)));
    assert_eq!(logged, expected);
    // Trusted alone once every entry written before the first logged write
    // (by a writer that did not log) has expired, plus the margin.
    let trusted_from: i64 = conn.get(keys.log_trusted_from()).await?;
    let max_life = i64::try_from(test_config(Backend::Redis)?.revocation_ttl_secs())?;
    assert_eq!(trusted_from, first_write + max_life + LOG_TRUST_MARGIN_SECS);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_are_stored_only_as_hashes() -> TestResult {
    let app = spawn(Backend::Redis).await?;
    let pair = app.mint("rita").await?;
    // The secret part: the session id before the dot is no secret.
    let secret = pair
        .refresh_token
        .rsplit_once('.')
        .map(|(_, s)| s.as_bytes().to_vec())
        .ok_or("a refresh token names its session")?;
    let contains = |hay: &[u8]| hay.windows(secret.len()).any(|w| w == secret.as_slice());
    let mut conn = app.redis_conn().await?;
    let keys: Vec<Vec<u8>> = conn.keys(format!("{}:*", app.prefix())).await?;
    assert!(!keys.is_empty());
    // One record for the session, and the user's set of recent sessions.
    let record =
        auth_service::store::redis::RedisStore::session_key(app.prefix(), &pair.session_id)
            .ok_or("MA made the session id")?;
    assert!(keys.contains(&record), "the session has its record");
    for key in keys {
        let name = String::from_utf8_lossy(&key).into_owned();
        assert!(!contains(&key));
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await?;
        let dump: Vec<Vec<u8>> = match kind.as_str() {
            "hash" => conn.hgetall::<_, Vec<Vec<u8>>>(&key).await?,
            "set" => conn.smembers::<_, Vec<Vec<u8>>>(&key).await?,
            _ => conn
                .get::<_, Option<Vec<u8>>>(&key)
                .await?
                .into_iter()
                .collect(),
        };
        assert!(!dump.iter().any(|v| contains(v)), "{name} holds the token");
        // Every record expires.
        assert!(conn.ttl::<_, i64>(&key).await? > 0, "{name} never expires");
    }
    Ok(())
}

/// A Redis of the test's own, so it can be stopped and restarted without
/// touching the shared one: with an append-only file, or without any
/// persistence (a restart then loses everything).
struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
    persistent: bool,
}

impl OwnRedis {
    fn start() -> TestResult<Self> {
        Self::start_with(true)
    }

    fn start_with(persistent: bool) -> TestResult<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut me = Self {
            port,
            dir: tempfile::tempdir()?,
            child: None,
            persistent,
        };
        me.restart()?;
        Ok(me)
    }

    fn restart(&mut self) -> TestResult {
        let aof = if self.persistent { "yes" } else { "no" };
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--appendonly", aof, "--appendfsync", "always", "--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| {
                err(format!(
                    "cannot start redis-server (run ./scripts/test, which installs it): {e}"
                ))
            })?;
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(err("redis-server did not start"))
    }

    fn stop(&mut self) -> TestResult {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_answers_503_and_the_service_recovers_by_itself() -> TestResult {
    let mut redis = OwnRedis::start()?;
    let mut config = test_config(Backend::Memory)?;
    config.redis_url = Some(redis.url().into());
    let app = spawn_with(config, Clock::System).await?;
    let before = app.mint("sam").await?;
    assert_eq!(app.get("/readyz").await?.status().as_u16(), 200);

    redis.stop()?;
    let mint = app.post(api::PATH_MINT, &json!({ "sub": "sam" })).await?;
    assert_error(&mint, 503, api::codes::UNAVAILABLE);
    assert!(mint.1.get("access_token").is_none());
    assert_error(
        &app.refresh(&before.refresh_token).await?,
        503,
        api::codes::UNAVAILABLE,
    );
    assert_error(
        &app.post(api::PATH_REVOKE, &json!({ "token": before.access_token }))
            .await?,
        503,
        api::codes::UNAVAILABLE,
    );
    assert_eq!(app.get("/readyz").await?.status().as_u16(), 503);
    // Public keys do not need Redis.
    assert_eq!(app.get(api::PATH_JWKS).await?.status().as_u16(), 200);

    redis.restart()?;
    let mut ready = false;
    for _ in 0..100 {
        if app.get("/readyz").await?.status().as_u16() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "not ready again after Redis came back");
    // The session acknowledged before the outage survived (append-only file).
    let after = app.refresh_ok(&before.refresh_token).await?;
    assert!(app.introspect_active(&after.access_token).await?);
    app.mint("sam").await?;
    Ok(())
}

/// Redis restarted empty (SIGKILL, no persistence) forgets every refresh
/// family: a live refresh token and a spent one both answer
/// `refresh_token_invalid` (the user logs in again) — never a new pair, and
/// never a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_families_redis_lost_fail_closed() -> TestResult {
    let mut redis = OwnRedis::start_with(false)?;
    let mut config = test_config(Backend::Memory)?;
    config.redis_url = Some(redis.url().into());
    let app = spawn_with(config, Clock::System).await?;
    let first = app.mint("lost").await?;
    let live = app.refresh_ok(&first.refresh_token).await?;

    redis.stop()?;
    redis.restart()?;
    let mut ready = false;
    for _ in 0..100 {
        if app.get("/readyz").await?.status().as_u16() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "not ready again after Redis came back");
    assert_error(
        &app.refresh(&live.refresh_token).await?,
        400,
        api::codes::REFRESH_TOKEN_INVALID,
    );
    assert_error(
        &app.refresh(&first.refresh_token).await?,
        400,
        api::codes::REFRESH_TOKEN_INVALID,
    );
    // A new login works at once.
    app.refresh_ok(&app.mint("lost").await?.refresh_token)
        .await?;
    Ok(())
}
