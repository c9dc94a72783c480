//! `authrealm-bench`: the load harness. Starts the baseline server, MA and two
//! OP replicas from release builds against real Postgres and Redis, runs every
//! scenario, and prints requests/s, p50/p99 latency and requests per server
//! CPU-second, each also as a ratio to the bare axum baseline.

mod load;
mod proc;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use authrealm_flow::processes::{Binaries, Service, free_port, fresh_database};
use authrealm_tokens::AccessClaims;
use authrealm_tokens::keyset::{
    FILE_NAME, FORMAT_VERSION, KeyEntry, KeySetFile, KeyState, SigningAlgorithm,
};
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use load::{Outcome, Scenario};

const AUDIENCE: &str = "authrealm";
const PASSWORD: &str = "correct horse battery staple";

/// Measure AuthRealm on this machine.
#[derive(Parser, Debug)]
#[command(name = "authrealm-bench")]
struct Args {
    /// Seconds measured per throughput scenario.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent connections for throughput scenarios.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Revocations measured for propagation.
    #[arg(long, default_value_t = 1000)]
    revocations: usize,
    /// Concurrent logins in the burst.
    #[arg(long, default_value_t = 200)]
    burst: usize,
    /// Write the Markdown table here too.
    #[arg(long, default_value = "target/bench-results.md")]
    out: std::path::PathBuf,
}

fn get(path: &str, host: &str, bearer: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("host", host);
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Full::new(Bytes::new())).unwrap_or_default()
}

fn post(
    path: &str,
    host: &str,
    bearer: Option<&str>,
    body: &serde_json::Value,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", host)
        .header("content-type", "application/json");
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

/// GET with one fixed token (or none).
struct Repeated {
    path: &'static str,
    host: String,
    token: Option<String>,
}
impl Scenario for Repeated {
    fn request(&self, _: usize, _: u64, _: &mut Option<String>) -> Request<Full<Bytes>> {
        get(self.path, &self.host, self.token.as_deref())
    }
}

/// GET with a different token on every request.
struct FreshTokens {
    path: &'static str,
    host: String,
    tokens: Arc<Vec<String>>,
    next: AtomicUsize,
}
impl Scenario for FreshTokens {
    fn request(&self, _: usize, _: u64, _: &mut Option<String>) -> Request<Full<Bytes>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.tokens.len().max(1);
        get(
            self.path,
            &self.host,
            self.tokens.get(i).map(String::as_str),
        )
    }
}

/// MA mint.
struct Mint {
    host: String,
    credential: String,
}
impl Scenario for Mint {
    fn request(&self, worker: usize, seq: u64, _: &mut Option<String>) -> Request<Full<Bytes>> {
        post(
            "/v1/tokens",
            &self.host,
            Some(&self.credential),
            &serde_json::json!({"sub": format!("bench-{worker}-{seq}")}),
        )
    }
}

/// MA refresh chains: each connection spends the token it got last.
struct Refresh {
    host: String,
    credential: String,
    initial: Vec<String>,
}
impl Scenario for Refresh {
    fn init(&self, worker: usize) -> Option<String> {
        self.initial.get(worker).cloned()
    }
    fn request(&self, _: usize, _: u64, state: &mut Option<String>) -> Request<Full<Bytes>> {
        let token = state.clone().unwrap_or_default();
        post(
            "/v1/tokens/refresh",
            &self.host,
            Some(&self.credential),
            &serde_json::json!({"refresh_token": token}),
        )
    }
    fn check(&self, status: StatusCode, body: &[u8], state: &mut Option<String>) -> bool {
        let next = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.get("refresh_token")
                    .and_then(|t| t.as_str())
                    .map(str::to_owned)
            });
        match (status.is_success(), next) {
            (true, Some(t)) => {
                *state = Some(t);
                true
            }
            _ => false,
        }
    }
}

/// OP login with the right password.
struct Login {
    host: String,
    email: String,
}
impl Scenario for Login {
    fn request(&self, _: usize, _: u64, _: &mut Option<String>) -> Request<Full<Bytes>> {
        post(
            "/api/v1/login",
            &self.host,
            None,
            &serde_json::json!({"email": self.email, "password": PASSWORD}),
        )
    }
}

struct Row {
    name: String,
    out: Outcome,
    baseline_per_cpu: f64,
    note: String,
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| scenario | ok | failed | req/s | p50 ms | p99 ms | server CPU s | req per CPU-s | × baseline | note |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let o = &r.out;
        s.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} | {} |\n",
            r.name,
            o.ok,
            o.failed,
            o.rps(),
            o.percentile_ms(50.0),
            o.percentile_ms(99.0),
            o.cpu.as_secs_f64(),
            o.per_cpu_sec(),
            o.per_cpu_sec() / r.baseline_per_cpu.max(1e-9),
            r.note
        ));
    }
    s
}

/// Signs `n` distinct valid access tokens with `key` (in parallel).
async fn sign_pool(key: &KeyEntry, issuer: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let enc = Arc::new(key.encoding_key()?);
    let mut header = jsonwebtoken::Header::new(key.alg.jwt());
    header.kid = Some(key.kid.clone());
    let header = Arc::new(header);
    let now = authrealm_tokens::unix_now();
    let chunks = 4;
    let mut tasks = Vec::new();
    for c in 0..chunks {
        let (enc, header, issuer) = (enc.clone(), header.clone(), issuer.to_owned());
        tasks.push(tokio::task::spawn_blocking(move || {
            (c * n / chunks..(c + 1) * n / chunks)
                .map(|i| {
                    let claims = AccessClaims {
                        iss: issuer.clone(),
                        sub: format!("pool-user-{i}"),
                        aud: AUDIENCE.to_owned(),
                        exp: now + 3600,
                        iat: now,
                        nbf: now - 1,
                        jti: format!("pool-jti-{i}"),
                        sid: format!("pool-sid-{i}"),
                        extra: serde_json::Map::new(),
                    };
                    jsonwebtoken::encode(&header, &claims, &enc)
                })
                .collect::<Result<Vec<_>, _>>()
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

/// Raw argon2id hashes per CPU-second with OP's parameters, on as many
/// threads as OP has hashing slots (one per core) and reusing one memory
/// buffer per thread as OP does: argon2 is memory-bound, so hashes running
/// side by side are slower than one alone, and OP runs them side by side.
fn raw_argon2_rate(window: Duration) -> anyhow::Result<f64> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(19_456, 2, 1, Some(32)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let cpu_start = proc::cpu_time(std::process::id())?;
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
            std::thread::spawn(move || -> anyhow::Result<u32> {
                let mut out = [0u8; 32];
                let mut memory = vec![argon2::Block::default(); a.params().block_count()];
                let mut n = 0u32;
                while start.elapsed() < window {
                    a.hash_password_into_with_memory(
                        PASSWORD.as_bytes(),
                        b"sixteen byte salt",
                        &mut out,
                        &mut memory,
                    )
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let mut n = 0u32;
    for w in workers {
        n += w
            .join()
            .map_err(|_| anyhow::anyhow!("argon2 thread panicked"))??;
    }
    let cpu = proc::cpu_time(std::process::id())?.saturating_sub(cpu_start);
    Ok(f64::from(n) / cpu.as_secs_f64().max(1e-3))
}

fn host(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

fn addr(url: &str) -> anyhow::Result<std::net::SocketAddr> {
    host(url).parse().context("service URL is not host:port")
}

#[tokio::main]
#[allow(clippy::too_many_lines)] // the run reads top to bottom as the report does
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let database =
        std::env::var("DATABASE_URL").context("DATABASE_URL is not set: run ./scripts/bench")?;
    let redis = std::env::var("REDIS_URL").context("REDIS_URL is not set: run ./scripts/bench")?;
    let window = Duration::from_secs(args.seconds);
    let warmup = Duration::from_secs(1);

    eprintln!("building release binaries…");
    let bins = Binaries::build(true)?;
    let baseline_bin = std::env::current_exe()?.with_file_name("bench-baseline");

    let dir = tempfile::tempdir()?;
    let now = authrealm_tokens::unix_now();
    let key = KeyEntry::generate(
        SigningAlgorithm::EdDSA,
        "bench-1".into(),
        KeyState::Active,
        now,
    )?;
    let set = KeySetFile {
        version: FORMAT_VERSION,
        keys: vec![key.clone()],
    };
    std::fs::write(dir.path().join(FILE_NAME), set.to_json()?)?;
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, serde_json::to_vec(&set.jwks()?)?)?;
    let credential = authrealm_tokens::random_token(32)?;
    let prefix = format!("bench:{}", authrealm_tokens::random_token(6)?);
    let ready = Duration::from_secs(60);

    let ma_port = free_port()?;
    let ma_url = format!("http://127.0.0.1:{ma_port}");
    let ma = Service::start(
        &bins.auth_service,
        authrealm_flow::processes::Part::AuthService,
        ma_port,
        &[
            ("AUTHREALM_ISSUER", ma_url.clone()),
            ("AUTHREALM_ACCESS_TTL", "1h".into()),
            ("AUTHREALM_KEYS_DIR", dir.path().display().to_string()),
            ("AUTHREALM_SERVICE_CREDENTIAL", credential.clone()),
            ("AUTHREALM_REDIS_URL", redis.clone()),
            ("AUTHREALM_REDIS_PREFIX", prefix.clone()),
            ("RUST_LOG", "warn".into()),
        ],
        ready,
    )
    .await?;
    let db = fresh_database(&database).await?;
    let op_env = || -> Vec<(&'static str, String)> {
        vec![
            ("AUTHREALM_AUTH_SERVICE_URL", ma.internal_url.clone()),
            (
                "AUTHREALM_JWKS_URL",
                format!("{ma_url}/.well-known/jwks.json"),
            ),
            ("AUTHREALM_ISSUER", ma_url.clone()),
            ("AUTHREALM_SERVICE_CREDENTIAL", credential.clone()),
            ("AUTHREALM_DATABASE_URL", db.clone()),
            ("AUTHREALM_REDIS_URL", redis.clone()),
            ("AUTHREALM_REDIS_PREFIX", prefix.clone()),
            ("AUTHREALM_LOGIN_MAX_FAILURES", "1000000".into()),
        ]
    };
    let op_port = free_port()?;
    let op = Service::start(
        &bins.main_project,
        authrealm_flow::processes::Part::MainProject,
        op_port,
        &op_env(),
        ready,
    )
    .await?;
    let op2_port = free_port()?;
    let op2 = Service::start(
        &bins.main_project,
        authrealm_flow::processes::Part::MainProject,
        op2_port,
        &op_env(),
        ready,
    )
    .await?;
    let base_port = free_port()?;
    // The baseline takes flags, not AUTHREALM_* variables: start it directly.
    let mut base_child = std::process::Command::new(&baseline_bin)
        .args(["--listen", &format!("127.0.0.1:{base_port}"), "--jwks"])
        .arg(&jwks_file)
        .args(["--issuer", &ma_url, "--audience", AUDIENCE])
        .spawn()
        .context("starting bench-baseline")?;
    let base_url = format!("http://127.0.0.1:{base_port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{base_url}/readyz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let base_pid = base_child.id();

    eprintln!(
        "pids: ma={} op={} op2={} baseline={}",
        ma.pid,
        op.pid,
        op2.pid,
        base_child.id()
    );
    let pool_size = (args.seconds as usize + 1) * 40_000;
    eprintln!("signing {pool_size} distinct tokens…");
    let pool = Arc::new(sign_pool(&key, &ma_url, pool_size).await?);
    let one_token = pool.first().cloned().unwrap_or_default();

    let mut rows = Vec::new();
    let c = args.concurrency;
    eprintln!("baseline…");
    let b = load::run(
        addr(&base_url)?,
        &[base_pid],
        c,
        warmup,
        window,
        Arc::new(Repeated {
            path: "/fixed",
            host: host(&base_url),
            token: None,
        }),
    )
    .await?;
    let base = b.per_cpu_sec();
    rows.push(Row {
        name: "baseline: bare axum, fixed JSON".into(),
        out: b,
        baseline_per_cpu: base,
        note: String::new(),
    });
    let bv = load::run(
        addr(&base_url)?,
        &[base_pid],
        c,
        warmup,
        window,
        Arc::new(FreshTokens {
            path: "/verify",
            host: host(&base_url),
            tokens: pool.clone(),
            next: AtomicUsize::new(0),
        }),
    )
    .await?;
    let bare_verify = bv.per_cpu_sec();
    rows.push(Row {
        name: "baseline: bare axum + EdDSA verify, new token each".into(),
        out: bv,
        baseline_per_cpu: base,
        note: String::new(),
    });

    eprintln!("OP protected request…");
    let op_host = host(&op.url);
    let rep = load::run(
        addr(&op.url)?,
        &[op.pid],
        c,
        warmup,
        window,
        Arc::new(Repeated {
            path: "/api/v1/session",
            host: op_host.clone(),
            token: Some(one_token.clone()),
        }),
    )
    .await?;
    let note = format!("bar ≥ 0.50× baseline: {:.2}×", rep.per_cpu_sec() / base);
    rows.push(Row {
        name: "OP GET /api/v1/session, repeated token".into(),
        out: rep,
        baseline_per_cpu: base,
        note,
    });
    let fresh = load::run(
        addr(&op.url)?,
        &[op.pid],
        c,
        warmup,
        window,
        Arc::new(FreshTokens {
            path: "/api/v1/session",
            host: op_host.clone(),
            tokens: pool.clone(),
            next: AtomicUsize::new(pool_size / 2),
        }),
    )
    .await?;
    let note = format!(
        "bar ≥ 0.80× bare verify: {:.2}×",
        fresh.per_cpu_sec() / bare_verify.max(1e-9)
    );
    rows.push(Row {
        name: "OP GET /api/v1/session, new token each".into(),
        out: fresh,
        baseline_per_cpu: base,
        note,
    });

    eprintln!("MA mint…");
    let ma_host = host(&ma.url);
    let mint = load::run(
        addr(&ma.url)?,
        &[ma.pid],
        c,
        warmup,
        window,
        Arc::new(Mint {
            host: ma_host.clone(),
            credential: credential.clone(),
        }),
    )
    .await?;
    let note = format!("bar ≥ 20000/CPU-s: {:.0}", mint.per_cpu_sec());
    rows.push(Row {
        name: "MA POST /v1/tokens (EdDSA, family in Redis)".into(),
        out: mint,
        baseline_per_cpu: base,
        note,
    });

    eprintln!("MA refresh…");
    let mut initial = Vec::new();
    for i in 0..c {
        let pair: serde_json::Value = http
            .post(format!("{}/v1/tokens", ma.url))
            .bearer_auth(&credential)
            .json(&serde_json::json!({"sub": format!("refresher-{i}")}))
            .send()
            .await?
            .json()
            .await?;
        initial.push(
            pair["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    // 20-way races on one token each, while the refresh load runs.
    let races = tokio::spawn(refresh_races(
        http.clone(),
        ma.url.clone(),
        credential.clone(),
        50,
        window + warmup,
    ));
    let refresh = load::run(
        addr(&ma.url)?,
        &[ma.pid],
        c,
        warmup,
        window,
        Arc::new(Refresh {
            host: ma_host.clone(),
            credential: credential.clone(),
            initial,
        }),
    )
    .await?;
    let (race_count, doubles) = races.await??;
    let note = format!(
        "bar ≥ 10000/CPU-s: {:.0}; {race_count} 20-way races under load, {doubles} with a second successor",
        refresh.per_cpu_sec()
    );
    rows.push(Row {
        name: "MA POST /v1/tokens/refresh (rotation in Redis)".into(),
        out: refresh,
        baseline_per_cpu: base,
        note,
    });

    eprintln!("OP login…");
    let email = format!(
        "bench-{}@example.test",
        authrealm_tokens::random_token(4)?.to_lowercase()
    );
    let reg = http
        .post(format!("{}/api/v1/register", op.url))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(reg.status() == 201, "register failed: {}", reg.status());
    let raw =
        tokio::task::spawn_blocking(move || raw_argon2_rate(Duration::from_secs(3))).await??;
    let login = load::run(
        addr(&op.url)?,
        &[op.pid],
        4,
        warmup,
        window,
        Arc::new(Login {
            host: op_host.clone(),
            email: email.clone(),
        }),
    )
    .await?;
    let note = format!(
        "raw argon2id (m=19456,t=2,p=1, one thread per core) {raw:.1} hashes/CPU-s; bar ≥ 0.80×: {:.2}×",
        login.per_cpu_sec() / raw.max(1e-9)
    );
    rows.push(Row {
        name: "OP POST /api/v1/login".into(),
        out: login,
        baseline_per_cpu: base,
        note,
    });

    // On the second replica, which has served nothing yet: its peak RSS is
    // the burst's, not the token cache's from the scenarios above.
    eprintln!("OP login burst…");
    let rss_before = proc::peak_rss(op2.pid)?;
    let burst = login_burst(&http, &op2.url, &email, args.burst).await?;
    let rss = proc::peak_rss(op2.pid)?;
    let burst_note = format!(
        "{} concurrent logins on a fresh OP: {} ok, {} answered 503 + Retry-After, {} other; slowest answer {:.2} s; OP peak RSS {:.1} MiB before, {:.1} MiB after (bar < 256 MiB)",
        args.burst,
        burst.ok,
        burst.busy,
        burst.other,
        burst.slowest.as_secs_f64(),
        rss_before as f64 / 1_048_576.0,
        rss as f64 / 1_048_576.0
    );

    eprintln!("revocation propagation…");
    let prop = propagation(
        &http,
        &ma.url,
        &credential,
        &[op.url.clone(), op2.url.clone()],
        args.revocations,
    )
    .await?;
    let prop_note = format!(
        "{} revocations, two OP replicas: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (bar p99 < 100 ms)",
        prop.len(),
        pct(&prop, 50.0),
        pct(&prop, 99.0),
        prop.last().copied().unwrap_or(0.0)
    );

    let mut report = table(&rows);
    report.push_str(&format!(
        "\n- login burst: {burst_note}\n- revocation propagation: {prop_note}\n"
    ));
    println!("\n{report}");
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, &report)?;
    let _ = base_child.kill();
    let _ = base_child.wait();
    drop((op, op2, ma));
    Ok(())
}

fn pct(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted_ms.len() - 1) as f64).round() as usize;
    sorted_ms[i.min(sorted_ms.len() - 1)]
}

/// Runs `n` races of 20 concurrent refreshes of one token; returns (races, races with >1 distinct successor).
async fn refresh_races(
    http: reqwest::Client,
    ma: String,
    credential: String,
    n: usize,
    within: Duration,
) -> anyhow::Result<(usize, usize)> {
    let deadline = Instant::now() + within;
    let mut doubles = 0;
    let mut done = 0;
    while done < n && Instant::now() < deadline {
        let pair: serde_json::Value = http
            .post(format!("{ma}/v1/tokens"))
            .bearer_auth(&credential)
            .json(&serde_json::json!({"sub": format!("racer-{done}")}))
            .send()
            .await?
            .json()
            .await?;
        let token = pair["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (http, ma, credential, token) =
                (http.clone(), ma.clone(), credential.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let r = http
                    .post(format!("{ma}/v1/tokens/refresh"))
                    .bearer_auth(&credential)
                    .json(&serde_json::json!({"refresh_token": token}))
                    .send()
                    .await?;
                let v: serde_json::Value = r.json().await?;
                anyhow::Ok(v["refresh_token"].as_str().map(str::to_owned))
            }));
        }
        let mut successors = std::collections::HashSet::new();
        for t in tasks {
            if let Some(s) = t.await?? {
                successors.insert(s);
            }
        }
        if successors.len() != 1 {
            doubles += 1;
        }
        done += 1;
    }
    Ok((done, doubles))
}

struct Burst {
    ok: usize,
    busy: usize,
    other: usize,
    slowest: Duration,
}

async fn login_burst(
    http: &reqwest::Client,
    op: &str,
    email: &str,
    n: usize,
) -> anyhow::Result<Burst> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (http, url, email) = (http.clone(), format!("{op}/api/v1/login"), email.to_owned());
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let r = http
                .post(url)
                .json(&serde_json::json!({"email": email, "password": PASSWORD}))
                .send()
                .await?;
            let retry_after = r.headers().contains_key("retry-after");
            anyhow::Ok((r.status(), retry_after, t0.elapsed()))
        }));
    }
    let mut b = Burst {
        ok: 0,
        busy: 0,
        other: 0,
        slowest: Duration::ZERO,
    };
    for t in tasks {
        let (status, retry_after, took) = t.await??;
        b.slowest = b.slowest.max(took);
        match status.as_u16() {
            200 => b.ok += 1,
            503 if retry_after => b.busy += 1,
            _ => b.other += 1,
        }
    }
    Ok(b)
}

/// For each of `n` fresh tokens: both replicas accept it, MA revokes it, then
/// the time until every replica rejects it (ms, sorted).
async fn propagation(
    http: &reqwest::Client,
    ma: &str,
    credential: &str,
    ops: &[String],
    n: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let pair: serde_json::Value = http
            .post(format!("{ma}/v1/tokens"))
            .bearer_auth(credential)
            .json(&serde_json::json!({"sub": format!("prop-{i}")}))
            .send()
            .await?
            .json()
            .await?;
        let access = pair["access_token"].as_str().unwrap_or_default().to_owned();
        for op in ops {
            let s = http
                .get(format!("{op}/api/v1/session"))
                .bearer_auth(&access)
                .send()
                .await?
                .status();
            anyhow::ensure!(s == 200, "{op} does not accept a fresh token: {s}");
        }
        let r = http
            .post(format!("{ma}/v1/tokens/revoke"))
            .bearer_auth(credential)
            .json(&serde_json::json!({"token": access}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "revoke failed: {}", r.status());
        let acked = Instant::now();
        let mut waits = Vec::new();
        for op in ops {
            let (http, url, access) =
                (http.clone(), format!("{op}/api/v1/session"), access.clone());
            waits.push(tokio::spawn(async move {
                loop {
                    let s = http.get(&url).bearer_auth(&access).send().await?.status();
                    if s == 401 {
                        return anyhow::Ok(acked.elapsed());
                    }
                    if acked.elapsed() > Duration::from_secs(5) {
                        anyhow::bail!("{url} still accepts a revoked token after 5 s");
                    }
                }
            }));
        }
        let mut worst = Duration::ZERO;
        for w in waits {
            worst = worst.max(w.await??);
        }
        out.push(worst.as_secs_f64() * 1000.0);
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}
