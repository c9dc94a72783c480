//! Keeping the view current from Redis, and healing Redis from the view.
//!
//! One connection cycle: SUBSCRIBE to the channel first (anything revoked
//! from then on is buffered), check the generation marker, SCAN the list
//! page by page into the view (adding only), write back what the view holds
//! if Redis lost its data, then mark the state known and apply events as
//! they arrive. Every `ping_every` the link is pinged and the marker read
//! again; any failure marks the state unknown and starts a new cycle. The
//! generation this instance last saw survives the reconnects, which is how
//! a Redis that came back empty is told apart from one that never failed.

use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use authrealm_tokens::Clock;
use authrealm_tokens::revocation::{RevocationEvent, RevocationKeys, RevocationKind};
use futures::StreamExt as _;
use redis::aio::MultiplexedConnection;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::table::Id;
use super::{Entry, RevocationView};

/// Keys asked for in one SCAN round trip (and values in one MGET). Small
/// enough that Redis still has a page's keys in its caches when their
/// values are asked for (a page of 10 000 cost Redis about 15 % more CPU
/// for the same keys), and that neither command holds Redis up for long.
const SCAN_PAGE: usize = 1_000;
/// Pages whose values are being read, decoded and merged while the scan
/// goes on (bounds what a load holds beyond the view).
const PAGES_IN_FLIGHT: usize = 8;
/// Entries written back in one pipeline.
const HEAL_BATCH: usize = 1_000;
/// A link up this long before it failed reconnects without waiting.
const HEALTHY_FOR: Duration = Duration::from_secs(1);
/// How long a scanned entry without a readable expiry is kept.
const UNKNOWN_LIFE_SECS: i64 = 86_400;

/// Moves a not-before time only later, with the entry's own end.
/// KEYS: notbefore key. ARGV: not-before, forget-after (Unix seconds).
const HEAL_NOT_BEFORE_LUA: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur == nil or cur < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
end
return 0
";

/// What the generation marker said at the start of a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Generation {
    /// The value this instance saw before: Redis kept its data.
    Same,
    /// First sight of an existing marker: nothing to compare with.
    Joined,
    /// No marker and none seen before: a new Redis, or one that failed
    /// before this instance knew it. What the view holds is written back.
    Fresh,
    /// The marker this instance knew is gone or replaced: Redis lost the
    /// revocation list. Counted, logged, healed.
    Lost,
}

/// Keeps `view` current from Redis until the task is dropped: subscribe,
/// scan, heal if needed, apply events; on any failure mark the state unknown
/// and start over.
pub async fn follow_redis(
    client: redis::Client,
    keys: RevocationKeys,
    view: Arc<RevocationView>,
    ping_every: Duration,
    clock: Clock,
    leeway_secs: i64,
) {
    let mut generation = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let resyncs_before = view.metrics.revocation_resyncs.get();
        let started = std::time::Instant::now();
        let cycle = Cycle {
            client: &client,
            keys: &keys,
            view: &view,
            ping_every,
            clock: &clock,
            leeway_secs,
        };
        if let Err(e) = cycle.run(&mut generation).await {
            tracing::warn!(error = %e, "revocation listener: Redis lost; state unknown until resynced");
        }
        view.set_known(false);
        // A link that got as far as a full scan was healthy: reconnect at
        // once after one that lasted (a dropped connection, a Redis that
        // restarted), after a short wait otherwise; failures in a row wait
        // longer each time.
        if view.metrics.revocation_resyncs.get() > resyncs_before {
            backoff = Duration::from_millis(100);
            if started.elapsed() >= HEALTHY_FOR {
                continue;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

struct Cycle<'a> {
    client: &'a redis::Client,
    keys: &'a RevocationKeys,
    view: &'a Arc<RevocationView>,
    ping_every: Duration,
    clock: &'a Clock,
    /// How long past `exp` this OP accepts a token: a revoked `jti` named
    /// with its `exp` is kept that much longer.
    leeway_secs: i64,
}

impl Cycle<'_> {
    async fn run(&self, generation: &mut Option<String>) -> redis::RedisResult<()> {
        let connect = Duration::from_secs(2);
        let pubsub = tokio::time::timeout(connect, self.client.get_async_pubsub())
            .await
            .map_err(|_| io_err("connect timed out"))??;
        let (mut sink, mut stream) = pubsub.split();
        sink.subscribe(self.keys.channel()).await?;
        // Subscribed: anything revoked from now on arrives on the stream
        // (buffered while we scan). Now load everything revoked before.
        let mut conn =
            tokio::time::timeout(connect, self.client.get_multiplexed_async_connection())
                .await
                .map_err(|_| io_err("connect timed out"))??;
        self.resync(&mut conn, generation).await?;

        let mut ping = tokio::time::interval(self.ping_every);
        ping.tick().await;
        let deadline = self.ping_every.max(Duration::from_secs(3));
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else {
                        return Err(io_err("subscription closed"));
                    };
                    match serde_json::from_slice::<RevocationEvent>(msg.get_payload_bytes()) {
                        Ok(ev) => self.view.apply(&ev),
                        Err(e) => tracing::warn!(error = %e, "ignoring a malformed revocation event"),
                    }
                }
                _ = ping.tick() => {
                    // A silent network failure would otherwise leave a stale
                    // view "known". On a subscribed RESP2 connection PING
                    // answers ["pong", ""]: any non-error reply means alive.
                    let pong = tokio::time::timeout(deadline, sink.ping::<redis::Value>()).await;
                    pong.map_err(|_| io_err("ping timed out"))??;
                    let marker = tokio::time::timeout(deadline, read_marker(&mut conn, self.keys)).await;
                    if marker.map_err(|_| io_err("marker read timed out"))?? != *generation {
                        return Err(io_err("the revocation generation marker changed"));
                    }
                    self.view.metrics.revocation_pings.inc();
                }
            }
        }
    }

    /// Generation check, scan, heal; then the view is known.
    async fn resync(
        &self,
        conn: &mut MultiplexedConnection,
        generation: &mut Option<String>,
    ) -> redis::RedisResult<()> {
        let started = Instant::now();
        let (outcome, marker) = check_generation(conn, self.keys, generation.as_deref()).await?;
        // What this replica held before the scan is what Redis may have lost;
        // what the scan finds is in Redis already.
        let held = if matches!(outcome, Generation::Lost | Generation::Fresh) {
            self.view.live(self.clock.now())
        } else {
            Vec::new()
        };
        let scanned = self.load(conn).await?;
        let m = &self.view.metrics;
        if matches!(outcome, Generation::Lost | Generation::Fresh) {
            let healed = self.heal(conn, &held).await?;
            m.revocation_healed
                .inc_by(u64::try_from(healed).unwrap_or(u64::MAX));
            if outcome == Generation::Lost {
                // Counted once the heal is done: a heal cut short and
                // repeated is still one loss.
                m.revocation_data_losses.inc();
                tracing::warn!(
                    healed,
                    "Redis lost the revocation list (generation marker gone); wrote back every live entry this replica holds"
                );
            } else if healed > 0 {
                tracing::info!(
                    healed,
                    "no revocation generation marker; wrote back what this replica holds"
                );
            }
        }
        *generation = Some(marker);
        m.revocation_last_resync_seconds
            .set(started.elapsed().as_secs_f64());
        m.revocation_resyncs.inc();
        self.view.set_known(true);
        let [jti, session, user] = self.view.counts();
        tracing::info!(scanned, jti, session, user, generation = ?outcome, "revocation list loaded from Redis");
        Ok(())
    }

    /// Scans every revocation key into the view in one pass over the
    /// keyspace, a page at a time, keeping Redis busy: the next page's SCAN
    /// is sent before this page's values are asked for (so Redis runs it
    /// while the reply is on its way), and each page's values are read,
    /// decoded and merged by a task of its own while the scan goes on, up to
    /// [`PAGES_IN_FLIGHT`] pages at once. Returns the entries merged.
    async fn load(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<usize> {
        let now = self.clock.now();
        let pattern = self.keys.scan_pattern();
        let keys = Arc::new(self.keys.clone());
        let leeway = self.leeway_secs;
        let slots = Arc::new(Semaphore::new(PAGES_IN_FLIGHT));
        let mut readers = JoinSet::new();
        let mut total = 0;
        let mut scan_conn = conn.clone();
        let mut next = Some(0u64);
        let mut found: Vec<Vec<u8>> = Vec::new();
        while next.is_some() || !found.is_empty() {
            let scanned = {
                let mut scan = pin!(async {
                    match next {
                        Some(cursor) => scan_page(&mut scan_conn, &pattern, cursor).await.map(Some),
                        None => Ok(None),
                    }
                });
                // The first poll queues the SCAN on the connection.
                let first = futures::poll!(scan.as_mut());
                if !found.is_empty() {
                    let slot = Arc::clone(&slots)
                        .acquire_owned()
                        .await
                        .map_err(|_| io_err("page slots closed"))?;
                    let page = std::mem::take(&mut found);
                    let (mut conn, keys, view) =
                        (conn.clone(), Arc::clone(&keys), Arc::clone(self.view));
                    readers.spawn(async move {
                        let merged = read_page(&mut conn, &keys, &view, page, now, leeway).await;
                        drop(slot);
                        merged
                    });
                }
                // A page that failed ends the load now, not after the scan.
                while let Some(done) = readers.try_join_next() {
                    total += joined(done)?;
                }
                match first {
                    Poll::Ready(r) => r,
                    Poll::Pending => scan.await,
                }?
            };
            (next, found) = match scanned {
                Some((0, keys)) => (None, keys),
                Some((cursor, keys)) => (Some(cursor), keys),
                None => (None, Vec::new()),
            };
        }
        while let Some(done) = readers.join_next().await {
            total += joined(done)?;
        }
        Ok(total)
    }

    /// Writes `live` entries back, never overwriting what MA wrote meanwhile.
    async fn heal(
        &self,
        conn: &mut MultiplexedConnection,
        live: &[RevocationEvent],
    ) -> redis::RedisResult<usize> {
        for chunk in live.chunks(HEAL_BATCH) {
            let mut pipe = redis::pipe();
            for ev in chunk {
                match ev.kind {
                    RevocationKind::Jti | RevocationKind::Session => {
                        // The view keeps when an entry may go, not the
                        // token's `exp`: written back under the name that
                        // carries the value (MA reads both names).
                        let key = if ev.kind == RevocationKind::Jti {
                            self.keys.legacy_jti(&ev.id)
                        } else {
                            self.keys.session(&ev.id)
                        };
                        pipe.cmd("SET")
                            .arg(key)
                            .arg(ev.expires)
                            .arg("EXAT")
                            .arg(ev.expires)
                            .arg("NX")
                            .ignore();
                    }
                    RevocationKind::User => {
                        pipe.cmd("EVAL")
                            .arg(HEAL_NOT_BEFORE_LUA)
                            .arg(1)
                            .arg(self.keys.not_before(&ev.id))
                            .arg(ev.at)
                            .arg(ev.expires)
                            .ignore();
                    }
                }
            }
            pipe.query_async::<()>(conn).await?;
        }
        Ok(live.len())
    }
}

/// One SCAN page: the next cursor (0 at the end) and the keys found, as
/// bytes (a key is not necessarily UTF-8).
async fn scan_page(
    conn: &mut MultiplexedConnection,
    pattern: &str,
    cursor: u64,
) -> redis::RedisResult<(u64, Vec<Vec<u8>>)> {
    redis::cmd("SCAN")
        .arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(SCAN_PAGE)
        .query_async(conn)
        .await
}

/// A key a scan found, sorted by how its value is read.
struct Found {
    /// The key as Redis holds it.
    key: Vec<u8>,
    kind: RevocationKind,
    id: Id,
    /// For a revoked `jti` named with it: the token's `exp` (no value to read).
    exp: Option<i64>,
}

/// The key's kind and id decoded, or `None` for a key that is no
/// revocation entry (another key the pattern matches, or not UTF-8: MA
/// writes none such).
fn classify(keys: &RevocationKeys, key: Vec<u8>) -> Option<Found> {
    let text = std::str::from_utf8(&key).ok()?;
    let named = keys.read_key(text)?;
    let (kind, exp) = (named.kind, named.exp);
    let id = Id::parse(named.id);
    Some(Found { key, kind, id, exp })
}

/// A Unix time as MA writes it (decimal seconds), if it is one.
fn unix_secs(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// The entry of a `jti` / `sid` key whose value is `value`: the time after
/// which it may be forgotten (a day from `now` if the value is unreadable).
fn expiring_entry(found: Found, value: &[u8], now: i64) -> Entry {
    let expires = unix_secs(value).unwrap_or(now + UNKNOWN_LIFE_SECS);
    Entry {
        kind: found.kind,
        id: found.id,
        at: expires,
        expires,
    }
}

/// The entry of a revoked `jti` named with its token's `exp`: kept as long
/// as this OP would still accept the token.
fn named_entry(found: Found, exp: i64, leeway: i64) -> Entry {
    let expires = exp.saturating_add(leeway.max(0));
    Entry {
        kind: found.kind,
        id: found.id,
        at: expires,
        expires,
    }
}

/// The entry of a not-before key: its value is the time itself, its TTL
/// (`pttl` milliseconds, negative without one) says when it goes.
fn not_before_entry(found: Found, value: &[u8], pttl: i64, now: i64) -> Entry {
    let expires = if pttl > 0 {
        now.saturating_add(pttl / 1000 + 1)
    } else {
        now + UNKNOWN_LIFE_SECS
    };
    Entry {
        kind: RevocationKind::User,
        id: found.id,
        at: unix_secs(value).unwrap_or(now),
        expires,
    }
}

/// Reads the values of one SCAN page and merges them into `view`; returns
/// how many entries it merged. Keys that are no revocation entry are passed
/// over, and so are keys that expired meanwhile. A revoked `jti` named with
/// its token's `exp` needs no read: it is kept until `exp` plus `leeway`.
/// Otherwise MA writes each `jti` / `sid` entry with its forget-after time
/// as the value; a not-before entry's value is the time itself and its TTL
/// says when it goes.
async fn read_page(
    conn: &mut MultiplexedConnection,
    keys: &RevocationKeys,
    view: &RevocationView,
    page: Vec<Vec<u8>>,
    now: i64,
    leeway: i64,
) -> redis::RedisResult<usize> {
    let (mut expiring, mut users) = (Vec::new(), Vec::new());
    let mut named = Vec::with_capacity(page.len());
    for found in page.into_iter().filter_map(|key| classify(keys, key)) {
        if let Some(exp) = found.exp {
            named.push(named_entry(found, exp, leeway));
        } else if found.kind == RevocationKind::User {
            users.push(found);
        } else {
            expiring.push(found);
        }
    }
    let mut entries = named;
    entries.reserve(expiring.len() + users.len());
    if !expiring.is_empty() {
        let mut mget = redis::cmd("MGET");
        for found in &expiring {
            mget.arg(found.key.as_slice());
        }
        let values: Vec<Option<Vec<u8>>> = mget.query_async(conn).await?;
        entries.extend(
            expiring
                .into_iter()
                .zip(values)
                .filter_map(|(found, value)| Some(expiring_entry(found, &value?, now))),
        );
    }
    if !users.is_empty() {
        let mut pipe = redis::pipe();
        for found in &users {
            pipe.get(found.key.as_slice()).pttl(found.key.as_slice());
        }
        // One key of another type (WRONGTYPE) is passed over, not the page.
        let replies: Vec<redis::RedisResult<redis::Value>> =
            pipe.ignore_errors().query_async(conn).await?;
        let mut replies = replies.into_iter();
        for found in users {
            let (Some(value), Some(pttl)) = (replies.next(), replies.next()) else {
                break;
            };
            let Ok(redis::Value::BulkString(value)) = value else {
                continue; // expired meanwhile, or not MA's
            };
            let pttl = match pttl {
                Ok(redis::Value::Int(ms)) => ms,
                _ => -1,
            };
            entries.push(not_before_entry(found, &value, pttl, now));
        }
    }
    let merged = entries.len();
    view.merge_entries(entries);
    Ok(merged)
}

/// A page reader's outcome; a reader that panicked fails the load.
fn joined(
    done: Result<redis::RedisResult<usize>, tokio::task::JoinError>,
) -> redis::RedisResult<usize> {
    done.map_err(|_| io_err("a page reader stopped"))?
}

async fn read_marker(
    conn: &mut MultiplexedConnection,
    keys: &RevocationKeys,
) -> redis::RedisResult<Option<String>> {
    redis::cmd("GET")
        .arg(keys.generation())
        .query_async(conn)
        .await
}

/// Reads the marker (creating it when missing) and compares it with the
/// one this instance saw last. Returns the outcome and the marker now in
/// Redis; the caller adopts it only once its resync (and heal) succeeded, so
/// a heal cut short is done again on the next cycle.
async fn check_generation(
    conn: &mut MultiplexedConnection,
    keys: &RevocationKeys,
    seen: Option<&str>,
) -> redis::RedisResult<(Generation, String)> {
    let Some(current) = read_marker(conn, keys).await? else {
        let fresh = authrealm_tokens::random_token(16)
            .map_err(|_| io_err("the system random source failed"))?;
        // NX: of replicas racing here, one value wins and all adopt it.
        let _: Option<String> = redis::cmd("SET")
            .arg(keys.generation())
            .arg(&fresh)
            .arg("NX")
            .query_async(conn)
            .await?;
        let winner = read_marker(conn, keys).await?.unwrap_or(fresh);
        let outcome = if seen.is_some() {
            Generation::Lost
        } else {
            Generation::Fresh
        };
        return Ok((outcome, winner));
    };
    let outcome = match seen {
        Some(before) if before == current => Generation::Same,
        Some(_) => Generation::Lost,
        None => Generation::Joined,
    };
    Ok((outcome, current))
}

fn io_err(msg: &'static str) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, msg))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn found(keys: &RevocationKeys, key: &[u8]) -> Option<Found> {
        classify(keys, key.to_vec())
    }

    #[test]
    fn keys_are_sorted_by_kind_with_their_ids_decoded() {
        let k = RevocationKeys::new("realm");
        let jti = "AAAAAAAAAAAAAAAAAAAAAQ";
        let f = found(&k, k.legacy_jti(jti).as_bytes());
        assert!(
            matches!(&f, Some(Found { kind: RevocationKind::Jti, id: Id::Base64(_), key, exp: None }) if key == k.legacy_jti(jti).as_bytes()),
            "{:?}",
            f.map(|f| (f.kind, f.id))
        );
        // Named with its token's `exp`: nothing to read, kept `leeway` past it.
        let f = found(&k, k.jti(jti, NOW + 300).as_bytes());
        assert!(matches!(
            &f,
            Some(Found { kind: RevocationKind::Jti, id: Id::Base64(_), exp: Some(e), .. }) if *e == NOW + 300
        ));
        let e = f.map(|f| named_entry(f, NOW + 300, 60));
        assert_eq!(e.map(|e| (e.at, e.expires)), Some((NOW + 360, NOW + 360)));
        let user = "550e8400-e29b-41d4-a716-446655440000";
        let f = found(&k, k.not_before(user).as_bytes()).map(|f| (f.kind, f.id));
        assert!(matches!(f, Some((RevocationKind::User, Id::Uuid(_)))));
        // Another issuer's id shape, an empty id: kept as text.
        for id in ["some other id", "", "ü/ß\u{0}"] {
            let f = found(&k, k.session(id).as_bytes()).map(|f| (f.kind, f.id));
            assert_eq!(f, Some((RevocationKind::Session, Id::Text(id.into()))));
        }
    }

    #[test]
    fn keys_that_are_no_entry_are_passed_over() {
        let k = RevocationKeys::new("realm");
        let mut not_utf8 = k.legacy_jti("").into_bytes();
        not_utf8.extend_from_slice(&[0xff, 0xfe, b'x']);
        for key in [
            not_utf8.as_slice(),
            k.generation().as_bytes(),
            b"realm:revoked:other:x",
            b"realm:revoked:jti",
            b"realm:notbeforex",
            b"other:revoked:jti:AAAAAAAAAAAAAAAAAAAAAQ",
            b"realm",
            b"",
            &[0xff; 64],
        ] {
            assert!(found(&k, key).is_none(), "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn values_are_read_as_ma_writes_them_and_odd_ones_get_a_day() {
        assert_eq!(unix_secs(b"1800000300"), Some(1_800_000_300));
        assert_eq!(unix_secs(b"-5"), Some(-5));
        for odd in [
            &b""[..],
            b" 1800000300",
            b"1800000300\n",
            b"18e8",
            b"99999999999999999999",
            b"\xff\xfe",
            b"null",
        ] {
            assert_eq!(unix_secs(odd), None, "{}", String::from_utf8_lossy(odd));
        }
        let k = RevocationKeys::new("realm");
        let entry = |value: &[u8]| {
            found(&k, k.legacy_jti("j").as_bytes()).map(|f| expiring_entry(f, value, NOW))
        };
        assert_eq!(
            entry(b"1800000300").map(|e| (e.at, e.expires)),
            Some((1_800_000_300, 1_800_000_300))
        );
        let day = NOW + UNKNOWN_LIFE_SECS;
        assert_eq!(entry(b"soon").map(|e| (e.at, e.expires)), Some((day, day)));
    }

    #[test]
    fn a_not_before_entry_lives_as_long_as_its_ttl() {
        let k = RevocationKeys::new("realm");
        let entry = |value: &[u8], pttl: i64| {
            found(&k, k.not_before("u").as_bytes())
                .map(|f| not_before_entry(f, value, pttl, NOW))
                .map(|e| (e.kind, e.at, e.expires))
        };
        let user = RevocationKind::User;
        assert_eq!(
            entry(b"1799999000", 1_500),
            Some((user, 1_799_999_000, NOW + 2))
        );
        // No TTL (-1), gone meanwhile (-2): kept a day.
        let day = NOW + UNKNOWN_LIFE_SECS;
        assert_eq!(entry(b"1799999000", -1), Some((user, 1_799_999_000, day)));
        assert_eq!(entry(b"1799999000", -2), Some((user, 1_799_999_000, day)));
        // An unreadable time revokes what is older than now; the largest TTL fits.
        assert_eq!(
            entry(b"x", i64::MAX),
            Some((user, NOW, NOW + i64::MAX / 1000 + 1))
        );
    }

    proptest! {
        #[test]
        fn no_key_or_value_makes_a_page_panic(
            key in proptest::collection::vec(any::<u8>(), 0..80),
            tail in ".{0,40}",
            value in proptest::collection::vec(any::<u8>(), 0..24),
            pttl in any::<i64>(),
        ) {
            let k = RevocationKeys::new("p");
            let mut made = b"p:revoked:jti:".to_vec();
            made.extend_from_slice(tail.as_bytes());
            for key in [key, made, k.not_before(&tail).into_bytes()] {
                if let Some(f) = classify(&k, key) {
                    let kind = f.kind;
                    let e = if kind == RevocationKind::User {
                        not_before_entry(f, &value, pttl, NOW)
                    } else {
                        expiring_entry(f, &value, NOW)
                    };
                    prop_assert_eq!(e.kind, kind);
                }
            }
        }
    }
}
