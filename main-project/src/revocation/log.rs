//! A reload from the revocation log (`authrealm_tokens::revocation`'s
//! `rlog` keys): every entry MA wrote, as binary records in one string per
//! hour of expiry, read with a few large `GETRANGE`s. A `SCAN` visits every
//! key of the database (about 2 µs of Redis's time each); the log costs
//! Redis little more than copying its bytes.
//!
//! The log is read alone only once its trust marker says every entry
//! written before the writers logged has expired. Until then, and for a log
//! holding a record no writer makes, the caller scans the keys instead.

use authrealm_tokens::revocation::{LogCorrupt, LogRecord, RevocationKeys, read_log};
use futures::StreamExt as _;
use redis::aio::MultiplexedConnection;

use super::table::Id;
use super::{Entry, RevocationView};

/// Bytes asked for in one `GETRANGE` (about 30 000 records).
const CHUNK: usize = 1 << 20;
/// `GETRANGE`s in flight while earlier chunks are decoded and merged.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Why the log could not be read alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NotRead {
    /// No trust marker, or not yet its time.
    Untrusted,
    /// A record no writer makes.
    Corrupt,
}

/// Whether the log may be read alone at `now`.
async fn trusted(
    conn: &mut MultiplexedConnection,
    keys: &RevocationKeys,
    now: i64,
) -> redis::RedisResult<bool> {
    let from: Option<Vec<u8>> = redis::cmd("GET")
        .arg(keys.log_trusted_from())
        .query_async(conn)
        .await?;
    let from = from
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<i64>().ok())
        .filter(|from| *from <= now);
    Ok(from.is_some())
}

/// Loads every entry of the log into `view` when the log may be read
/// alone; returns how many were new to the view, or why it was not read
/// (the caller scans then). Records whose time has passed are skipped.
pub(super) async fn load_log(
    conn: &mut MultiplexedConnection,
    keys: &RevocationKeys,
    view: &RevocationView,
    now: i64,
) -> redis::RedisResult<Result<usize, NotRead>> {
    if !trusted(conn, keys, now).await? {
        return Ok(Err(NotRead::Untrusted));
    }
    let buckets: Vec<Vec<u8>> = redis::cmd("ZRANGEBYSCORE")
        .arg(keys.log_buckets())
        .arg(now)
        .arg("+inf")
        .query_async(conn)
        .await?;
    let mut new = 0;
    for bucket in buckets {
        // A member that is no bucket number is no bucket MA wrote.
        let Some(bucket) = std::str::from_utf8(&bucket)
            .ok()
            .and_then(|b| b.parse::<i64>().ok())
        else {
            return Ok(Err(NotRead::Corrupt));
        };
        match load_bucket(conn, &keys.log(bucket), view, now).await? {
            Ok(n) => new += n,
            Err(LogCorrupt(at)) => {
                tracing::warn!(
                    bucket,
                    at,
                    "the revocation log holds a record no writer makes; scanning the keys instead"
                );
                return Ok(Err(NotRead::Corrupt));
            }
        }
    }
    Ok(Ok(new))
}

/// One bucket's string, a chunk at a time, the next chunks asked for while
/// this one is decoded and merged.
async fn load_bucket(
    conn: &mut MultiplexedConnection,
    key: &str,
    view: &RevocationView,
    now: i64,
) -> redis::RedisResult<Result<usize, LogCorrupt>> {
    let len: usize = redis::cmd("STRLEN").arg(key).query_async(conn).await?;
    let reader = conn.clone();
    let mut chunks = futures::stream::iter((0..len).step_by(CHUNK).map(|start| {
        let mut conn = reader.clone();
        async move {
            redis::cmd("GETRANGE")
                .arg(key)
                .arg(start)
                .arg(start + CHUNK - 1)
                .query_async::<Vec<u8>>(&mut conn)
                .await
        }
    }))
    .buffered(CHUNKS_IN_FLIGHT);
    let (mut carry, mut new, mut read) = (Vec::new(), 0, 0);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        read += chunk.len();
        let buf = if carry.is_empty() {
            chunk
        } else {
            carry.extend_from_slice(&chunk);
            std::mem::take(&mut carry)
        };
        let mut entries = Vec::with_capacity(buf.len() / 33);
        let used = match read_log(&buf, |r| {
            if let Some(entry) = entry(&r, now) {
                entries.push(entry);
            }
        }) {
            Ok(used) => used,
            Err(LogCorrupt(at)) => return Ok(Err(LogCorrupt(read - buf.len() + at))),
        };
        new += view.merge_entries(entries);
        carry = buf.get(used..).unwrap_or_default().to_vec();
    }
    if !carry.is_empty() || read < len {
        // Cut short: the string expired (its hour ended) while it was read
        // — then nothing in it is needed — or it is no log MA wrote.
        let exists: bool = redis::cmd("EXISTS").arg(key).query_async(conn).await?;
        if exists {
            return Ok(Err(LogCorrupt(read - carry.len())));
        }
    }
    Ok(Ok(new))
}

/// The view's entry for a record, unless its time has passed (or its id is
/// not UTF-8: MA writes none such).
fn entry(r: &LogRecord<'_>, now: i64) -> Option<Entry> {
    let expires = i64::from(r.expires);
    if expires <= now {
        return None;
    }
    Some(Entry {
        kind: r.kind,
        id: Id::parse(std::str::from_utf8(r.id).ok()?),
        at: i64::from(r.at),
        expires,
    })
}
