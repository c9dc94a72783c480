//! Figures read from outside the services: OP's Prometheus metrics, Redis's
//! `INFO memory`, a sample of Redis keys with their `MEMORY USAGE`, and
//! forcing every subscriber to reconnect.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::error::{BenchError, Result};

/// The value of a metric in a Prometheus text page: the sum of its series
/// when it has labels (`name{kind="jti"} 3` and `name{kind="session"} 2` give 5).
#[must_use]
pub fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let family = series.split_once('{').map_or(series, |(n, _)| n);
            (family == name)
                .then(|| v.trim().parse::<f64>().ok())
                .flatten()
        })
        .reduce(|a, b| a + b)
}

/// OP's revocation view as its metrics show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewState {
    /// Full reloads so far.
    pub resyncs: f64,
    /// Whether the view is known to be current.
    pub known: bool,
    /// Entries in the view.
    pub entries: f64,
    /// Reloads read from the revocation log alone.
    pub log_reloads: f64,
    /// Scans that checked a reload from the log.
    pub checks: f64,
    /// How long the last such scan took, seconds.
    pub last_check_seconds: f64,
}

/// Reads OP's revocation view state from `/metrics`.
///
/// # Errors
/// When OP does not answer.
pub async fn view_state(http: &reqwest::Client, op_url: &str) -> Result<ViewState> {
    let page = http
        .get(format!("{op_url}/metrics"))
        .send()
        .await
        .map_err(|e| BenchError::http("OP /metrics", e))?
        .text()
        .await
        .map_err(|e| BenchError::http("OP /metrics", e))?;
    Ok(ViewState {
        resyncs: metric(&page, "authrealm_op_revocation_resyncs_total").unwrap_or(0.0),
        known: metric(&page, "authrealm_op_revocation_state_known") == Some(1.0),
        entries: metric(&page, "authrealm_op_revocation_entries").unwrap_or(0.0),
        log_reloads: metric(&page, "authrealm_op_revocation_log_reloads_total").unwrap_or(0.0),
        checks: metric(&page, "authrealm_op_revocation_checks_total").unwrap_or(0.0),
        last_check_seconds: metric(&page, "authrealm_op_revocation_last_check_seconds")
            .unwrap_or(0.0),
    })
}

/// Polls OP until it has finished more than `checks_before` checks of a
/// reload from the log; returns its state then.
///
/// # Errors
/// When that does not happen within `limit`.
pub async fn wait_checked(
    http: &reqwest::Client,
    op_url: &str,
    checks_before: f64,
    limit: Duration,
) -> Result<ViewState> {
    let t0 = Instant::now();
    loop {
        if let Ok(v) = view_state(http, op_url).await
            && v.checks > checks_before
        {
            return Ok(v);
        }
        if t0.elapsed() > limit {
            return Err(BenchError::Setup(format!(
                "OP at {op_url} did not check its reload from the log within {limit:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls OP until its view is known, has reloaded more than `resyncs_before`
/// times, and holds at least `entries`; the time that took.
///
/// # Errors
/// When that does not happen within `limit`.
pub async fn wait_resynced(
    http: &reqwest::Client,
    op_url: &str,
    resyncs_before: f64,
    entries: u64,
    limit: Duration,
) -> Result<Duration> {
    let t0 = Instant::now();
    loop {
        if let Ok(v) = view_state(http, op_url).await
            && v.known
            && v.resyncs > resyncs_before
            && v.entries >= entries as f64
        {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > limit {
            return Err(BenchError::Setup(format!(
                "OP at {op_url} did not reload {entries} revocations within {limit:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Disconnects every pub/sub client of the run's Redis (OP replicas reconnect and resync).
///
/// # Errors
/// When Redis refuses.
pub async fn kill_subscribers(conn: &mut redis::aio::MultiplexedConnection) -> Result<()> {
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async::<i64>(conn)
        .await
        .map(|_| ())
        .map_err(|source| BenchError::Redis {
            what: "CLIENT KILL TYPE pubsub",
            source,
        })
}

/// `used_memory` from `INFO memory`, bytes.
///
/// # Errors
/// When Redis does not answer.
pub async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> Result<u64> {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .map_err(|source| BenchError::Redis {
            what: "INFO memory",
            source,
        })?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| BenchError::Setup("INFO memory has no used_memory".into()))
}

/// Keys in the current database.
///
/// # Errors
/// When Redis does not answer.
pub async fn dbsize(conn: &mut redis::aio::MultiplexedConnection) -> Result<u64> {
    redis::cmd("DBSIZE")
        .query_async(conn)
        .await
        .map_err(|source| BenchError::Redis {
            what: "DBSIZE",
            source,
        })
}

/// Waits until no key matching `pattern` is left, walking the keyspace
/// with SCAN (which removes the expired keys it passes, so short-lived
/// keys are gone once they expired rather than whenever Redis's sampling
/// finds them); returns how many the first pass found.
///
/// # Errors
/// When Redis does not answer, or keys are still there after `limit`.
pub async fn wait_gone(
    conn: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
    limit: Duration,
) -> Result<u64> {
    let started = Instant::now();
    let mut first = None;
    loop {
        let mut cursor = 0u64;
        let mut found = 0u64;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(10_000)
                .query_async(conn)
                .await
                .map_err(|source| BenchError::Redis {
                    what: "SCAN",
                    source,
                })?;
            found += keys.len() as u64;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let first = *first.get_or_insert(found);
        if found == 0 {
            return Ok(first);
        }
        if started.elapsed() > limit {
            return Err(BenchError::Setup(format!(
                "{found} keys matching {pattern} still there after {limit:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One kind of key in a sample: its share of the keyspace and mean size.
#[derive(Debug, Clone, Default)]
pub struct KeyKind {
    /// Keys of this kind in the sample.
    pub sampled: u64,
    /// Estimated keys of this kind in the whole keyspace.
    pub estimated: u64,
    /// Mean `MEMORY USAGE`, bytes.
    pub mean_bytes: f64,
    /// Redis type (`hash`, `string`, `set`…).
    pub redis_type: String,
}

/// Samples `n` random keys and groups them by the segment after `prefix:`
/// (the service's own key names, whatever they are), with `MEMORY USAGE`.
///
/// # Errors
/// When Redis does not answer.
pub async fn sample_keys(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    n: usize,
) -> Result<BTreeMap<String, KeyKind>> {
    let total = dbsize(conn).await?;
    let mut kinds: BTreeMap<String, KeyKind> = BTreeMap::new();
    let mut seen = 0u64;
    for _ in 0..n {
        // Keys are bytes: MA's session records are named by the 16 bytes
        // of their session id.
        let key: Option<Vec<u8>> =
            redis::cmd("RANDOMKEY")
                .query_async(conn)
                .await
                .map_err(|source| BenchError::Redis {
                    what: "RANDOMKEY",
                    source,
                })?;
        let Some(key) = key else { break };
        let (bytes, kind): (Option<u64>, String) = redis::pipe()
            .cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .cmd("TYPE")
            .arg(&key)
            .query_async(conn)
            .await
            .map_err(|source| BenchError::Redis {
                what: "MEMORY USAGE",
                source,
            })?;
        let segment = key
            .strip_prefix(prefix.as_bytes())
            .and_then(|k| k.strip_prefix(b":"))
            .and_then(|k| k.split(|b| *b == b':').next())
            .map_or_else(
                || "(other)".to_owned(),
                |s| String::from_utf8_lossy(s).into_owned(),
            );
        let e = kinds.entry(segment).or_default();
        e.mean_bytes =
            (e.mean_bytes * e.sampled as f64 + bytes.unwrap_or(0) as f64) / (e.sampled + 1) as f64;
        e.sampled += 1;
        e.redis_type = kind;
        seen += 1;
    }
    for k in kinds.values_mut() {
        k.estimated = (total as f64 * k.sampled as f64 / seen.max(1) as f64).round() as u64;
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read_by_exact_name() {
        let page = "# HELP x\nauthrealm_op_revocation_entries 1000\nauthrealm_op_revocation_entries_other 5\n\
                    authrealm_op_revocation_state_known 1\n";
        assert_eq!(
            metric(page, "authrealm_op_revocation_entries"),
            Some(1000.0)
        );
        assert_eq!(
            metric(page, "authrealm_op_revocation_state_known"),
            Some(1.0)
        );
        assert_eq!(metric(page, "authrealm_op_revocation_resyncs_total"), None);
    }

    #[test]
    fn labelled_series_are_summed() {
        // OP's page as it is today: the view's entries by kind.
        let page = "authrealm_op_revocation_entries{kind=\"jti\"} 600\n\
                    authrealm_op_revocation_entries{kind=\"session\"} 300\n\
                    authrealm_op_revocation_entries{kind=\"user\"} 100\n\
                    authrealm_op_revocation_entries_other{kind=\"jti\"} 7\n";
        assert_eq!(
            metric(page, "authrealm_op_revocation_entries"),
            Some(1000.0)
        );
    }
}
