//! The fixed parts of one run and how AuthRealm's processes are started on
//! them: binaries, the signing key and service credential, the run's own
//! Redis, databases on the Postgres server, and the load generator.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use authrealm_runtime::env;
use authrealm_tokens::keyset::{FILE_NAME, KeyEntry, KeySetFile, KeyState, SigningAlgorithm};

use crate::error::{BenchError, Result};
use crate::job::{Job, ScenarioSpec};
use crate::launch::{Generator, OwnRedis, Pinning, Server, ServerSpec, free_port};
use crate::settings::Settings;

/// argon2id memory OP and the baseline use (OP's default, the OWASP minimum).
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
/// argon2id iterations OP and the baseline use.
pub const ARGON2_ITERATIONS: u32 = 2;

/// The executables of a run.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// MA.
    pub auth_service: PathBuf,
    /// OP.
    pub main_project: PathBuf,
    /// The references.
    pub baseline: PathBuf,
    /// The load generator.
    pub generator: PathBuf,
}

/// Everything the scenarios share.
#[derive(Debug)]
pub struct Rig {
    /// Executables.
    pub bins: Binaries,
    /// Where servers and the generator run.
    pub pinning: Pinning,
    /// The generator, ready to run jobs.
    pub generator: Generator,
    /// The run's own Redis.
    pub redis: OwnRedis,
    /// The Postgres server (`postgres://…/db`).
    pub postgres: String,
    /// The run's signing key.
    pub key: KeyEntry,
    /// Directory with `keyset.json`.
    pub keys_dir: tempfile::TempDir,
    /// The service credential OP presents to MA (generated, never printed).
    pub credential: String,
    /// `iss` of every token.
    pub issuer: String,
    /// The run's settings.
    pub settings: Settings,
    databases: Mutex<Vec<String>>,
}

impl Rig {
    /// Generates the key and credential and starts the run's Redis.
    ///
    /// # Errors
    /// When key material cannot be made or Redis cannot start.
    pub async fn new(bins: Binaries, postgres: String, settings: Settings) -> Result<Self> {
        let keys_dir =
            tempfile::tempdir().map_err(|e| BenchError::io("creating the key directory", e))?;
        let now = authrealm_tokens::unix_now();
        let key = KeyEntry::generate(
            SigningAlgorithm::EdDSA,
            "bench-1".into(),
            KeyState::Active,
            now,
        )
        .map_err(|e| BenchError::Signing(e.to_string()))?;
        let set = KeySetFile::new(vec![key.clone()]);
        let json = set
            .to_json()
            .map_err(|e| BenchError::Signing(e.to_string()))?;
        std::fs::write(keys_dir.path().join(FILE_NAME), json)
            .map_err(|e| BenchError::io("writing keyset.json", e))?;
        let credential = random(32)?;
        let pinning = Pinning::detect();
        let generator = Generator {
            bin: bins.generator.clone(),
            cpus: pinning.generator.clone(),
            other_loads: std::sync::Arc::default(),
        };
        Ok(Self {
            redis: OwnRedis::start().await?,
            generator,
            pinning,
            bins,
            postgres,
            key,
            keys_dir,
            credential,
            issuer: "http://authrealm-bench.invalid".into(),
            settings,
            databases: Mutex::new(Vec::new()),
        })
    }

    /// Path of the run's `keyset.json`.
    #[must_use]
    pub fn keyset_path(&self) -> PathBuf {
        self.keys_dir.path().join(FILE_NAME)
    }

    fn ready_within(&self) -> Duration {
        Duration::from_secs(120)
    }

    /// Starts MA on the server CPU with Redis keys under `prefix`.
    ///
    /// # Errors
    /// When it does not become ready.
    pub async fn start_ma(&self, name: &str, prefix: &str) -> Result<Server> {
        // The load goes to the internal API (`/v1`), where OP calls MA.
        let (internal, metrics) = (free_port()?, free_port()?);
        let spec = ServerSpec {
            name: name.into(),
            bin: self.bins.auth_service.clone(),
            args: Vec::new(),
            env: vec![
                (env::ISSUER.into(), self.issuer.clone()),
                (env::ma::ACCESS_TTL.into(), "1h".into()),
                (
                    env::ma::KEYS_DIR.into(),
                    self.keys_dir.path().display().to_string(),
                ),
                (env::SERVICE_CREDENTIAL.into(), self.credential.clone()),
                (env::REDIS_URL.into(), self.redis.url.clone()),
                (env::REDIS_PREFIX.into(), prefix.into()),
            ],
            port: internal,
            listeners: vec![
                (env::LISTEN, free_port()?),
                (env::ma::INTERNAL_LISTEN, internal),
                (env::METRICS_LISTEN, metrics),
            ],
            metrics_port: Some(metrics),
            ready_path: "/readyz".into(),
        };
        Server::start(&spec, self.pinning.server.as_deref(), self.ready_within()).await
    }

    /// Starts an OP replica on the server CPU, talking to MA at `ma_url`,
    /// with Redis keys under `prefix`, users in `database`, and `extra`
    /// settings.
    ///
    /// # Errors
    /// When it does not become ready.
    pub async fn start_op(
        &self,
        name: &str,
        ma_url: &str,
        prefix: &str,
        database: &str,
        extra: &[(&str, String)],
    ) -> Result<Server> {
        let mut env = vec![
            (env::op::AUTH_SERVICE_URL.to_owned(), ma_url.to_owned()),
            (env::ISSUER.into(), self.issuer.clone()),
            (env::SERVICE_CREDENTIAL.into(), self.credential.clone()),
            (env::op::DATABASE_URL.into(), database.to_owned()),
            (env::REDIS_URL.into(), self.redis.url.clone()),
            (env::REDIS_PREFIX.into(), prefix.to_owned()),
            (env::op::LOGIN_MAX_FAILURES.into(), "1000000".into()),
            (
                env::op::ARGON2_MEMORY_KIB.into(),
                ARGON2_MEMORY_KIB.to_string(),
            ),
            (
                env::op::ARGON2_ITERATIONS.into(),
                ARGON2_ITERATIONS.to_string(),
            ),
        ];
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let (port, metrics) = (free_port()?, free_port()?);
        let spec = ServerSpec {
            name: name.into(),
            bin: self.bins.main_project.clone(),
            args: Vec::new(),
            env,
            port,
            listeners: vec![(env::LISTEN, port), (env::METRICS_LISTEN, metrics)],
            metrics_port: Some(metrics),
            ready_path: "/readyz".into(),
        };
        Server::start(&spec, self.pinning.server.as_deref(), self.ready_within()).await
    }

    /// Starts the reference server on the server CPU.
    ///
    /// # Errors
    /// When it does not become ready.
    pub async fn start_baseline(&self) -> Result<Server> {
        let port = free_port()?;
        let spec = ServerSpec {
            name: "baseline".into(),
            bin: self.bins.baseline.clone(),
            args: vec![
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--keyset".into(),
                self.keyset_path().display().to_string(),
                "--issuer".into(),
                self.issuer.clone(),
                "--audience".into(),
                crate::AUDIENCE.into(),
                "--argon2-memory-kib".into(),
                ARGON2_MEMORY_KIB.to_string(),
                "--argon2-iterations".into(),
                ARGON2_ITERATIONS.to_string(),
            ],
            env: Vec::new(),
            port,
            listeners: Vec::new(),
            metrics_port: None,
            ready_path: "/readyz".into(),
        };
        Server::start(&spec, self.pinning.server.as_deref(), self.ready_within()).await
    }

    /// A timed job against `servers` (their CPU is the subject's).
    #[must_use]
    pub fn job(&self, servers: &[&Server], concurrency: usize, scenario: ScenarioSpec) -> Job {
        Job {
            targets: servers.iter().map(|s| s.addr).collect(),
            server_pids: servers.iter().map(|s| s.pid).collect(),
            helper_pids: vec![self.redis.pid],
            concurrency,
            warmup_ms: millis(self.settings.warmup),
            window_ms: millis(self.settings.window),
            max_requests: None,
            scenario,
            busy_poll: false,
        }
    }

    /// A job that stops after `count` successful requests (at most `limit`).
    #[must_use]
    pub fn count_job(
        &self,
        servers: &[&Server],
        concurrency: usize,
        count: u64,
        limit: Duration,
        scenario: ScenarioSpec,
    ) -> Job {
        Job {
            warmup_ms: 0,
            window_ms: millis(limit),
            max_requests: Some(count),
            ..self.job(servers, concurrency, scenario)
        }
    }

    /// A Redis connection to the run's Redis.
    ///
    /// # Errors
    /// When Redis does not answer.
    pub async fn redis_conn(&self) -> Result<redis::aio::MultiplexedConnection> {
        let client =
            redis::Client::open(self.redis.url.as_str()).map_err(|source| BenchError::Redis {
                what: "client",
                source,
            })?;
        // No response timeout: FLUSHALL of millions of keys and pipelines of
        // ten thousand commands take longer than the client's default.
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(None);
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|source| BenchError::Redis {
                what: "connect",
                source,
            })
    }

    /// Empties the run's Redis (it is the run's own: nobody else uses it).
    ///
    /// # Errors
    /// When Redis does not answer.
    pub async fn flush_redis(&self) -> Result<()> {
        let mut c = self.redis_conn().await?;
        redis::cmd("FLUSHALL")
            .query_async::<()>(&mut c)
            .await
            .map_err(|source| BenchError::Redis {
                what: "FLUSHALL",
                source,
            })
    }

    /// Creates a fresh database on the Postgres server; dropped by [`Rig::cleanup`].
    ///
    /// # Errors
    /// When Postgres refuses.
    pub async fn fresh_database(&self) -> Result<String> {
        use sqlx::Connection as _;
        let name = format!(
            "bench_{}",
            random(8)?.to_lowercase().replace(['-', '_'], "x")
        );
        let mut conn = sqlx::PgConnection::connect(&self.postgres)
            .await
            .map_err(|source| BenchError::Postgres {
                what: "connect",
                source,
            })?;
        // `name` is made here of base64url letters and digits only.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .map_err(|source| BenchError::Postgres {
                what: "CREATE DATABASE",
                source,
            })?;
        if let Ok(mut d) = self.databases.lock() {
            d.push(name.clone());
        }
        let (head, _) = self
            .postgres
            .rsplit_once('/')
            .ok_or_else(|| BenchError::Setup("DATABASE_URL has no database part".into()))?;
        Ok(format!("{head}/{name}"))
    }

    /// Drops the databases this run created (call after their users stopped).
    pub async fn cleanup(&self) {
        use sqlx::Connection as _;
        let names = self
            .databases
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        let Ok(mut conn) = sqlx::PgConnection::connect(&self.postgres).await else {
            return;
        };
        for name in names {
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
            {
                eprintln!("could not drop database {name}: {e}");
            }
        }
    }
}

/// A random base64url string of `n` random bytes.
///
/// # Errors
/// When the system has no randomness.
pub fn random(n: usize) -> Result<String> {
    authrealm_tokens::random_token(n).map_err(|_| BenchError::Setup("no randomness".into()))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
