//! Faults: the real Postgres, MA or Redis becomes unreachable (a TCP proxy
//! in front of it drops every connection and refuses new ones) and comes
//! back. OP answers 503 with a clear code and `Retry-After`, writes nothing
//! half-way, and recovers by itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use main_project::RevocationPolicy;
use serde_json::json;

use crate::helpers::{
    Api, Env, Ma, Mode, Running, TestResult, eventually, metric_value, op_config, s, start_ma,
    start_op, wait_metric, wait_session,
};

/// A TCP proxy that can be switched off (connections dropped) and on.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: String) -> TestResult<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                if let Ok(mut c) = conns2.lock() {
                    c.push(h);
                }
            }
        });
        Ok(Self {
            addr,
            up,
            conns,
            accept,
        })
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        if let Ok(mut c) = self.conns.lock() {
            for h in c.drain(..) {
                h.abort();
            }
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
        self.accept.abort();
    }
}

/// `scheme://user@host:port/path` → (`host:port`, the URL with `host:port` replaced).
fn via(url: &str, proxy: SocketAddr) -> TestResult<(String, String)> {
    let (scheme, rest) = url.split_once("://").ok_or("no scheme")?;
    let (auth, hostpath) = match rest.rsplit_once('@') {
        Some((a, h)) => (format!("{a}@"), h),
        None => (String::new(), rest),
    };
    let (hostport, path) = match hostpath.find('/') {
        Some(i) => (&hostpath[..i], &hostpath[i..]),
        None => (hostpath, ""),
    };
    Ok((
        hostport.to_owned(),
        format!("{scheme}://{auth}{proxy}{path}"),
    ))
}

/// The metric that says whether the revocation view is current.
const KNOWN: &str = "authrealm_op_revocation_state_known";

/// Postgres, MA and one OP that reaches Postgres through a [`Proxy`].
async fn behind_postgres_proxy() -> TestResult<(Env, Ma, Proxy, Running, Api)> {
    let env = Env::new(Mode::PostgresRedis).await?;
    let ma = start_ma(&env).await?;
    let (target, _) = via(&env.database_url, "127.0.0.1:1".parse()?)?;
    let proxy = Proxy::start(target).await?;
    let mut c = op_config(&env, &ma);
    c.database_url = via(&env.database_url, proxy.addr)?.1;
    c.database_acquire_timeout = Duration::from_secs(1);
    let op = start_op(c).await?;
    let api = Api::new(&op.base);
    Ok((env, ma, proxy, op, api))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_down_and_back() -> TestResult {
    let (env, _ma, proxy, _op, api) = behind_postgres_proxy().await?;
    let pair = api.user("gina@example.com", "tangerine-oboe-42").await?;
    let token = s(&pair, "access_token")?;

    proxy.down();
    let r = api
        .register("hank@example.com", "tangerine-oboe-42")
        .await?;
    assert_eq!((r.status, r.code()), (503, "database_unavailable"), "{r:?}");
    assert!(r.retry_after.is_some());
    let n = api
        .post("/api/v1/notes", &json!({ "title": "lost?" }), Some(&token))
        .await?;
    assert_eq!((n.status, n.code()), (503, "database_unavailable"));
    let ready = api.get("/readyz", None).await?;
    assert_eq!(
        (ready.status, ready.body["checks"]["database"].as_bool()),
        (503, Some(false))
    );
    // Protected requests that need no database still work.
    assert_eq!(api.get("/api/v1/session", Some(&token)).await?.status, 200);
    // Logins retried through the outage get 503, never a lockout: an
    // attempt that got no answer does not count against the account.
    for _ in 0..8 {
        let l = api.login("gina@example.com", "tangerine-oboe-42").await?;
        assert_eq!((l.status, l.code()), (503, "database_unavailable"), "{l:?}");
    }

    proxy.restore();
    eventually(
        "OP recovers when Postgres is back",
        Duration::from_secs(15),
        || {
            let api = api.clone();
            async move { Ok(api.get("/readyz", None).await?.status == 200) }
        },
    )
    .await?;
    let r = api
        .register("hank@example.com", "tangerine-oboe-42")
        .await?;
    assert_eq!(r.status, 201, "{r:?}");
    let l = api.login("gina@example.com", "tangerine-oboe-42").await?;
    assert_eq!(l.status, 200, "{l:?}");
    let db = env.database()?;
    assert_eq!(
        db.count_users().await?,
        2,
        "the refused registration must not have been stored"
    );
    assert_eq!(db.count_notes(&s(&pair, "sub")?).await?, 0);
    Ok(())
}

/// What the refresh loops of many sessions saw.
#[derive(Default)]
struct RefreshLog {
    stop: AtomicBool,
    restored: AtomicBool,
    refused: AtomicU64,
    lost: Mutex<Option<String>>,
    ok: Mutex<Vec<(u64, u64)>>,
}

/// Refreshes one session until stopped, retrying a 503 with the same token
/// as `Retry-After` tells a client to. Any other answer is a lost session.
async fn keep_refreshing(
    api: Api,
    log: Arc<RefreshLog>,
    i: usize,
    mut refresh: String,
) -> TestResult {
    while !log.stop.load(Ordering::SeqCst) {
        let r = api
            .post(
                "/api/v1/token/refresh",
                &json!({ "refresh_token": refresh }),
                None,
            )
            .await?;
        match r.status {
            200 => {
                refresh = s(&r.body, "refresh_token")?;
                let after = log.restored.load(Ordering::SeqCst);
                if let Ok(mut ok) = log.ok.lock()
                    && let Some(slot) = ok.get_mut(i)
                {
                    if after { slot.1 += 1 } else { slot.0 += 1 }
                }
            }
            503 if r.retry_after.is_some() => {
                log.refused.fetch_add(1, Ordering::SeqCst);
                // A client's pause before its retry (shortened from Retry-After).
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => {
                let why = format!("session {i} was logged out: {r:?}");
                if let Ok(mut lost) = log.lost.lock() {
                    *lost = Some(why.clone());
                }
                return Err(why.into());
            }
        }
    }
    Ok(())
}

impl RefreshLog {
    /// Polls until `done` holds (or a session was lost, which `done` reports).
    async fn until(
        self: &Arc<Self>,
        what: &str,
        done: fn(&RefreshLog) -> TestResult<bool>,
    ) -> TestResult {
        eventually(what, Duration::from_secs(30), || {
            let log = self.clone();
            async move { done(&log) }
        })
        .await
    }
}

/// How many sessions match `pred`; an error as soon as one was logged out.
fn sessions_with(log: &RefreshLog, pred: impl Fn(&(u64, u64)) -> bool) -> TestResult<usize> {
    if let Some(why) = log.lost.lock().ok().and_then(|l| l.clone()) {
        return Err(why.into());
    }
    Ok(log
        .ok
        .lock()
        .map(|ok| ok.iter().filter(|x| pred(x)).count())
        .unwrap_or(0))
}

/// A database outage must not log anyone out: many sessions keep
/// refreshing while Postgres goes away and comes back; each gets 503 with
/// `Retry-After` at worst, and every one refreshes again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refreshes_survive_a_postgres_outage() -> TestResult {
    const SESSIONS: usize = 12;
    let (_env, _ma, proxy, _op, api) = behind_postgres_proxy().await?;
    api.user("olga@example.com", "tangerine-oboe-42").await?;
    let log = Arc::new(RefreshLog::default());
    if let Ok(mut ok) = log.ok.lock() {
        *ok = vec![(0, 0); SESSIONS];
    }
    let mut tasks = Vec::new();
    for i in 0..SESSIONS {
        let pair = api.login("olga@example.com", "tangerine-oboe-42").await?;
        let refresh = s(&pair.body, "refresh_token")?;
        tasks.push(tokio::spawn(keep_refreshing(
            api.clone(),
            log.clone(),
            i,
            refresh,
        )));
    }
    log.until("every session refreshes", |l| {
        Ok(sessions_with(l, |x| x.0 > 0)? == SESSIONS)
    })
    .await?;
    proxy.down();
    log.until("refreshes are refused while Postgres is away", |l| {
        sessions_with(l, |_| true)?;
        Ok(l.refused.load(Ordering::SeqCst) >= 2 * SESSIONS as u64)
    })
    .await?;
    proxy.restore();
    log.restored.store(true, Ordering::SeqCst);
    log.until("every session refreshes after the outage", |l| {
        Ok(sessions_with(l, |x| x.1 > 0)? == SESSIONS)
    })
    .await?;
    log.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn auth_service_down_and_back(mode: Mode) -> TestResult {
    let env = Env::new(mode).await?;
    let ma = start_ma(&env).await?;
    let proxy = Proxy::start(ma.server.addr.to_string()).await?;
    let mut c = op_config(&env, &ma);
    c.auth_service_url = format!("http://{}", proxy.addr);
    c.auth_service_timeout = Duration::from_secs(2);
    let op = start_op(c).await?;
    let api = Api::new(&op.base);
    let pair = api.user("ivy@example.com", "tangerine-oboe-42").await?;
    let token = s(&pair, "access_token")?;

    proxy.down();
    let r = api.login("ivy@example.com", "tangerine-oboe-42").await?;
    assert_eq!(
        (r.status, r.code()),
        (503, "auth_service_unavailable"),
        "{r:?}"
    );
    assert!(r.retry_after.is_some());
    let rf = api
        .post(
            "/api/v1/token/refresh",
            &json!({ "refresh_token": s(&pair, "refresh_token")? }),
            None,
        )
        .await?;
    assert_eq!((rf.status, rf.code()), (503, "auth_service_unavailable"));
    let me = api.get("/api/v1/me", Some(&token)).await?;
    if mode == Mode::PostgresRedis {
        // Verification does not need MA: cached keys and the revocations
        // from Redis keep protected routes up.
        assert_eq!(me.status, 200, "{me:?}");
    } else {
        // Without Redis, MA's feed is where revocations come from: while it
        // is gone the state is unknown and fail-closed refuses, retryably.
        assert_eq!(
            (me.status, me.code()),
            (503, "revocation_unavailable"),
            "{me:?}"
        );
        assert!(me.retry_after.is_some());
    }

    proxy.restore();
    eventually(
        "logins work again when MA is back",
        Duration::from_secs(10),
        || {
            let api = api.clone();
            async move {
                Ok(api
                    .login("ivy@example.com", "tangerine-oboe-42")
                    .await?
                    .status
                    == 200)
            }
        },
    )
    .await?;
    // The refresh refused during the outage was not spent.
    let rf = api
        .post(
            "/api/v1/token/refresh",
            &json!({ "refresh_token": s(&pair, "refresh_token")? }),
            None,
        )
        .await?;
    assert_eq!(rf.status, 200, "{rf:?}");
    Ok(())
}

both_modes!(auth_service_down_and_back: auth_service_down_and_back_postgres_redis, auth_service_down_and_back_sqlite_memory);

async fn redis_down_and_back(policy: RevocationPolicy) -> TestResult {
    let env = Env::new(Mode::PostgresRedis).await?;
    let ma = start_ma(&env).await?;
    let redis_url = env.redis_url.clone().ok_or("no redis")?;
    let (target, _) = via(&redis_url, "127.0.0.1:1".parse()?)?;
    let proxy = Proxy::start(target).await?;
    let mut c = op_config(&env, &ma);
    c.redis_url = Some(via(&redis_url, proxy.addr)?.1);
    c.revocation_policy = policy;
    let op = start_op(c).await?;
    let api = Api::new(&op.base);
    let pair = api.user("jack@example.com", "tangerine-oboe-42").await?;
    let token = s(&pair, "access_token")?;
    assert_eq!(api.get("/api/v1/session", Some(&token)).await?.status, 200);
    // Under fail-open the token is accepted before the first scan finishes:
    // wait for it, so the outage below is what makes the state unknown.
    wait_metric(&api, "the first scan finishes", KNOWN, |v| v == 1).await?;

    proxy.down();
    match policy {
        RevocationPolicy::FailClosed => {
            wait_session(
                &api,
                &token,
                "fail-closed answers 503 while Redis is away",
                |r| {
                    r.status == 503
                        && r.code() == "revocation_unavailable"
                        && r.retry_after.is_some()
                },
            )
            .await?;
            assert_eq!(api.get("/readyz", None).await?.status, 503);
        }
        RevocationPolicy::FailOpen => {
            wait_metric(&api, "the state becomes unknown", KNOWN, |v| v == 0).await?;
            assert_eq!(api.get("/api/v1/session", Some(&token)).await?.status, 200);
            let m = api.metrics().await?;
            assert!(metric_value(&m, "authrealm_op_revocation_fail_open_total")? >= 1);
        }
    }
    // Logins still work: the limiter falls back to memory, MA has its own Redis link.
    let l2 = api.login("jack@example.com", "tangerine-oboe-42").await?;
    assert_eq!(l2.status, 200, "{l2:?}");
    // Under fail-open a logout still works while OP cannot hear the channel:
    // MA records it in Redis, OP records it locally and finds it again in the
    // rescan. (Under fail-closed the logout itself needs a verified token.)
    let logged_out = policy == RevocationPolicy::FailOpen;
    if logged_out {
        let out = api
            .post(
                "/api/v1/logout",
                &json!({ "refresh_token": s(&l2.body, "refresh_token")? }),
                Some(&s(&l2.body, "access_token")?),
            )
            .await?;
        assert_eq!(out.status, 204, "{out:?}");
    }

    proxy.restore();
    eventually(
        "the view is rebuilt after Redis returns",
        Duration::from_secs(15),
        || {
            let api = api.clone();
            let token = token.clone();
            async move {
                Ok(
                    metric_value(&api.metrics().await?, "authrealm_op_revocation_state_known")?
                        == 1
                        && api.get("/api/v1/session", Some(&token)).await?.status == 200,
                )
            }
        },
    )
    .await?;
    let m = api.metrics().await?;
    assert!(metric_value(&m, "authrealm_op_revocation_resyncs_total")? >= 2);
    if logged_out {
        let revoked = api
            .get("/api/v1/session", Some(&s(&l2.body, "access_token")?))
            .await?;
        assert_eq!((revoked.status, revoked.code()), (401, "token_revoked"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_and_back_fail_closed() -> TestResult {
    redis_down_and_back(RevocationPolicy::FailClosed).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_and_back_fail_open() -> TestResult {
    redis_down_and_back(RevocationPolicy::FailOpen).await
}

/// A healthy Redis link stays up: the listener's keep-alive ping must not
/// tear it down (which would make the state unknown and, fail-closed, answer
/// 503 on every protected request until the rescan).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_healthy_redis_link_survives_its_keepalive_pings() -> TestResult {
    let env = Env::new(Mode::PostgresRedis).await?;
    let ma = start_ma(&env).await?;
    let mut c = op_config(&env, &ma);
    c.revocation_ping_interval = Duration::from_millis(100);
    let op = start_op(c).await?;
    let api = Api::new(&op.base);
    let pair = api.user("kim@example.com", "tangerine-oboe-42").await?;
    let token = s(&pair, "access_token")?;
    wait_metric(&api, "the first scan finishes", KNOWN, |v| v == 1).await?;
    let m = api.metrics().await?;
    let resyncs = metric_value(&m, "authrealm_op_revocation_resyncs_total")?;
    let pings = metric_value(&m, "authrealm_op_revocation_pings_total")?;
    // Three answered keep-alive pings, with requests all along.
    eventually("three keep-alive pings", Duration::from_secs(10), || {
        let api = api.clone();
        let token = token.clone();
        async move {
            let r = api.get("/api/v1/session", Some(&token)).await?;
            assert_eq!(r.status, 200, "{r:?}");
            let m = api.metrics().await?;
            Ok(metric_value(&m, "authrealm_op_revocation_pings_total")? >= pings + 3)
        }
    })
    .await?;
    let m = api.metrics().await?;
    assert_eq!(metric_value(&m, "authrealm_op_revocation_state_known")?, 1);
    assert_eq!(
        metric_value(&m, "authrealm_op_revocation_resyncs_total")?,
        resyncs
    );
    Ok(())
}
