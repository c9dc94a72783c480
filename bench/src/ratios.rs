//! The ratio bars, each against a reference served the same way: OP's
//! protected request and its forward-auth check vs bare axum, a new token vs one bare verification,
//! MA's mint and refresh vs one bare EdDSA signature, OP's login vs raw
//! argon2id on one thread. Then refresh races under load, and a login burst
//! on a fresh replica.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::ab::{self, Comparison};
use crate::bars::{self, BarDef, Measured};
use crate::error::{BenchError, Result};
use crate::job::ScenarioSpec;
use crate::launch::peak_of;
use crate::proc;
use crate::report::{PartReport, Peak, Section, mib, num};
use authrealm_tokens::revocation::DEFAULT_PREFIX;

use crate::rig::{Rig, random};

fn cells(name: &str, reference: &str, c: &Comparison) -> Vec<String> {
    let (a, b, r) = (c.reference(), c.subject(), c.ratio());
    let mut flags = Vec::new();
    if b.failed > 0 || a.failed > 0 {
        flags.push(format!(
            "{} failed ({})",
            a.failed + b.failed,
            b.first_failure.or(a.first_failure).unwrap_or_default()
        ));
    }
    if b.exhausted {
        flags.push("fresh tokens ran out: some were sent twice".into());
    }
    if b.server_load.median < 0.9 {
        flags.push(format!("server {:.0} % busy", b.server_load.median * 100.0));
    }
    vec![
        name.to_owned(),
        reference.to_owned(),
        num(a.per_cpu.median, 0),
        num(b.per_cpu.median, 0),
        num(b.rps.median, 0),
        format!("{:.2} / {:.2}", b.p50_ms, b.p99_ms),
        format!("**{:.2}×** [{:.2} – {:.2}]", r.median, r.min, r.max),
        format!(
            "{:.0} %",
            b.other_load.median.max(a.other_load.median) * 100.0
        ),
        flags.join("; "),
    ]
}

fn measured(def: BarDef, c: &Comparison) -> Measured {
    let b = c.subject();
    let mut m = Measured::ratio(def, c.ratio());
    if b.exhausted {
        m = m.note("fresh tokens ran out");
    }
    if c.reference().failed + b.failed > 0 {
        m = m.note(format!(
            "{} failed requests",
            c.reference().failed + b.failed
        ));
    }
    m
}

/// Runs the ratio bars, the refresh races and the login burst.
///
/// # Errors
/// When a process cannot start or the generator fails.
#[allow(clippy::too_many_lines)] // one comparison after another, as the table reads
pub async fn run(rig: &Rig) -> Result<PartReport> {
    let s = &rig.settings;
    rig.flush_redis().await?;
    let prefix = DEFAULT_PREFIX;
    let db = rig.fresh_database().await?;
    let base = rig.start_baseline().await?;
    let ma = rig.start_ma("MA", prefix).await?;
    let op = rig.start_op("OP", &ma.url, prefix, &db, &[]).await?;
    for p in [ma.pid, op.pid] {
        let _ = proc::reset_peak(p);
    }
    let token = crate::scenarios::sign_tokens(&rig.key, &rig.issuer, &random(6)?, 1)?
        .pop()
        .unwrap_or_default();
    let c = s.concurrency;
    let g = &rig.generator;
    let mut section = Section::new(
        "Ratio bars",
        format!(
            "Each row alternates reference and subject windows ({} pairs), both sent the same requests (the same \
             bearer token, or new tokens on both sides); \"per CPU-s\" is requests per second of the \
             server process's own CPU time (from `/proc/<pid>/stat`), the ratio is subject / reference per pair, shown as \
             median [min – max]. Latency is the subject's median p50 / p99 over its windows.",
            s.pairs.max(1)
        ),
        &[
            "subject",
            "reference",
            "reference per CPU-s",
            "subject per CPU-s",
            "subject req/s",
            "p50 / p99 ms",
            "ratio",
            "other load",
            "notes",
        ],
    );
    let mut out = PartReport::default();

    // OP's one-token paths against bare axum: the protected request
    // against a fixed JSON answer of the same shape, and what a gateway's
    // auth_request / forwardAuth / ext_authz costs OP against a bare answer
    // with the same identity headers (what any forward-auth answer sends).
    // Both sides are sent the same request, bearer token included: the
    // reference ignores it, so the difference is OP's work alone, not the
    // bytes a client sends either way.
    for (what, path, reference, label, bar) in [
        (
            "protected request",
            "/api/v1/session",
            "/fixed",
            "OP `GET /api/v1/session`, one token repeated",
            bars::PROTECTED,
        ),
        (
            "forward auth",
            "/auth/verify",
            "/identity",
            "OP `GET /auth/verify` (forward auth), one token repeated",
            bars::FORWARD_AUTH,
        ),
    ] {
        eprintln!("  {what}…");
        let result = ab::alternate(
            g,
            &rig.job(
                &[&base],
                c,
                ScenarioSpec::Get {
                    path: reference.into(),
                    bearer: Some(token.clone()),
                },
            ),
            &rig.job(
                &[&op],
                c,
                ScenarioSpec::Get {
                    path: path.into(),
                    bearer: Some(token.clone()),
                },
            ),
            s.pairs,
        )
        .await?;
        let reference = match reference {
            "/identity" => "bare axum, the same identity headers",
            _ => "bare axum, fixed JSON",
        };
        section.row(cells(label, reference, &result));
        out.bars.push(measured(bar, &result));
    }

    eprintln!("  new token each request…");
    let fresh = |path: &str| ScenarioSpec::FreshTokens {
        path: path.into(),
        keyset: rig.keyset_path(),
        issuer: rig.issuer.clone(),
        tokens: s.fresh_tokens_per_window(),
        sends_each: 1,
    };
    // The reference is sent new tokens too: the same requests on both
    // sides, and the same work for the generator.
    let new_token = ab::alternate(
        g,
        &rig.job(&[&base], c, fresh("/verify")),
        &rig.job(&[&op], c, fresh("/api/v1/session")),
        s.pairs,
    )
    .await?;
    section.row(cells(
        "OP `GET /api/v1/session`, a new token each time",
        "bare axum + one EdDSA verification",
        &new_token,
    ));
    out.bars.push(measured(bars::NEW_TOKEN, &new_token));

    eprintln!("  mint…");
    let mint = ab::alternate(
        g,
        &rig.job(&[&base], c, ScenarioSpec::Sign),
        &rig.job(
            &[&ma],
            c,
            ScenarioSpec::Mint {
                credential: rig.credential.clone(),
                sub_prefix: format!("mint-{}", random(4)?),
            },
        ),
        s.pairs,
    )
    .await?;
    section.row(cells(
        "MA `POST /v1/tokens` (family in Redis)",
        "bare axum signing one EdDSA token",
        &mint,
    ));
    out.bars.push(measured(bars::MINT, &mint));

    eprintln!("  refresh…");
    let refresh_job = rig.job(
        &[&ma],
        c,
        ScenarioSpec::Refresh {
            credential: rig.credential.clone(),
        },
    );
    let refresh = ab::alternate(
        g,
        &rig.job(&[&base], c, ScenarioSpec::Sign),
        &refresh_job,
        s.pairs,
    )
    .await?;
    section.row(cells(
        "MA `POST /v1/tokens/refresh` (rotation in Redis)",
        "bare axum signing one EdDSA token",
        &refresh,
    ));
    out.bars.push(measured(bars::REFRESH, &refresh));

    eprintln!("  login…");
    let email = format!("bench-{}@example.test", random(4)?.to_lowercase());
    register(&op.url, &email).await?;
    let login = ab::alternate(
        g,
        &rig.job(&[&base], 4, ScenarioSpec::Argon2),
        &rig.job(
            &[&op],
            4,
            ScenarioSpec::Login {
                email_pattern: email.clone(),
                users: 0,
                password: crate::PASSWORD.into(),
            },
        ),
        s.pairs,
    )
    .await?;
    section.row(cells(
        "OP `POST /api/v1/login` (4 connections)",
        "bare axum + argon2id (m=19456, t=2, p=1) on one thread",
        &login,
    ));
    out.bars.push(measured(bars::LOGIN, &login));

    eprintln!("  refresh races under load…");
    let races_load = g
        .spawn(&rig.job(
            &[&ma],
            c,
            ScenarioSpec::Refresh {
                credential: rig.credential.clone(),
            },
        ))
        .await?;
    let within = s.warmup + s.window;
    let races = refresh_races(
        &ma.url,
        &rig.credential,
        if s.smoke { 5 } else { 50 },
        within,
    )
    .await;
    let load = races_load.finish().await?;
    let (done, doubles) = races?;
    out.bars.push(
        Measured::new(bars::REFRESH_RACES, doubles as f64).at(format!(
            "{done} races, refresh load {} req/s alongside",
            num(load.rps(), 0)
        )),
    );

    eprintln!("  login burst…");
    // A replica that has served nothing yet: its peak is the burst's.
    let fresh_op = rig
        .start_op("OP (fresh)", &ma.url, prefix, &db, &[])
        .await?;
    let before = proc::peak_rss(fresh_op.pid)?;
    let burst = login_burst(&fresh_op.url, &email, s.burst).await?;
    let peak = proc::peak_rss(fresh_op.pid)?;
    out.bars.push(
        Measured::new(bars::BURST_RSS, peak as f64 / 1_048_576.0)
            .at(format!("{} concurrent logins", s.burst)),
    );
    section.notes.push(format!(
        "Login burst: {} concurrent logins on a fresh OP replica: {} answered 200, {} answered 503 with `Retry-After` \
         (hashing queue full), {} other; the slowest answer took {:.2} s; OP's peak RSS went from {} MiB to {} MiB.",
        s.burst,
        burst.ok,
        burst.busy,
        burst.other,
        burst.slowest.as_secs_f64(),
        mib(before),
        mib(peak)
    ));
    section.notes.push(format!(
        "Refresh races: {done} races of 20 concurrent refreshes of one token while a refresh load ran on MA \
         ({} req/s): {doubles} handed out more than one successor.",
        num(load.rps(), 0)
    ));
    out.peaks.push(Peak {
        part: "ratio bars".into(),
        ma: peak_of(&[&ma]),
        op: peak_of(&[&op]),
        note: "OP: every window of the ratio bars (new tokens are verified, not cached: OP caches a token on its second sighting)".into(),
    });
    out.peaks.push(Peak {
        part: format!("login burst ({} concurrent)", s.burst),
        ma: 0,
        op: peak,
        note: "a fresh OP replica; its hashing slots each hold one argon2 buffer".into(),
    });
    out.sections.push(section);
    drop((base, ma, op, fresh_op));
    Ok(out)
}

async fn register(op: &str, email: &str) -> Result<()> {
    let r = reqwest::Client::new()
        .post(format!("{op}/api/v1/register"))
        .json(&serde_json::json!({"email": email, "password": crate::PASSWORD}))
        .send()
        .await
        .map_err(|e| BenchError::http("register", e))?;
    if r.status().as_u16() != 201 {
        return Err(BenchError::Setup(format!(
            "register answered {}",
            r.status()
        )));
    }
    Ok(())
}

/// `n` races of 20 concurrent refreshes of one token; (races, races with more than one successor).
async fn refresh_races(
    ma: &str,
    credential: &str,
    n: usize,
    within: Duration,
) -> Result<(usize, usize)> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + within;
    let (mut done, mut doubles) = (0, 0);
    while done < n && Instant::now() < deadline {
        let pair: serde_json::Value = http
            .post(format!("{ma}/v1/tokens"))
            .bearer_auth(credential)
            .json(&serde_json::json!({"sub": format!("racer-{done}")}))
            .send()
            .await
            .map_err(|e| BenchError::http("mint for a race", e))?
            .json()
            .await
            .map_err(|e| BenchError::http("mint for a race", e))?;
        let token = pair["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (http, url, credential, token) = (
                http.clone(),
                format!("{ma}/v1/tokens/refresh"),
                credential.to_owned(),
                token.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let r = http
                    .post(url)
                    .bearer_auth(credential)
                    .json(&serde_json::json!({"refresh_token": token}))
                    .send()
                    .await
                    .ok()?;
                let v: serde_json::Value = r.json().await.ok()?;
                v["refresh_token"].as_str().map(str::to_owned)
            }));
        }
        let mut successors = HashSet::new();
        for t in tasks {
            if let Ok(Some(s)) = t.await {
                successors.insert(s);
            }
        }
        if successors.len() > 1 {
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

async fn login_burst(op: &str, email: &str, n: usize) -> Result<Burst> {
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (http, url, email) = (http.clone(), format!("{op}/api/v1/login"), email.to_owned());
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let r = http
                .post(url)
                .json(&serde_json::json!({"email": email, "password": crate::PASSWORD}))
                .send()
                .await;
            let took = t0.elapsed();
            match r {
                Ok(r) => (
                    r.status().as_u16(),
                    r.headers().contains_key("retry-after"),
                    took,
                ),
                Err(_) => (0, false, took),
            }
        }));
    }
    let mut b = Burst {
        ok: 0,
        busy: 0,
        other: 0,
        slowest: Duration::ZERO,
    };
    for t in tasks {
        let (status, retry_after, took) = t
            .await
            .map_err(|e| BenchError::Setup(format!("burst task: {e}")))?;
        b.slowest = b.slowest.max(took);
        match status {
            200 => b.ok += 1,
            503 if retry_after => b.busy += 1,
            _ => b.other += 1,
        }
    }
    Ok(b)
}
