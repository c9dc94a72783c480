//! Starts real auth-service and main-project processes (the workspace's own
//! binaries) on free loopback ports, waits until they are ready, and stops
//! them when dropped. Used by the flow test and the load harness.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use authrealm_runtime::env;

use crate::FlowError;

/// Paths of the two service binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The `auth-service` executable.
    pub auth_service: PathBuf,
    /// The `main-project` executable.
    pub main_project: PathBuf,
}

/// Directory of prebuilt debug service binaries (see [`Binaries::build`]).
pub const BIN_DIR_VAR: &str = "AUTHREALM_FLOW_BIN_DIR";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

impl Binaries {
    /// Builds both binaries with cargo (a no-op when they are fresh) and
    /// returns their paths in the workspace target directory.
    ///
    /// For a debug build, `AUTHREALM_FLOW_BIN_DIR` names a directory that
    /// already holds both (the test command points it at the binaries its
    /// own workspace test build made, so CI compiles the services once:
    /// a `cargo build -p …` here would resolve features differently and
    /// rebuild half the dependency tree).
    ///
    /// # Errors
    /// When cargo cannot be run or the build fails.
    pub fn build(release: bool) -> Result<Self, FlowError> {
        if !release && let Some(dir) = std::env::var_os(BIN_DIR_VAR).map(PathBuf::from) {
            let found = Self {
                auth_service: dir.join("auth-service"),
                main_project: dir.join("main-project"),
            };
            if found.auth_service.is_file() && found.main_project.is_file() {
                return Ok(found);
            }
            return Err(FlowError::Setup(format!(
                "{BIN_DIR_VAR}={} does not hold auth-service and main-project",
                dir.display()
            )));
        }
        let root = workspace_root();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&root).args([
            "build",
            "--quiet",
            "-p",
            "auth-service",
            "-p",
            "main-project",
            "--bins",
        ]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .map_err(|e| FlowError::Setup(format!("cannot run cargo: {e}")))?;
        if !status.success() {
            return Err(FlowError::Setup(format!(
                "building the service binaries failed: {status}"
            )));
        }
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let dir = target.join(if release { "release" } else { "debug" });
        Ok(Self {
            auth_service: dir.join("auth-service"),
            main_project: dir.join("main-project"),
        })
    }
}

/// Which service a process is: it decides the listeners it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// MA: public, internal and metrics listeners.
    AuthService,
    /// OP: public and metrics listeners.
    MainProject,
}

/// A running service process; killed when dropped.
#[derive(Debug)]
pub struct Service {
    child: Child,
    /// Public base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    /// Base URL of MA's internal API (`/v1`); OP's public URL for OP.
    pub internal_url: String,
    /// Base URL of `/metrics`, `/healthz`, `/readyz`.
    pub metrics_url: String,
    /// Operating-system process id (for CPU accounting).
    pub pid: u32,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound, read, released), for a child process to
/// bind a moment later.
///
/// Picked at random below Linux's ephemeral range (32768–60999): a port
/// the kernel hands out for `bind(0)` comes from that range, which every
/// outgoing connection of every concurrent test also draws from, so one of
/// them could take it between the release here and the child's bind.
/// Falls back to `bind(0)` when no port below the range is free.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> Result<u16, FlowError> {
    use std::hash::{BuildHasher as _, Hasher as _};
    const LOW: u16 = 20_000;
    const SPAN: u16 = 12_768;
    for attempt in 0..64u64 {
        // A fresh randomly keyed hasher per attempt: a random number
        // without another dependency.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(attempt);
        let port = LOW + u16::try_from(h.finish() % u64::from(SPAN)).unwrap_or(0);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| FlowError::Setup(format!("no free port: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| FlowError::Setup(e.to_string()))
}

impl Service {
    /// Starts `bin` as `part` listening publicly on `port` (the caller picks
    /// it: MA's issuer names it) and on free loopback ports for metrics and,
    /// for MA, the internal API, with `env` on top of an environment cleared of
    /// `AUTHREALM_*`, then waits up to `ready_within` for `/readyz` on the
    /// metrics port.
    ///
    /// # Errors
    /// When the process cannot start, exits, or is not ready in time.
    pub async fn start(
        bin: &Path,
        part: Part,
        public: u16,
        env: &[(&str, String)],
        ready_within: Duration,
    ) -> Result<Self, FlowError> {
        let metrics = free_port()?;
        let internal = match part {
            Part::AuthService => Some(free_port()?),
            Part::MainProject => None,
        };
        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars() {
            if k.starts_with(env::PREFIX) {
                cmd.env_remove(k);
            }
        }
        cmd.env(env::LISTEN, format!("127.0.0.1:{public}"))
            .env(env::METRICS_LISTEN, format!("127.0.0.1:{metrics}"))
            .env(
                "RUST_LOG",
                std::env::var("AUTHREALM_TEST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .stdin(Stdio::null());
        if let Some(port) = internal {
            cmd.env(env::ma::INTERNAL_LISTEN, format!("127.0.0.1:{port}"));
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .map_err(|e| FlowError::Setup(format!("cannot start {}: {e}", bin.display())))?;
        let url = format!("http://127.0.0.1:{public}");
        let mut service = Self {
            pid: child.id(),
            child,
            internal_url: internal.map_or_else(|| url.clone(), |p| format!("http://127.0.0.1:{p}")),
            url,
            metrics_url: format!("http://127.0.0.1:{metrics}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + ready_within;
        loop {
            if let Ok(Some(status)) = service.child.try_wait() {
                return Err(FlowError::Setup(format!(
                    "{} exited during start: {status}",
                    bin.display()
                )));
            }
            let ready = client
                .get(format!("{}/readyz", service.metrics_url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(service);
            }
            if Instant::now() > deadline {
                let _ = service.child.kill();
                return Err(FlowError::Setup(format!(
                    "{} not ready within {ready_within:?}",
                    bin.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Creates a fresh database on the Postgres server of `base` (a
/// `postgres://.../db` URL) and returns its URL.
///
/// # Errors
/// When the server cannot be reached or the database cannot be created.
pub async fn fresh_database(base: &str) -> Result<String, FlowError> {
    use sqlx::Connection as _;
    let suffix =
        authrealm_tokens::random_token(8).map_err(|_| FlowError::Setup("no randomness".into()))?;
    let name = format!("flow_{}", suffix.to_lowercase().replace(['-', '_'], "x"));
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .map_err(|e| FlowError::Setup(format!("cannot connect to Postgres: {e}")))?;
    // `name` is built here from base64url characters only: safe to splice in.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .map_err(|e| FlowError::Setup(format!("cannot create a database: {e}")))?;
    let (head, _) = base
        .rsplit_once('/')
        .ok_or_else(|| FlowError::Setup("DATABASE_URL has no database part".into()))?;
    Ok(format!("{head}/{name}"))
}
