//! Revocation propagation with 1, 4 and 8 OP replicas subscribed, under
//! load: for each sample a token every replica accepts is revoked through
//! MA, and the time from MA's answer until every replica rejects it is
//! taken, while the generator keeps the replicas' protected path busy.

use std::time::{Duration, Instant};

use crate::bars::{self, Measured};
use crate::error::{BenchError, Result};
use crate::job::ScenarioSpec;
use crate::launch::Server;
use crate::launch::peak_of;
use crate::proc;
use crate::report::{PartReport, Peak, Section, num};
use authrealm_tokens::revocation::DEFAULT_PREFIX;

use crate::rig::{Rig, random};
use crate::stats::percentile_f64;

async fn mint(http: &reqwest::Client, ma: &str, credential: &str, sub: &str) -> Result<String> {
    let pair: serde_json::Value = http
        .post(format!("{ma}/v1/tokens"))
        .bearer_auth(credential)
        .json(&serde_json::json!({"sub": sub}))
        .send()
        .await
        .map_err(|e| BenchError::http("mint", e))?
        .json()
        .await
        .map_err(|e| BenchError::http("mint", e))?;
    pair["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| BenchError::Setup("MA's mint answer has no access_token".into()))
}

/// One sample: the time from MA's answer to the revocation until every
/// replica rejects the token.
async fn one(
    http: &reqwest::Client,
    ma: &str,
    credential: &str,
    ops: &[String],
    i: usize,
) -> Result<Duration> {
    let access = mint(http, ma, credential, &format!("prop-{i}")).await?;
    for op in ops {
        let s = http
            .get(format!("{op}/api/v1/session"))
            .bearer_auth(&access)
            .send()
            .await
            .map_err(|e| BenchError::http("protected request", e))?
            .status();
        if s != 200 {
            return Err(BenchError::Setup(format!(
                "{op} does not accept a fresh token: {s}"
            )));
        }
    }
    let r = http
        .post(format!("{ma}/v1/tokens/revoke"))
        .bearer_auth(credential)
        .json(&serde_json::json!({"token": access}))
        .send()
        .await
        .map_err(|e| BenchError::http("revoke", e))?;
    if !r.status().is_success() {
        return Err(BenchError::Setup(format!("revoke answered {}", r.status())));
    }
    let acked = Instant::now();
    let mut waits = Vec::new();
    for op in ops {
        let (http, url, access) = (http.clone(), format!("{op}/api/v1/session"), access.clone());
        waits.push(tokio::spawn(async move {
            loop {
                let s = http
                    .get(&url)
                    .bearer_auth(&access)
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                if s.is_ok_and(|s| s == 401) {
                    return Ok(acked.elapsed());
                }
                if acked.elapsed() > Duration::from_secs(5) {
                    return Err(BenchError::Setup(format!(
                        "{url} still accepts a revoked token after 5 s"
                    )));
                }
            }
        }));
    }
    let mut worst = Duration::ZERO;
    for w in waits {
        let took = w
            .await
            .map_err(|e| BenchError::Setup(format!("propagation task: {e}")))??;
        worst = worst.max(took);
    }
    Ok(worst)
}

/// Runs propagation for every replica count.
///
/// # Errors
/// When a process cannot start or a replica never rejects a revoked token.
pub async fn run(rig: &Rig) -> Result<PartReport> {
    let s = &rig.settings;
    rig.flush_redis().await?;
    let prefix = DEFAULT_PREFIX;
    let db = rig.fresh_database().await?;
    let ma = rig.start_ma("MA", prefix).await?;
    let most = s.replicas.iter().copied().max().unwrap_or(1);
    let mut ops: Vec<Server> = Vec::with_capacity(most);
    for i in 0..most {
        ops.push(
            rig.start_op(&format!("OP {}", i + 1), &ma.url, prefix, &db, &[])
                .await?,
        );
    }
    for p in std::iter::once(ma.pid).chain(ops.iter().map(|o| o.pid)) {
        let _ = proc::reset_peak(p);
    }
    let token = crate::scenarios::sign_tokens(&rig.key, &rig.issuer, &random(6)?, 1)?
        .pop()
        .unwrap_or_default();
    let http = reqwest::Client::new();
    let mut section = Section::new(
        "Revocation propagation with several OP replicas",
        "For each sample a token every replica accepts is revoked through MA's `POST /v1/tokens/revoke`; the time is \
         from MA's answer until every replica answers 401, polled as fast as they answer, while the generator keeps \
         the replicas' protected path busy (two connections per replica, each sending its next request when the last \
         is answered). Every replica and MA run on the server CPU. \"load p99\" is the generator's own requests' \
         p99 in the same window: a plain protected request under that load, the floor under the propagation time \
         (a long tail in both is the CPU's queue, not the revocation's path).",
        &[
            "replicas",
            "samples",
            "p50 ms",
            "p99 ms",
            "max ms",
            "load on the replicas (req/s)",
            "load p99 ms",
        ],
    );
    let mut out = PartReport::default();
    for &k in &s.replicas {
        eprintln!("  {k} replicas…");
        let subset: Vec<&Server> = ops.iter().take(k).collect();
        let urls: Vec<String> = subset.iter().map(|o| o.url.clone()).collect();
        // The load runs for as long as the samples should take, with a floor.
        let planned =
            Duration::from_millis(25 * s.propagation_samples as u64).max(Duration::from_secs(2));
        let mut job = rig.job(
            &subset,
            2 * k,
            ScenarioSpec::Get {
                path: "/api/v1/session".into(),
                bearer: Some(token.clone()),
            },
        );
        job.warmup_ms = 200;
        job.window_ms = u64::try_from(planned.as_millis()).unwrap_or(u64::MAX);
        let load = rig.generator.spawn(&job).await?;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let deadline = Instant::now() + planned;
        let mut samples = Vec::with_capacity(s.propagation_samples);
        for i in 0..s.propagation_samples {
            if Instant::now() >= deadline && samples.len() >= 10 {
                break;
            }
            samples.push(
                one(&http, &ma.url, &rig.credential, &urls, i)
                    .await?
                    .as_secs_f64()
                    * 1000.0,
            );
        }
        let load = load.finish().await?;
        samples.sort_by(f64::total_cmp);
        let p99 = percentile_f64(&samples, 99.0);
        section.row(vec![
            k.to_string(),
            samples.len().to_string(),
            format!("{:.2}", percentile_f64(&samples, 50.0)),
            format!("{p99:.2}"),
            format!("{:.2}", samples.last().copied().unwrap_or(0.0)),
            num(load.rps(), 0),
            format!("{:.2}", load.p99_ms),
        ]);
        let replicas = if k == 1 {
            "1 replica".to_owned()
        } else {
            format!("{k} replicas")
        };
        out.bars.push(
            Measured::new(bars::PROPAGATION, p99)
                .at(format!("{replicas}, {} samples", samples.len())),
        );
    }
    out.peaks.push(Peak {
        part: "replicas".into(),
        ma: peak_of(&[&ma]),
        op: peak_of(&ops.iter().collect::<Vec<_>>()),
        note: format!("up to {most} replicas under load, revocations through MA"),
    });
    out.sections.push(section);
    Ok(out)
}
