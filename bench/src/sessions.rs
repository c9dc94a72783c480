//! Sessions and refresh families in Redis, grown one size at a time by
//! minting through MA: Redis memory per live session (and which keys make
//! it up), refresh throughput at each size, what each rotation leaves
//! behind, and how long an OP replica's revocation resync takes when the
//! keyspace it scans holds that many sessions.

use std::time::Duration;

use crate::bars::{self, Measured};
use crate::error::Result;
use crate::job::ScenarioSpec;
use crate::launch::peak_of;
use crate::probe;
use crate::proc;
use crate::report::{PartReport, Peak, Section, mib, num, size};
use authrealm_tokens::revocation::DEFAULT_PREFIX;

use crate::rig::{Rig, random};

/// Runs the session growth.
///
/// # Errors
/// When a process cannot start, Redis refuses, or the generator fails.
#[allow(clippy::too_many_lines)] // one size after another, as the table reads
pub async fn run(rig: &Rig) -> Result<PartReport> {
    let s = &rig.settings;
    rig.flush_redis().await?;
    // The default prefix: key names as long as a deployment's.
    let prefix = DEFAULT_PREFIX;
    let db = rig.fresh_database().await?;
    let ma = rig.start_ma("MA", prefix).await?;
    let op = rig.start_op("OP", &ma.url, prefix, &db, &[]).await?;
    for p in [ma.pid, op.pid] {
        let _ = proc::reset_peak(p);
    }
    let http = reqwest::Client::new();
    let mut conn = rig.redis_conn().await?;
    let mut before = probe::used_memory(&mut conn).await?;
    let mut minted = 0u64;
    let mut section = Section::new(
        "Sessions and refresh families in Redis",
        "Sessions are created through MA's `POST /v1/tokens` (one subject each, shaped like OP's login: a UUID and an \
         email claim), one size after another, in the run's own Redis. Bytes per session is the growth of Redis `used_memory` over the sessions added in that step. \
         Refresh is a timed window of rotations on the sessions of the window's connections; \"left per rotation\" is \
         Redis's growth per rotation afterwards. \"OP resync\" is an OP replica reloading its (empty) revocation list \
         after a disconnect, with this many keys in the Redis it scans.",
        &[
            "live sessions",
            "mint req/s (filling)",
            "Redis used memory (MiB)",
            "bytes per session",
            "refresh req/s",
            "refresh per MA CPU-s",
            "bytes left per rotation",
            "OP resync (s)",
        ],
    );
    let mut out = PartReport::default();
    let mut last_per_session = f64::NAN;
    let mut transient = Vec::new();
    for &n in &s.session_sizes {
        eprintln!("  {} sessions…", size(n));
        let add = n.saturating_sub(minted);
        let fill = rig
            .generator
            .run(&rig.count_job(
                &[&ma],
                64,
                add,
                Duration::from_secs(1800),
                ScenarioSpec::Mint {
                    credential: rig.credential.clone(),
                    sub_prefix: format!("s{}", random(3)?),
                },
            ))
            .await?;
        minted += fill.ok;
        // MA keeps each user's sessions of the last few seconds in a short-
        // lived set (for "log out everywhere" in the same second); measure
        // what stays: after those sets expired.
        let with_recent = probe::used_memory(&mut conn).await?;
        let recent = probe::wait_gone(
            &mut conn,
            &format!("{prefix}:recent:*"),
            Duration::from_secs(120),
        )
        .await?;
        let after_fill = probe::used_memory(&mut conn).await?;
        if recent > 0 {
            transient.push(format!(
                "at {}, {} sets held, and Redis's used memory fell by {} MiB as they went",
                size(n),
                num(recent as f64, 0),
                mib(with_recent.saturating_sub(after_fill))
            ));
        }
        let per_session = (after_fill as f64 - before as f64) / fill.ok.max(1) as f64;
        last_per_session = per_session;

        let refresh = rig
            .generator
            .run(&rig.job(
                &[&ma],
                s.concurrency,
                ScenarioSpec::Refresh {
                    credential: rig.credential.clone(),
                },
            ))
            .await?;
        let after_refresh = probe::used_memory(&mut conn).await?;
        // The window's connections each minted one session first.
        let rotations = refresh.ok.max(1);
        let per_rotation =
            (after_refresh as f64 - after_fill as f64 - s.concurrency as f64 * per_session)
                / rotations as f64;
        before = after_refresh;

        let state = probe::view_state(&http, &op.metrics_url).await?;
        probe::kill_subscribers(&mut conn).await?;
        let resync = probe::wait_resynced(
            &http,
            &op.metrics_url,
            state.resyncs,
            0,
            Duration::from_secs(300),
        )
        .await?;
        section.row(vec![
            size(n),
            num(fill.rps(), 0),
            mib(after_fill),
            num(per_session, 0),
            num(refresh.rps(), 0),
            num(refresh.per_cpu_sec(), 0),
            num(per_rotation, 0),
            format!("{:.3}", resync.as_secs_f64()),
        ]);
        if fill.failed > 0 || refresh.failed > 0 {
            section.notes.push(format!(
                "At {}: {} mints and {} refreshes failed (first: {}).",
                size(n),
                fill.failed,
                refresh.failed,
                fill.first_failure
                    .or(refresh.first_failure)
                    .unwrap_or_default()
            ));
        }
    }
    out.bars.push(
        Measured::new(bars::SESSION_BYTES, last_per_session).at(format!(
            "{} sessions",
            size(s.session_sizes.last().copied().unwrap_or(0))
        )),
    );
    if !transient.is_empty() {
        section.notes.push(format!(
            "Bytes per session are measured once the sets of each user's sessions of the last few seconds expired \
             (SCAN removes them as it passes; what they free includes keyspace table growth they caused): {}.",
            transient.join("; ")
        ));
    }
    let kinds = probe::sample_keys(&mut conn, prefix, if s.smoke { 50 } else { 400 }).await?;
    let keys_total = probe::dbsize(&mut conn).await?;
    let breakdown = kinds
        .iter()
        .map(|(name, k)| {
            format!(
                "`{name}` ({}, {:.2} per session, {:.0} B each)",
                k.redis_type,
                k.estimated as f64 / minted.max(1) as f64,
                k.mean_bytes
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    section.notes.push(format!(
        "At the end: {} keys for {} sessions; a sample of random keys by kind (Redis `MEMORY USAGE`, which leaves out \
         the keyspace and expiry entries): {breakdown}.",
        num(keys_total as f64, 0),
        num(minted as f64, 0)
    ));
    out.peaks.push(Peak {
        part: "sessions".into(),
        ma: peak_of(&[&ma]),
        op: peak_of(&[&op]),
        note: format!(
            "{} sessions minted and refreshed through MA",
            num(minted as f64, 0)
        ),
    });
    out.sections.push(section);
    Ok(out)
}
