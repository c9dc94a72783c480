//! Test harness: a fresh database (Postgres database or SQLite file) per
//! test, a random Redis prefix, MA served in-process on a port-0 listener
//! with a key set the test owns, OP instances over real HTTP.

use std::future::Future;
use std::time::{Duration, Instant};

use authrealm_tokens::ServiceCredential;
use authrealm_tokens::keyset::{KeyEntry, KeySetFile, KeyState, SigningAlgorithm};
use main_project::db::Database;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub const AUDIENCE: &str = "authrealm-test";

/// Which storage the whole stack uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Real Postgres and real Redis (shared by MA and every OP).
    PostgresRedis,
    /// SQLite file, no Redis (MA and OP in memory).
    SqliteMemory,
}

pub fn random_suffix() -> TestResult<String> {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| "random")?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

pub fn require_env(name: &str) -> TestResult<String> {
    std::env::var(name).map_err(|_| {
        format!(
            "{name} is not set: run the tests with ./scripts/test (it starts Postgres and Redis)"
        )
        .into()
    })
}

/// Storage for one test.
pub struct Env {
    pub database_url: String,
    pub redis_url: Option<String>,
    pub prefix: String,
    pub keys_dir: tempfile::TempDir,
    pub keys: Vec<KeyEntry>,
    _sqlite_dir: Option<tempfile::TempDir>,
}

impl Env {
    pub async fn new(mode: Mode) -> TestResult<Self> {
        let suffix = random_suffix()?;
        let (database_url, redis_url, sqlite_dir) = match mode {
            Mode::PostgresRedis => {
                let base = require_env("DATABASE_URL")?;
                let redis = require_env("REDIS_URL")?;
                let name = format!("op_test_{suffix}");
                sqlx::any::install_default_drivers();
                let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&base).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await?;
                let (head, tail) = base.rsplit_once('/').ok_or("DATABASE_URL has no path")?;
                let query = tail
                    .split_once('?')
                    .map(|(_, q)| format!("?{q}"))
                    .unwrap_or_default();
                (format!("{head}/{name}{query}"), Some(redis), None)
            }
            Mode::SqliteMemory => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}/op.db?mode=rwc", dir.path().display());
                (url, None, Some(dir))
            }
        };
        let keys_dir = tempfile::tempdir()?;
        let now = authrealm_tokens::unix_now();
        let key = KeyEntry::generate(
            SigningAlgorithm::EdDSA,
            format!("k1-{suffix}"),
            KeyState::Active,
            now,
        )?;
        let env = Self {
            database_url,
            redis_url,
            prefix: format!("test-{suffix}"),
            keys_dir,
            keys: vec![key],
            _sqlite_dir: sqlite_dir,
        };
        env.write_keys()?;
        Ok(env)
    }

    /// Writes the key set MA reads (MA polls the directory).
    pub fn write_keys(&self) -> TestResult {
        let file = KeySetFile::new(self.keys.clone());
        let tmp = self.keys_dir.path().join("keyset.json.tmp");
        std::fs::write(&tmp, file.to_json()?)?;
        std::fs::rename(&tmp, self.keys_dir.path().join("keyset.json"))?;
        Ok(())
    }

    /// The active signing key (tests sign their own tokens with it).
    pub fn active_key(&self) -> TestResult<&KeyEntry> {
        Ok(self
            .keys
            .iter()
            .find(|k| k.state == KeyState::Active)
            .ok_or("no active key")?)
    }

    /// A direct handle on OP's database, to check what was (not) written.
    pub fn database(&self) -> TestResult<Database> {
        Ok(Database::connect_lazy(
            &self.database_url,
            2,
            Duration::from_secs(5),
        )?)
    }
}

/// A running server task with a shutdown switch.
pub struct Running {
    pub base: String,
    pub addr: std::net::SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn spawn<F, Fut>(start: F) -> TestResult<Self>
    where
        F: FnOnce(tokio::net::TcpListener, oneshot::Receiver<()>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(start(listener, rx));
        Ok(Self {
            base: format!("http://{addr}"),
            addr,
            shutdown: Some(tx),
            handle,
        })
    }

    /// Stops the server at once (connections are dropped).
    pub fn kill(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.handle.abort();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Ma {
    pub server: Running,
    pub credential: ServiceCredential,
    pub issuer: String,
}

impl Ma {
    pub fn base(&self) -> &str {
        &self.server.base
    }

    /// MA's `authrealm_ma_jwks_requests_total`.
    pub async fn jwks_requests(&self, http: &reqwest::Client) -> TestResult<u64> {
        let text = http
            .get(format!("{}/metrics", self.base()))
            .send()
            .await?
            .text()
            .await?;
        metric_value(&text, "authrealm_ma_jwks_requests_total")
    }
}

/// The value of an unlabelled metric (or the sum over label sets of a prefix match).
pub fn metric_value(text: &str, name: &str) -> TestResult<u64> {
    let mut total = 0.0;
    let mut found = false;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.rsplit_once(' ')
            && (key == name || key.starts_with(&format!("{name}{{")))
        {
            total += value.parse::<f64>()?;
            found = true;
        }
    }
    if !found {
        return Err(format!("metric {name} not found").into());
    }
    Ok(total as u64)
}

/// Starts MA in-process with the env's key set and storage.
pub async fn start_ma(env: &Env) -> TestResult<Ma> {
    start_ma_with(env, |_| {}).await
}

/// [`start_ma`] with a last word on MA's configuration.
pub async fn start_ma_with(
    env: &Env,
    tweak: impl FnOnce(&mut auth_service::Config),
) -> TestResult<Ma> {
    start_ma_on(env, authrealm_tokens::Clock::System, tweak).await
}

/// [`start_ma_with`] on a given clock (a manual one crosses MA's grace
/// windows without sleeping).
pub async fn start_ma_on(
    env: &Env,
    clock: authrealm_tokens::Clock,
    tweak: impl FnOnce(&mut auth_service::Config),
) -> TestResult<Ma> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let issuer = format!("http://{addr}");
    let mut config = auth_service::Config::local()?;
    config.listen = addr;
    config.issuer = issuer.clone();
    config.audience = AUDIENCE.to_owned();
    config.keys_dir = Some(env.keys_dir.path().to_path_buf());
    config.redis_url = env.redis_url.clone().map(Into::into);
    config.redis_prefix = env.prefix.clone();
    tweak(&mut config);
    let credential = config
        .service_credential
        .clone()
        .ok_or("MA local config has no credential")?;
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.await;
        };
        if let Err(e) = auth_service::serve_with_clock(config, clock, listener, shutdown).await {
            eprintln!("auth-service stopped: {e}");
        }
    });
    let ma = Ma {
        server: Running {
            base: issuer.clone(),
            addr,
            shutdown: Some(tx),
            handle,
        },
        credential,
        issuer,
    };
    wait_ready(&format!("{}/readyz", ma.base()), Duration::from_secs(20)).await?;
    Ok(ma)
}

/// OP's configuration for this env and MA.
pub fn op_config(env: &Env, ma: &Ma) -> main_project::Config {
    let mut c = main_project::Config::local();
    c.auth_service_url = ma.base().to_owned();
    c.issuer = ma.issuer.clone();
    c.audience = AUDIENCE.to_owned();
    c.service_credential = Some(ma.credential.clone());
    c.database_url = env.database_url.clone();
    c.database_max_connections = 5;
    c.redis_url = env.redis_url.clone();
    c.redis_prefix = env.prefix.clone();
    c
}

/// Starts OP with `config` and waits until `/readyz` says ready.
pub async fn start_op(config: main_project::Config) -> TestResult<Running> {
    let op = start_op_unready(config).await?;
    wait_ready(&format!("{}/readyz", op.base), Duration::from_secs(30)).await?;
    Ok(op)
}

/// Starts OP without waiting for readiness.
pub async fn start_op_unready(mut config: main_project::Config) -> TestResult<Running> {
    Running::spawn(move |listener, rx| async move {
        if let Ok(a) = listener.local_addr() {
            config.listen = a;
        }
        let shutdown = async move {
            let _ = rx.await;
        };
        if let Err(e) = main_project::serve(config, listener, shutdown).await {
            eprintln!("main-project stopped: {e}");
        }
    })
    .await
}

pub async fn wait_ready(url: &str, within: Duration) -> TestResult {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{url} not ready within {within:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` until it returns true or the deadline passes.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F) -> TestResult
where
    F: FnMut() -> Fut,
    Fut: Future<Output = TestResult<bool>>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await? {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("not within {within:?}: {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls OP's metric `name` until `pred` holds for its value (20 s at most).
pub async fn wait_metric(
    api: &Api,
    what: &str,
    name: &'static str,
    pred: impl Fn(u64) -> bool + Clone,
) -> TestResult {
    eventually(what, Duration::from_secs(20), || {
        let api = api.clone();
        let pred = pred.clone();
        async move { Ok(pred(metric_value(&api.metrics().await?, name)?)) }
    })
    .await
}

/// Polls `GET /api/v1/session` with `token` until the answer passes `pred`.
pub async fn wait_session(
    api: &Api,
    token: &str,
    what: &str,
    pred: fn(&Answer) -> bool,
) -> TestResult {
    eventually(what, Duration::from_secs(20), || {
        let api = api.clone();
        let token = token.to_owned();
        async move { Ok(pred(&api.get("/api/v1/session", Some(&token)).await?)) }
    })
    .await
}

/// A small HTTP client for OP's API.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

/// Status, headers and JSON body of an answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
    pub cache_control: Option<String>,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.to_owned(),
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> TestResult<Answer> {
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header("retry-after");
        let cache_control = header("cache-control");
        let bytes = resp.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&bytes) }))
        };
        Ok(Answer {
            status,
            body,
            retry_after,
            cache_control,
        })
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> TestResult<Answer> {
        let mut r = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        self.send(r).await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> TestResult<Answer> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        self.send(r).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResult<Answer> {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        self.send(r).await
    }

    pub async fn get_with_auth(&self, path: &str, authorization: &str) -> TestResult<Answer> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("authorization", authorization);
        self.send(r).await
    }

    pub async fn put(&self, path: &str, body: &Value, token: &str) -> TestResult<Answer> {
        let r = self
            .http
            .put(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body);
        self.send(r).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> TestResult<Answer> {
        let r = self
            .http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(token);
        self.send(r).await
    }

    pub async fn register(&self, email: &str, password: &str) -> TestResult<Answer> {
        self.post(
            "/api/v1/register",
            &json!({ "email": email, "password": password }),
            None,
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> TestResult<Answer> {
        self.post(
            "/api/v1/login",
            &json!({ "email": email, "password": password }),
            None,
        )
        .await
    }

    /// Registers and logs in; the token pair.
    pub async fn user(&self, email: &str, password: &str) -> TestResult<Value> {
        let r = self.register(email, password).await?;
        if r.status != 201 {
            return Err(format!("register {email}: {r:?}").into());
        }
        let l = self.login(email, password).await?;
        if l.status != 200 {
            return Err(format!("login {email}: {l:?}").into());
        }
        Ok(l.body)
    }

    pub async fn metrics(&self) -> TestResult<String> {
        Ok(self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?)
    }
}

pub fn s(v: &Value, key: &str) -> TestResult<String> {
    v[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no string {key} in {v}").into())
}

/// Everything most tests need: env, MA, one OP and a client.
pub struct Stack {
    pub env: Env,
    pub ma: Ma,
    /// Kept alive for the test's duration.
    pub _op: Running,
    pub api: Api,
}

pub async fn stack(mode: Mode) -> TestResult<Stack> {
    stack_with(mode, |_| {}).await
}

pub async fn stack_with(
    mode: Mode,
    tweak: impl FnOnce(&mut main_project::Config),
) -> TestResult<Stack> {
    let env = Env::new(mode).await?;
    let ma = start_ma(&env).await?;
    let mut config = op_config(&env, &ma);
    tweak(&mut config);
    let op = start_op(config).await?;
    let api = Api::new(&op.base);
    Ok(Stack {
        env,
        ma,
        _op: op,
        api,
    })
}

/// Verified claims as the revocation view checks them (shared with OP's
/// unit tests).
pub use authrealm_tokens::testsupport::access_claims as claims;

/// The `n`th canonical 22-character base64url id, shaped as MA makes its
/// `jti`s and `sid`s (16 bytes).
pub fn canonical_id(n: u32) -> String {
    use base64::Engine as _;
    let mut b = [0x5a_u8; 16];
    b[12..].copy_from_slice(&n.to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// OP's revocation view following a real Redis (the task ends when this is
/// dropped), with the metrics it counts into.
pub struct Follower {
    pub view: std::sync::Arc<main_project::revocation::RevocationView>,
    pub metrics: main_project::metrics::Metrics,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts following `keys` on `client` and waits until the view is known
/// (its first load done).
pub async fn follow(
    client: redis::Client,
    keys: authrealm_tokens::revocation::RevocationKeys,
) -> TestResult<Follower> {
    use main_project::revocation::{RevocationView, follow_redis};
    let metrics = main_project::metrics::Metrics::new()?;
    let view = std::sync::Arc::new(RevocationView::new(false, metrics.clone()));
    let task = tokio::spawn(follow_redis(
        client,
        keys,
        std::sync::Arc::clone(&view),
        Duration::from_secs(5),
        authrealm_tokens::Clock::System,
        60,
    ));
    let loaded = std::sync::Arc::clone(&view);
    eventually("the view is loaded", Duration::from_secs(30), move || {
        let known = loaded.is_known();
        async move { Ok(known) }
    })
    .await?;
    Ok(Follower {
        view,
        metrics,
        task,
    })
}
