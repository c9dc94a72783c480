//! Live revocations in OP's view, grown one size at a time (revoked `jti`s,
//! then as many revoked sessions and per-user not-before times on top):
//! OP's resident memory per entry, the resync after a Redis reconnect and
//! at the start of a replica, and the protected path's throughput against
//! a replica whose view is empty.
//!
//! Entries are written into the run's Redis as the shared revocation
//! contract (`authrealm_tokens::revocation`) names them, in pipelines, then
//! every replica is made to reload them (its subscriber is disconnected).

use std::time::{Duration, Instant};

use authrealm_tokens::revocation::{
    LogRecord, RevocationEvent, RevocationKeys, RevocationKind, log_bucket,
};
use authrealm_tokens::testsupport::append_log;

use crate::ab;
use crate::bars::{self, Measured};
use crate::error::{BenchError, Result};
use crate::job::ScenarioSpec;
use crate::launch::Server;
use crate::launch::peak_of;
use crate::probe;
use crate::proc;
use crate::report::{PartReport, Peak, Section, mib, num, size};
use authrealm_tokens::revocation::DEFAULT_PREFIX;

use base64::Engine as _;

use crate::rig::{Rig, random};

/// TTL of the written entries: longer than any run.
const TTL_SECS: u64 = 3 * 3600;

/// The `n`th id of a run whose ids start with `tag`, in the form the real
/// writers use: MA's `jti`s and `sid`s are 16 random bytes in base64url (22
/// characters), OP's user ids lower-case hyphenated UUIDs. (Ids of another
/// shape would land in a slower, larger part of OP's view than real ones.)
fn entry_id(kind: RevocationKind, tag: &str, n: u64) -> String {
    let mut bytes = [0u8; 16];
    for (b, t) in bytes.iter_mut().zip(tag.bytes()).take(8) {
        *b = t;
    }
    if let Some(tail) = bytes.get_mut(8..) {
        tail.copy_from_slice(&n.to_be_bytes());
    }
    match kind {
        RevocationKind::Jti | RevocationKind::Session => {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        }
        RevocationKind::User => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            )
        }
    }
}

/// Writes entries `from..to` of `kind` under `keys` (pipelines of 10k), as
/// MA writes them: each entry's key, and its record appended to the
/// revocation log (a pipeline's records, all of one bucket, in one APPEND).
async fn fill(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &RevocationKeys,
    kind: RevocationKind,
    tag: &str,
    from: u64,
    to: u64,
) -> Result<()> {
    let now = authrealm_tokens::unix_now();
    let until = now + TTL_SECS as i64;
    let (at, bucket) = match kind {
        RevocationKind::User => (now, log_bucket(until)),
        _ => (until, log_bucket(until)),
    };
    let mut i = from;
    while i < to {
        let end = (i + 10_000).min(to);
        let mut pipe = redis::pipe();
        let mut records = Vec::new();
        for n in i..end {
            let id = entry_id(kind, tag, n);
            let key = match kind {
                // Named with the token's `exp`, the value that plus MA's
                // clock skew (60 s by default).
                RevocationKind::Jti => keys.jti(&id, until - 60),
                RevocationKind::Session => keys.session(&id),
                RevocationKind::User => keys.not_before(&id),
            };
            let value = if kind == RevocationKind::User {
                now
            } else {
                until
            };
            pipe.set_ex(key, value, TTL_SECS).ignore();
            let event = RevocationEvent {
                kind,
                id,
                at,
                expires: until,
            };
            LogRecord::encode(&event, &mut records);
        }
        append_log(&mut pipe, keys, bucket, &records);
        pipe.query_async::<()>(conn)
            .await
            .map_err(|source| BenchError::Redis {
                what: "SET EX, APPEND (revocations)",
                source,
            })?;
        i = end;
    }
    Ok(())
}

/// Makes the revocation log trusted alone from now on (as once every writer
/// has logged for longer than an entry lives: the steady state after an
/// upgrade, and every install that started with a version that logs), or
/// not yet (as in the first hour after the upgrade: OP scans the keys).
async fn trust_log(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &RevocationKeys,
    trusted: bool,
) -> Result<()> {
    let now = authrealm_tokens::unix_now();
    let from = if trusted { now - 1 } else { now + 86_400 };
    redis::cmd("SET")
        .arg(keys.log_trusted_from())
        .arg(from)
        .query_async::<()>(conn)
        .await
        .map_err(|source| BenchError::Redis {
            what: "SET (log trusted from)",
            source,
        })
}

/// A reload measured.
struct Reload {
    /// From the disconnect until the view is current with every entry.
    took: Duration,
    /// For a reload from the log: how long the scan that checked it took.
    check: Option<f64>,
}

/// Disconnects the subscribers and waits until `op` has reloaded `entries`
/// (and, after a reload from the log, until its check has finished, so it
/// does not run into the next measurement).
async fn resync(rig: &Rig, http: &reqwest::Client, op: &Server, entries: u64) -> Result<Reload> {
    let before = probe::view_state(http, &op.metrics_url).await?;
    let mut conn = rig.redis_conn().await?;
    probe::kill_subscribers(&mut conn).await?;
    let took = probe::wait_resynced(
        http,
        &op.metrics_url,
        before.resyncs,
        entries,
        Duration::from_secs(300),
    )
    .await?;
    let after = probe::view_state(http, &op.metrics_url).await?;
    let check = if after.log_reloads > before.log_reloads {
        let checked = probe::wait_checked(
            http,
            &op.metrics_url,
            before.checks,
            Duration::from_secs(300),
        )
        .await?;
        Some(checked.last_check_seconds)
    } else {
        None
    };
    Ok(Reload { took, check })
}

/// A reload from the log (with its check) and one scanning the keys (the
/// log not yet trusted); the log is trusted again after.
async fn both_reloads(
    rig: &Rig,
    http: &reqwest::Client,
    op: &Server,
    keys: &RevocationKeys,
    entries: u64,
) -> Result<(Reload, Reload)> {
    let mut conn = rig.redis_conn().await?;
    trust_log(&mut conn, keys, true).await?;
    let from_log = resync(rig, http, op, entries).await?;
    trust_log(&mut conn, keys, false).await?;
    let scanned = resync(rig, http, op, entries).await?;
    trust_log(&mut conn, keys, true).await?;
    if from_log.check.is_none() || scanned.check.is_some() {
        return Err(BenchError::Setup(
            "OP did not reload from the log when trusted, or did when not".into(),
        ));
    }
    Ok((from_log, scanned))
}

struct Fresh {
    ready: Duration,
    rss: u64,
    peak: u64,
}

/// Starts a replica on `prefix` and measures how long until it is ready
/// (its view loaded) and its RSS then.
async fn fresh_replica(rig: &Rig, ma: &Server, prefix: &str, db: &str) -> Result<Fresh> {
    let t0 = Instant::now();
    let op = rig
        .start_op("OP (starting)", &ma.url, prefix, db, &[])
        .await?;
    let ready = t0.elapsed();
    let rss = proc::rss(op.pid)?;
    let peak = proc::peak_rss(op.pid)?;
    Ok(Fresh { ready, rss, peak })
}

fn checked(reload: &Reload) -> String {
    reload
        .check
        .map_or_else(String::new, |secs| format!("{secs:.3}"))
}

/// Runs the revocation growth.
///
/// # Errors
/// When a process cannot start, Redis refuses, or the generator fails.
#[allow(clippy::too_many_lines)] // one size after another, as the table reads
pub async fn run(rig: &Rig) -> Result<PartReport> {
    let s = &rig.settings;
    rig.flush_redis().await?;
    let full_prefix = DEFAULT_PREFIX.to_owned();
    let empty_prefix = format!("{DEFAULT_PREFIX}-empty");
    let keys = RevocationKeys::new(&full_prefix);
    let db = rig.fresh_database().await?;
    let ma = rig.start_ma("MA", &full_prefix).await?;
    let empty = rig
        .start_op(
            "OP (empty view)",
            &ma.url,
            &empty_prefix,
            &db,
            // Its own Redis database: its reloads scan an empty keyspace and
            // never compete with the measured replica's.
            &[(
                authrealm_runtime::env::REDIS_URL,
                format!("{}/1", rig.redis.url),
            )],
        )
        .await?;
    let full = rig
        .start_op("OP (full view)", &ma.url, &full_prefix, &db, &[])
        .await?;
    let _ = proc::reset_peak(full.pid);
    let http = reqwest::Client::new();
    let mut conn = rig.redis_conn().await?;
    let token = crate::scenarios::sign_tokens(&rig.key, &rig.issuer, &random(6)?, 1)?
        .pop()
        .unwrap_or_default();
    let get = ScenarioSpec::Get {
        path: "/api/v1/session".into(),
        bearer: Some(token),
    };
    let c = s.concurrency;
    let id_tag = random(4)?;

    let mut section = Section::new(
        "Live revocations in OP's view",
        format!(
            "One OP replica's view grows by revoked `jti`s written to Redis; after each step every replica is \
             disconnected from Redis and reloads the list. \"resync\" is from the disconnect until OP's metrics show \
             the view current again with every entry (OP reconnects at once after a link that was up), read from the \
             revocation log as it is once the log is trusted; \"its check\" is the scan of every key that then runs \
             beside the traffic to find entries the log lacked; \"scanning the keys\" is the same reload while the log \
             is not trusted yet (the first hour or so after an upgrade). \"new replica\" is from \
             starting a process until `/readyz` answers 200 (which waits for the view). Bytes per entry compare a new \
             replica's RSS with a new replica's at {}. Throughput is the protected path (`GET /api/v1/session`, one token) \
             against a replica whose view is empty, {} alternating pairs, per server CPU-s.",
            s.revocation_sizes
                .iter()
                .copied()
                .find(|n| *n >= 10_000)
                .map_or_else(
                    || "an empty view".to_owned(),
                    |n| format!("{} (at 0 for the smaller sizes)", size(n))
                ),
            s.pairs.max(1)
        ),
        &[
            "entries in the view",
            "resync after reconnect (s)",
            "its check of the keys (s)",
            "resync scanning the keys (s)",
            "new replica ready (s)",
            "new replica RSS (MiB)",
            "bytes per entry beyond the base",
            "running replica RSS (MiB)",
            "throughput vs empty view",
        ],
    );
    let mut out = PartReport::default();
    // The base for bytes per entry: a new replica with an empty view, then
    // the first size of at least 10k (the bar's "beyond the first 10k").
    let base_size = s
        .revocation_sizes
        .iter()
        .copied()
        .find(|n| *n >= 10_000)
        .unwrap_or(0);
    let empty_fresh = fresh_replica(rig, &ma, &full_prefix, &db).await?;
    let mut base_rss: (u64, u64) = (0, empty_fresh.rss);
    section.row(vec![
        "0".into(),
        String::new(),
        String::new(),
        String::new(),
        format!("{:.2}", empty_fresh.ready.as_secs_f64()),
        mib(empty_fresh.rss),
        "(base)".into(),
        mib(proc::rss(full.pid).unwrap_or(0)),
        String::new(),
    ]);
    let mut fresh_peak = empty_fresh.peak;
    let mut written = 0u64;
    let mut last_rss = 0u64;
    let mut last_resync = Duration::ZERO;
    for &n in &s.revocation_sizes {
        eprintln!("  {} revoked jtis…", size(n));
        fill(&mut conn, &keys, RevocationKind::Jti, &id_tag, written, n).await?;
        written = n;
        let (reload, scanned) = both_reloads(rig, &http, &full, &keys, n).await?;
        let fresh = fresh_replica(rig, &ma, &full_prefix, &db).await?;
        fresh_peak = fresh_peak.max(fresh.peak);
        let (b, r) = base_rss;
        let per_entry = (n > b).then(|| (fresh.rss as f64 - r as f64) / (n - b) as f64);
        let cmp = ab::alternate(
            &rig.generator,
            &rig.job(&[&empty], c, get.clone()),
            &rig.job(&[&full], c, get.clone()),
            s.pairs,
        )
        .await?;
        let ratio = cmp.ratio();
        section.row(vec![
            format!("{} jti", size(n)),
            format!("{:.3}", reload.took.as_secs_f64()),
            checked(&reload),
            format!("{:.3}", scanned.took.as_secs_f64()),
            format!("{:.2}", fresh.ready.as_secs_f64()),
            mib(fresh.rss),
            per_entry.map_or_else(|| "(base)".into(), |b| num(b, 0)),
            mib(proc::rss(full.pid).unwrap_or(0)),
            format!("{:.2}× [{:.2} – {:.2}]", ratio.median, ratio.min, ratio.max),
        ]);
        out.bars.push(
            Measured::ratio(bars::REVOCATION_THROUGHPUT, ratio).at(format!("{} jti", size(n))),
        );
        if let Some(bytes) = per_entry
            && Some(&n) == s.revocation_sizes.last()
        {
            out.bars
                .push(Measured::new(bars::REVOCATION_BYTES, bytes).at(format!(
                    "{} vs {} jti, new replica RSS",
                    size(n),
                    size(b)
                )));
        }
        if n == base_size {
            base_rss = (n, fresh.rss);
        }
        last_rss = fresh.rss;
        last_resync = reload.took;
    }
    let largest = s.revocation_sizes.last().copied().unwrap_or(0);
    out.bars.push(
        Measured::new(bars::REVOCATION_RESYNC, last_resync.as_secs_f64())
            .at(format!("{} jti", size(largest))),
    );

    // The other two kinds, as many again each, on top.
    let mut total = written;
    for (kind, label) in [
        (RevocationKind::Session, "sessions"),
        (RevocationKind::User, "not-before"),
    ] {
        eprintln!("  + {} revoked {label}…", size(largest));
        fill(&mut conn, &keys, kind, &id_tag, 0, largest).await?;
        total += largest;
        let (reload, scanned) = both_reloads(rig, &http, &full, &keys, total).await?;
        let fresh = fresh_replica(rig, &ma, &full_prefix, &db).await?;
        fresh_peak = fresh_peak.max(fresh.peak);
        let per_entry = (fresh.rss as f64 - last_rss as f64) / largest.max(1) as f64;
        section.row(vec![
            format!("+ {} {label} ({} in all)", size(largest), size(total)),
            format!("{:.3}", reload.took.as_secs_f64()),
            checked(&reload),
            format!("{:.3}", scanned.took.as_secs_f64()),
            format!("{:.2}", fresh.ready.as_secs_f64()),
            mib(fresh.rss),
            format!("{} (per {label} entry)", num(per_entry, 0)),
            mib(proc::rss(full.pid).unwrap_or(0)),
            String::new(),
        ]);
        last_rss = fresh.rss;
    }
    out.peaks.push(Peak {
        part: "revocations".into(),
        ma: peak_of(&[&ma]),
        op: peak_of(&[&full]).max(fresh_peak),
        note: format!(
            "{} entries in the view; a reload builds the new table before dropping the old one",
            size(total)
        ),
    });
    out.sections.push(section);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_shape_of_the_real_writers() {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for n in [0, 1, 9, 999_999, u64::MAX] {
            for kind in [RevocationKind::Jti, RevocationKind::Session] {
                let id = entry_id(kind, "AbC_d-", n);
                assert_eq!(id.len(), 22, "{id}");
                let bytes = engine.decode(&id).unwrap_or_default();
                assert_eq!(bytes.len(), 16, "{id} is canonical base64url of 16 bytes");
                assert_eq!(engine.encode(&bytes), id);
            }
            let user = entry_id(RevocationKind::User, "AbC_d-", n);
            let groups: Vec<usize> = user.split('-').map(str::len).collect();
            assert_eq!(groups, [8, 4, 4, 4, 12], "{user}");
            assert!(
                user.chars()
                    .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)),
                "{user}"
            );
        }
        assert_ne!(
            entry_id(RevocationKind::Jti, "tag", 1),
            entry_id(RevocationKind::Jti, "tag", 2)
        );
    }
}
