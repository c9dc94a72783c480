//! A small closed-loop HTTP/1.1 load generator: `concurrency` keep-alive
//! connections, each sending its next request when the last answer arrived,
//! recording latency per request and the server's CPU time over the window.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, StatusCode};

/// What one scenario sends and how it judges an answer. `state` is per
/// connection (e.g. the refresh token to spend next).
pub trait Scenario: Send + Sync + 'static {
    /// Initial per-connection state.
    fn init(&self, worker: usize) -> Option<String> {
        let _ = worker;
        None
    }
    /// The next request on this connection.
    fn request(&self, worker: usize, seq: u64, state: &mut Option<String>) -> Request<Full<Bytes>>;
    /// Whether the answer is a success; may update `state`.
    fn check(&self, status: StatusCode, body: &[u8], state: &mut Option<String>) -> bool {
        let _ = (body, state);
        status.is_success()
    }
}

/// The result of one measured window.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Successful requests.
    pub ok: u64,
    /// Failed requests (unexpected status or transport error).
    pub failed: u64,
    /// Length of the window.
    pub wall: Duration,
    /// Server CPU time (all server processes given) during the window.
    pub cpu: Duration,
    /// Latencies in microseconds, sorted.
    pub latencies: Vec<u32>,
}

impl Outcome {
    /// Requests per wall-clock second.
    #[must_use]
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    /// Requests per second of server CPU time.
    #[must_use]
    pub fn per_cpu_sec(&self) -> f64 {
        self.ok as f64 / self.cpu.as_secs_f64().max(1e-3)
    }
    /// Latency percentile (0..=100) in milliseconds.
    #[must_use]
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let idx = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        f64::from(self.latencies[idx.min(self.latencies.len() - 1)]) / 1000.0
    }
}

fn cpu_of(pids: &[u32]) -> anyhow::Result<Duration> {
    pids.iter().map(|p| crate::proc::cpu_time(*p)).sum()
}

/// Runs `scenario` against `addr` for `warmup` (discarded) then `window`.
///
/// # Errors
/// When no connection can be opened or `/proc` cannot be read.
pub async fn run(
    addr: SocketAddr,
    pids: &[u32],
    concurrency: usize,
    warmup: Duration,
    window: Duration,
    scenario: Arc<dyn Scenario>,
) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + window;
    let cpu_before = Arc::new(tokio::sync::OnceCell::new());
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let scenario = scenario.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(1 << 16);
            let (mut ok, mut failed) = (0u64, 0u64);
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut state = scenario.init(worker);
            let mut seq = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let req = scenario.request(worker, seq, &mut state);
                seq += 1;
                let good = match sender.send_request(req).await {
                    Ok(resp) => {
                        let status = resp.status();
                        let body = resp
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        scenario.check(status, &body, &mut state)
                    }
                    Err(_) => false,
                };
                if t0 >= measure_from {
                    lat.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                    if good { ok += 1 } else { failed += 1 }
                }
                if !good && sender.ready().await.is_err() {
                    break;
                }
            }
            anyhow::Ok((ok, failed, lat))
        }));
    }
    // Read the server's CPU clock at the start of the measured window.
    let pids_owned = pids.to_vec();
    let before = cpu_before.clone();
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let _ = before.set(cpu_of(&pids_owned));
    });
    let mut out = Outcome::default();
    for w in workers {
        let (ok, failed, lat) = w.await??;
        out.ok += ok;
        out.failed += failed;
        out.latencies.extend(lat);
    }
    sampler.await?;
    let cpu_after = cpu_of(pids)?;
    let cpu_start = match cpu_before.get() {
        Some(Ok(d)) => *d,
        _ => anyhow::bail!("could not read the server CPU time"),
    };
    out.wall = window;
    out.cpu = cpu_after.saturating_sub(cpu_start);
    out.latencies.sort_unstable();
    Ok(out)
}
