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
use authrealm_tokens::revocation::{LOG_LUA, RevocationEvent, RevocationKeys, RevocationKind};
use futures::{FutureExt as _, StreamExt as _};
use redis::aio::MultiplexedConnection;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::RevocationView;
use super::log::load_log;
use super::page::{read_page, scan_page};

/// Pages whose values are being read, decoded and merged while the scan
/// goes on (bounds what a load holds beyond the view).
const PAGES_IN_FLIGHT: usize = 8;
/// Entries written back in one pipeline.
const HEAL_BATCH: usize = 1_000;
/// A link up this long before it failed reconnects without waiting.
const HEALTHY_FOR: Duration = Duration::from_secs(1);

/// Writes one entry back unless MA wrote it meanwhile (a not-before time
/// only ever moves later), and logs what it wrote (the trust marker is
/// MA's to write). KEYS: the entry's key. ARGV: prefix, kind (1 `jti`, 2
/// session, 3 user), id, at, forget-after, now (Unix seconds).
const HEAL_LUA: &str = r"
local kind = tonumber(ARGV[2])
local at = tonumber(ARGV[4])
local wrote
if kind == 3 then
  local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
  wrote = cur == nil or cur < at
  if wrote then redis.call('SET', KEYS[1], ARGV[4], 'EXAT', ARGV[5]) end
else
  wrote = redis.call('SET', KEYS[1], ARGV[5], 'EXAT', ARGV[5], 'NX')
end
if wrote then
  log_revocation(ARGV[1], kind, ARGV[3], at, tonumber(ARGV[5]), tonumber(ARGV[6]))
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
        let from_log = self.resync(&mut conn, generation).await?;
        // A reload from the log is checked against the keys while events
        // are applied (the view is known meanwhile).
        let check_conn = conn.clone();
        let mut check = pin!(
            async move {
                if from_log {
                    self.check(check_conn).await
                } else {
                    std::future::pending().await
                }
            }
            .fuse()
        );

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
                checked = &mut check => checked?,
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

    /// Generation check, reload (from the log when it may be read alone,
    /// by a scan of the keys otherwise), heal; then the view is known.
    /// Returns whether the reload read the log (a scan then checks it).
    async fn resync(
        &self,
        conn: &mut MultiplexedConnection,
        generation: &mut Option<String>,
    ) -> redis::RedisResult<bool> {
        let started = Instant::now();
        let (outcome, marker) = check_generation(conn, self.keys, generation.as_deref()).await?;
        // What this replica held before the scan is what Redis may have lost;
        // what the scan finds is in Redis already.
        let held = if matches!(outcome, Generation::Lost | Generation::Fresh) {
            self.view.live(self.clock.now())
        } else {
            Vec::new()
        };
        let m = &self.view.metrics;
        let (loaded, from_log) =
            match load_log(conn, self.keys, self.view, self.clock.now()).await? {
                Ok(new) => {
                    m.revocation_log_reloads.inc();
                    (new, true)
                }
                Err(_) => (self.load(conn).await?, false),
            };
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
        let source = if from_log { "log" } else { "scan" };
        tracing::info!(loaded, source, jti, session, user, generation = ?outcome, "revocation list loaded from Redis");
        Ok(from_log)
    }

    /// After a reload from the log: scans every key, adds what the log
    /// lacked (written by a writer that does not log, during an upgrade
    /// that outlasted the trust margin) and says so.
    async fn check(&self, mut conn: MultiplexedConnection) -> redis::RedisResult<()> {
        let started = Instant::now();
        let unlogged = self.load(&mut conn).await?;
        let m = &self.view.metrics;
        m.revocation_last_check_seconds
            .set(started.elapsed().as_secs_f64());
        m.revocation_unlogged
            .inc_by(u64::try_from(unlogged).unwrap_or(u64::MAX));
        m.revocation_checks.inc();
        if unlogged > 0 {
            tracing::warn!(
                unlogged,
                "the revocation keys hold entries the log lacked (a writer that does not log is running); added to the view"
            );
        }
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

    /// Writes `live` entries back, never overwriting what MA wrote
    /// meanwhile, and logs what it wrote.
    async fn heal(
        &self,
        conn: &mut MultiplexedConnection,
        live: &[RevocationEvent],
    ) -> redis::RedisResult<usize> {
        let script = redis::Script::new(&format!("{LOG_LUA}\n{HEAL_LUA}"));
        if !live.is_empty() {
            let _: String = script.prepare_invoke().load_async(conn).await?;
        }
        let now = self.clock.now();
        for chunk in live.chunks(HEAL_BATCH) {
            let mut pipe = redis::pipe();
            for ev in chunk {
                let (key, kind) = match ev.kind {
                    // The view keeps when an entry may go, not the token's
                    // `exp`: written back under the name that carries the
                    // value (MA reads both names).
                    RevocationKind::Jti => (self.keys.legacy_jti(&ev.id), 1),
                    RevocationKind::Session => (self.keys.session(&ev.id), 2),
                    RevocationKind::User => (self.keys.not_before(&ev.id), 3),
                };
                pipe.cmd("EVALSHA")
                    .arg(script.get_hash())
                    .arg(1)
                    .arg(key)
                    .arg(self.keys.prefix())
                    .arg(kind)
                    .arg(&ev.id)
                    .arg(ev.at)
                    .arg(ev.expires)
                    .arg(now)
                    .ignore();
            }
            pipe.query_async::<()>(conn).await?;
        }
        Ok(live.len())
    }
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
