//! Starting the processes of a run: the servers (MA, OP replicas, the
//! baseline) pinned to the server core, the harness's own Redis, and the
//! load generator pinned to the other core. Every process is stopped when
//! its handle is dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt as _;

use crate::error::{BenchError, Result};
use crate::job::{Job, WindowResult};

/// Which CPUs servers and the generator run on (`taskset -c` lists).
#[derive(Debug, Clone, Default)]
pub struct Pinning {
    /// CPUs of every server (subject and reference alike).
    pub server: Option<String>,
    /// CPUs of the load generator.
    pub generator: Option<String>,
}

impl Pinning {
    /// Server on CPU 0 and generator on CPU 1 when there are two CPUs and
    /// `taskset`; otherwise no pinning.
    #[must_use]
    pub fn detect() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let taskset = std::process::Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if cpus >= 2 && taskset {
            Self {
                server: Some("0".into()),
                generator: Some(if cpus == 2 {
                    "1".into()
                } else {
                    format!("1-{}", cpus - 1)
                }),
            }
        } else {
            Self::default()
        }
    }

    /// One line for the report.
    #[must_use]
    pub fn describe(&self) -> String {
        match (&self.server, &self.generator) {
            (Some(s), Some(g)) => {
                format!("servers pinned to CPU {s}, load generator to CPU {g} (taskset)")
            }
            _ => "no pinning (one CPU or no taskset): servers and generator share the CPUs".into(),
        }
    }
}

fn command(bin: &Path, cpus: Option<&str>) -> tokio::process::Command {
    match cpus {
        Some(c) => {
            let mut cmd = tokio::process::Command::new("taskset");
            cmd.arg("-c").arg(c).arg(bin);
            cmd
        }
        None => tokio::process::Command::new(bin),
    }
}

/// A free loopback port (bound, read, released).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| BenchError::io("binding a free port", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| BenchError::io("reading a free port", e))
}

/// A running server process, stopped when dropped.
#[derive(Debug)]
pub struct Server {
    child: tokio::process::Child,
    /// What it is, for messages.
    pub name: String,
    /// Operating-system process id.
    pub pid: u32,
    /// `http://127.0.0.1:<port>`: what the load is sent to (MA's internal
    /// API, OP's public API, the reference server).
    pub url: String,
    /// Base URL of `/metrics` and `/readyz` (the metrics listener of a
    /// service; the same as `url` for the reference server).
    pub metrics_url: String,
    /// The listening address.
    pub addr: std::net::SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// How to start one server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// What it is, for messages.
    pub name: String,
    /// The executable.
    pub bin: PathBuf,
    /// Command-line arguments.
    pub args: Vec<String>,
    /// Environment on top of the harness's, cleared of `AUTHREALM_*`.
    pub env: Vec<(String, String)>,
    /// The port the load is sent to.
    pub port: u16,
    /// Each listener's address variable and port (a service's public,
    /// internal and metrics listeners; empty for the reference server,
    /// which takes flags).
    pub listeners: Vec<(&'static str, u16)>,
    /// Port of the metrics listener, when there is one.
    pub metrics_port: Option<u16>,
    /// Path answering 200 (on the metrics port) once the server is ready.
    pub ready_path: String,
}

impl Server {
    /// Starts `spec` on `cpus` and waits up to `within` for its ready path.
    ///
    /// # Errors
    /// When it cannot start, exits, or is not ready in time.
    pub async fn start(spec: &ServerSpec, cpus: Option<&str>, within: Duration) -> Result<Self> {
        let mut cmd = command(&spec.bin, cpus);
        for (k, _) in std::env::vars() {
            if k.starts_with(authrealm_runtime::env::PREFIX) {
                cmd.env_remove(k);
            }
        }
        for (var, port) in &spec.listeners {
            cmd.env(var, format!("127.0.0.1:{port}"));
        }
        cmd.env("RUST_LOG", "warn")
            .args(&spec.args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .map_err(|e| BenchError::io(format!("starting {}", spec.name), e))?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::Setup(format!("{} exited at once", spec.name)))?;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], spec.port));
        let url = format!("http://{addr}");
        let mut server = Self {
            child,
            name: spec.name.clone(),
            pid,
            metrics_url: spec
                .metrics_port
                .map_or_else(|| url.clone(), |p| format!("http://127.0.0.1:{p}")),
            url,
            addr,
        };
        server.wait_ready(&spec.ready_path, within).await?;
        // For attaching a profiler (`perf record -p <pid>`).
        eprintln!(
            "    {} ready at {} (pid {})",
            server.name, server.url, server.pid
        );
        Ok(server)
    }

    async fn wait_ready(&mut self, path: &str, within: Duration) -> Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BenchError::Setup(format!(
                    "{} exited during start: {status}",
                    self.name
                )));
            }
            let ready = client
                .get(format!("{}{path}", self.metrics_url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BenchError::Setup(format!(
                    "{} not ready within {within:?}",
                    self.name
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A `redis-server` of the run's own (so its memory, keyspace and clients
/// are the run's alone), stopped when dropped.
#[derive(Debug)]
pub struct OwnRedis {
    child: tokio::process::Child,
    /// `redis://127.0.0.1:<port>`.
    pub url: String,
    /// Operating-system process id.
    pub pid: u32,
    _dir: tempfile::TempDir,
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl OwnRedis {
    /// Starts `redis-server` on a free port without persistence.
    ///
    /// # Errors
    /// When `redis-server` is missing or does not answer.
    pub async fn start() -> Result<Self> {
        let dir =
            tempfile::tempdir().map_err(|e| BenchError::io("creating Redis's directory", e))?;
        let port = free_port()?;
        let child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::io("starting redis-server (is it installed?)", e))?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::Setup("redis-server exited at once".into()))?;
        let url = format!("redis://127.0.0.1:{port}");
        let redis = Self {
            child,
            url,
            pid,
            _dir: dir,
        };
        let client =
            redis::Client::open(redis.url.as_str()).map_err(|source| BenchError::Redis {
                what: "client",
                source,
            })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return Ok(redis);
            }
            if Instant::now() > deadline {
                return Err(BenchError::Setup(
                    "redis-server did not answer within 10 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The generator executable and where it runs.
#[derive(Debug, Clone)]
pub struct Generator {
    /// `bench-load`.
    pub bin: PathBuf,
    /// Its CPUs.
    pub cpus: Option<String>,
    /// Other work's share of the machine in every window so far.
    pub other_loads: Arc<Mutex<Vec<f64>>>,
}

/// A generator job running in the background.
#[derive(Debug)]
pub struct Running {
    child: tokio::process::Child,
    other_loads: Arc<Mutex<Vec<f64>>>,
}

impl Generator {
    /// Starts `job` and returns at once.
    ///
    /// # Errors
    /// When the process cannot be started or fed.
    pub async fn spawn(&self, job: &Job) -> Result<Running> {
        let input = serde_json::to_vec(job).map_err(|source| BenchError::Json {
            what: "job",
            source,
        })?;
        let mut child = command(&self.bin, self.cpus.as_deref())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::io("starting bench-load", e))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| BenchError::Setup("bench-load has no stdin".into()))?;
        stdin
            .write_all(&input)
            .await
            .map_err(|e| BenchError::io("writing the job", e))?;
        drop(stdin);
        Ok(Running {
            child,
            other_loads: self.other_loads.clone(),
        })
    }

    /// Runs `job` to its end.
    ///
    /// # Errors
    /// When the generator fails or answers something unreadable.
    pub async fn run(&self, job: &Job) -> Result<WindowResult> {
        self.spawn(job).await?.finish().await
    }
}

impl Running {
    /// Waits for the job's result.
    ///
    /// # Errors
    /// When the generator fails or answers something unreadable.
    pub async fn finish(self) -> Result<WindowResult> {
        let out = self
            .child
            .wait_with_output()
            .await
            .map_err(|e| BenchError::io("waiting for bench-load", e))?;
        if !out.status.success() {
            return Err(BenchError::Setup(format!(
                "bench-load failed: {}",
                out.status
            )));
        }
        let result: WindowResult =
            serde_json::from_slice(&out.stdout).map_err(|source| BenchError::Json {
                what: "generator result",
                source,
            })?;
        if let Ok(mut l) = self.other_loads.lock() {
            l.push(result.other_load());
        }
        Ok(result)
    }
}

/// The largest peak RSS (`VmHWM`) among `servers`, bytes.
#[must_use]
pub fn peak_of(servers: &[&Server]) -> u64 {
    servers
        .iter()
        .filter_map(|s| crate::proc::peak_rss(s.pid).ok())
        .max()
        .unwrap_or(0)
}
