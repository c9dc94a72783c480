//! The closed-loop HTTP/1.1 load engine the generator runs: `concurrency`
//! keep-alive connections, each sending its next request when the last one
//! was answered, recording latencies and reading the servers' CPU clock at
//! the window's edges.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, StatusCode};

use crate::error::{BenchError, Result};
use crate::job::WindowResult;
use crate::stats::percentile;

/// What one scenario sends and how it judges an answer. `state` belongs to
/// one connection (for example the refresh token to spend next).
pub trait Scenario: Send + Sync + 'static {
    /// A request sent once on each connection before its loop starts
    /// (its answer goes to [`Scenario::after_setup`]).
    fn setup(&self, worker: usize, host: &str) -> Option<Request<Full<Bytes>>> {
        let _ = (worker, host);
        None
    }
    /// Takes the setup answer into the connection's state; false stops the connection.
    fn after_setup(&self, status: StatusCode, body: &[u8], state: &mut Option<String>) -> bool {
        let _ = (body, state);
        status.is_success()
    }
    /// The next request on this connection.
    fn request(
        &self,
        worker: usize,
        seq: u64,
        host: &str,
        state: &mut Option<String>,
    ) -> Request<Full<Bytes>>;
    /// Whether the answer is the expected one; may update `state`.
    fn check(&self, status: StatusCode, body: &[u8], state: &mut Option<String>) -> bool {
        let _ = (body, state);
        status.is_success()
    }
    /// Whether the scenario had to reuse requests it meant to be unique.
    fn exhausted(&self) -> bool {
        false
    }
}

/// How long to run and whom to account.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Servers; connection `i` uses `targets[i % len]`.
    pub targets: Vec<SocketAddr>,
    /// Subject processes (their CPU is the denominator of "per CPU-s").
    pub server_pids: Vec<u32>,
    /// Helpers of the harness (not "other load").
    pub helper_pids: Vec<u32>,
    /// Connections.
    pub concurrency: usize,
    /// Discarded lead-in.
    pub warmup: Duration,
    /// Measured window (the time limit when `max_requests` is set).
    pub window: Duration,
    /// Stop after this many successes.
    pub max_requests: Option<u64>,
}

struct Clocks {
    server: Duration,
    generator: Duration,
    helpers: Duration,
    machine: Duration,
    at: Instant,
}

fn read_clocks(plan: &Plan) -> Clocks {
    Clocks {
        server: crate::proc::cpu_time_of(&plan.server_pids),
        generator: crate::proc::cpu_time(std::process::id()).unwrap_or_default(),
        helpers: crate::proc::cpu_time_of(&plan.helper_pids),
        machine: crate::proc::machine_busy().unwrap_or_default(),
        at: Instant::now(),
    }
}

struct Tally {
    ok: u64,
    failed: u64,
    first_failure: Option<String>,
    latencies: Vec<u32>,
}

/// Runs `scenario` as `plan` says.
///
/// # Errors
/// When a connection cannot be opened (a failed request is counted, not an error).
pub async fn run(plan: Plan, scenario: Arc<dyn Scenario>) -> Result<WindowResult> {
    if plan.targets.is_empty() || plan.concurrency == 0 {
        return Err(BenchError::Setup(
            "a load job needs targets and connections".into(),
        ));
    }
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.window;
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::with_capacity(plan.concurrency);
    for worker in 0..plan.concurrency {
        let addr = plan.targets[worker % plan.targets.len()];
        let scenario = scenario.clone();
        let done = done.clone();
        let max = plan.max_requests;
        workers.push(tokio::spawn(async move {
            connection(worker, addr, scenario, measure_from, end, done, max).await
        }));
    }
    // The window's edges: the CPU clocks are read at its start and end.
    let at = |when: Instant| {
        let plan = plan.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(when.into()).await;
            read_clocks(&plan)
        })
    };
    let first = at(measure_from);
    // A timed window ends at `end` even for answers still in flight.
    let last = plan.max_requests.is_none().then(|| at(end));
    let mut tally = Tally {
        ok: 0,
        failed: 0,
        first_failure: None,
        latencies: Vec::new(),
    };
    for w in workers {
        let t = w
            .await
            .map_err(|e| BenchError::Setup(format!("load connection task: {e}")))??;
        tally.ok += t.ok;
        tally.failed += t.failed;
        tally.first_failure = tally.first_failure.or(t.first_failure);
        tally.latencies.extend(t.latencies);
    }
    let before = first
        .await
        .map_err(|e| BenchError::Setup(format!("clock task: {e}")))?;
    let after = match last {
        Some(task) => task
            .await
            .map_err(|e| BenchError::Setup(format!("clock task: {e}")))?,
        None => read_clocks(&plan),
    };
    tally.latencies.sort_unstable();
    let ms = |p: f64| f64::from(percentile(&tally.latencies, p)) / 1000.0;
    Ok(WindowResult {
        ok: tally.ok,
        failed: tally.failed,
        first_failure: tally.first_failure,
        wall_secs: after.at.duration_since(before.at).as_secs_f64(),
        server_cpu_secs: after.server.saturating_sub(before.server).as_secs_f64(),
        generator_cpu_secs: after
            .generator
            .saturating_sub(before.generator)
            .as_secs_f64(),
        helper_cpu_secs: after.helpers.saturating_sub(before.helpers).as_secs_f64(),
        machine_busy_secs: after.machine.saturating_sub(before.machine).as_secs_f64(),
        machine_cpus: crate::proc::machine_cpus(),
        p50_ms: ms(50.0),
        p90_ms: ms(90.0),
        p99_ms: ms(99.0),
        max_ms: ms(100.0),
        exhausted: scenario.exhausted(),
    })
}

async fn connection(
    worker: usize,
    addr: SocketAddr,
    scenario: Arc<dyn Scenario>,
    measure_from: Instant,
    end: Instant,
    done: Arc<AtomicU64>,
    max: Option<u64>,
) -> Result<Tally> {
    let mut t = Tally {
        ok: 0,
        failed: 0,
        first_failure: None,
        latencies: Vec::with_capacity(1 << 14),
    };
    let mut sender = open(addr).await?;
    let host = addr.to_string();
    let mut state = None;
    if let Some(req) = scenario.setup(worker, &host) {
        let good = match send(&mut sender, req).await {
            Ok((status, body)) => scenario.after_setup(status, &body, &mut state),
            Err(_) => false,
        };
        if !good {
            t.failed += 1;
            t.first_failure = Some("setup request failed".into());
            return Ok(t);
        }
    }
    let mut seq = 0u64;
    loop {
        let t0 = Instant::now();
        if t0 >= end || max.is_some_and(|m| done.load(Ordering::Relaxed) >= m) {
            break;
        }
        let req = scenario.request(worker, seq, &host, &mut state);
        seq += 1;
        let answer = send(&mut sender, req).await;
        let t1 = Instant::now();
        let good = match &answer {
            Ok((status, body)) => scenario.check(*status, body, &mut state),
            Err(_) => false,
        };
        let counted = t0 >= measure_from && (max.is_some() || t1 <= end);
        if counted {
            t.latencies
                .push(u32::try_from(t1.duration_since(t0).as_micros()).unwrap_or(u32::MAX));
            if good {
                t.ok += 1;
                done.fetch_add(1, Ordering::Relaxed);
            } else {
                t.failed += 1;
                if t.first_failure.is_none() {
                    t.first_failure = Some(match &answer {
                        Ok((status, _)) => format!("HTTP {}", status.as_u16()),
                        Err(e) => e.clone(),
                    });
                }
            }
        }
        if !good && sender.ready().await.is_err() {
            // The server closed the connection (counted above): open another.
            match open(addr).await {
                Ok(s) => sender = s,
                Err(_) => break,
            }
        }
    }
    Ok(t)
}

async fn open(addr: SocketAddr) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| BenchError::io(format!("connecting to {addr}"), e))?;
    stream
        .set_nodelay(true)
        .map_err(|e| BenchError::io("TCP_NODELAY", e))?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| BenchError::Setup(format!("HTTP handshake with {addr}: {e}")))?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> std::result::Result<(StatusCode, Bytes), String> {
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("transport: {e}"))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| format!("body: {e}"))?;
    Ok((status, body))
}
