//! The local view of the revocation list: revoked `jti`s, revoked sessions
//! and per-user not-before times, each with the time after which it can be
//! forgotten. Checked on every protected request with one read lock and
//! three hash lookups.
//!
//! With Redis, a listener keeps it current: it SUBSCRIBEs to the channel
//! first, then SCANs the whole list (so nothing published during the scan is
//! missed; applying an event twice is harmless), and starts over after any
//! disconnect. Until the scan has finished the state is *unknown*. Without
//! Redis (one local replica) OP records the revocations it makes itself.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use authrealm_tokens::api::TokenPair;
use authrealm_tokens::revocation::{RevocationEvent, RevocationKeys, RevocationKind};
use authrealm_tokens::{AccessClaims, Clock};
use futures::StreamExt as _;

use crate::metrics::Metrics;

/// What the view says about one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not revoked, and the view is current.
    Valid,
    /// Revoked.
    Revoked,
    /// Not revoked as far as the view knows, but the view may be stale (Redis down).
    Unknown,
}

#[derive(Default)]
struct Entries {
    jti: HashMap<String, i64>,
    sid: HashMap<String, i64>,
    // sub -> (not before, forget after)
    not_before: HashMap<String, (i64, i64)>,
    // Without Redis only: sub -> sessions this instance minted (sid -> forget after).
    sessions: HashMap<String, HashMap<String, i64>>,
}

impl Entries {
    fn len(&self) -> usize {
        self.jti.len() + self.sid.len() + self.not_before.len()
    }

    fn apply(&mut self, ev: &RevocationEvent) {
        match ev.kind {
            RevocationKind::Jti => {
                self.jti.insert(ev.id.clone(), ev.expires);
            }
            RevocationKind::Session => {
                self.sid.insert(ev.id.clone(), ev.expires);
            }
            RevocationKind::User => {
                let e = self
                    .not_before
                    .entry(ev.id.clone())
                    .or_insert((ev.at, ev.expires));
                e.0 = e.0.max(ev.at);
                e.1 = e.1.max(ev.expires);
            }
        }
    }

    fn purge(&mut self, now: i64) {
        self.jti.retain(|_, until| *until > now);
        self.sid.retain(|_, until| *until > now);
        self.not_before.retain(|_, (_, until)| *until > now);
        self.sessions.retain(|_, s| {
            s.retain(|_, until| *until > now);
            !s.is_empty()
        });
    }
}

/// The revocation view shared by every request of one instance.
pub struct RevocationView {
    entries: RwLock<Entries>,
    known: AtomicBool,
    metrics: Metrics,
}

impl std::fmt::Debug for RevocationView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationView")
            .field("known", &self.is_known())
            .finish_non_exhaustive()
    }
}

impl RevocationView {
    /// An empty view; `known` is true without Redis (nothing else can revoke).
    #[must_use]
    pub fn new(known: bool, metrics: Metrics) -> Self {
        metrics.revocation_known.set(i64::from(known));
        Self {
            entries: RwLock::new(Entries::default()),
            known: AtomicBool::new(known),
            metrics,
        }
    }

    /// Whether the view is known to be current.
    #[must_use]
    pub fn is_known(&self) -> bool {
        self.known.load(Ordering::Acquire)
    }

    fn set_known(&self, known: bool) {
        self.known.store(known, Ordering::Release);
        self.metrics.revocation_known.set(i64::from(known));
    }

    /// Checks a verified token's claims.
    #[must_use]
    pub fn check(&self, claims: &AccessClaims) -> Status {
        let revoked = match self.entries.read() {
            Ok(e) => {
                e.jti.contains_key(&claims.jti)
                    || e.sid.contains_key(&claims.sid)
                    || e.not_before
                        .get(&claims.sub)
                        .is_some_and(|(nb, _)| claims.iat < *nb)
            }
            // A poisoned lock means a panic elsewhere; do not guess.
            Err(_) => return Status::Unknown,
        };
        if revoked {
            Status::Revoked
        } else if self.is_known() {
            Status::Valid
        } else {
            Status::Unknown
        }
    }

    /// Applies one event (from the channel, or recorded locally).
    pub fn apply(&self, ev: &RevocationEvent) {
        self.metrics
            .revocation_events
            .with_label_values(&[ev.kind.as_str()])
            .inc();
        if let Ok(mut e) = self.entries.write() {
            e.apply(ev);
            self.metrics
                .revocation_entries
                .set(i64::try_from(e.len()).unwrap_or(i64::MAX));
        }
    }

    /// Replaces everything with a fresh snapshot (after a SCAN).
    fn replace(&self, events: &[RevocationEvent]) {
        let mut fresh = Entries::default();
        for ev in events {
            fresh.apply(ev);
        }
        if let Ok(mut e) = self.entries.write() {
            fresh.sessions = std::mem::take(&mut e.sessions);
            self.metrics
                .revocation_entries
                .set(i64::try_from(fresh.len()).unwrap_or(i64::MAX));
            *e = fresh;
        }
    }

    /// Forgets entries whose tokens have all expired.
    pub fn purge(&self, now: i64) {
        if let Ok(mut e) = self.entries.write() {
            e.purge(now);
            self.metrics
                .revocation_entries
                .set(i64::try_from(e.len()).unwrap_or(i64::MAX));
        }
    }

    /// Without Redis (`local_only`): remembers the session of a pair this
    /// instance handed out, until its access token (plus `leeway`) has
    /// expired, so logout-all can end it. With Redis, MA publishes one event
    /// per session instead, and this does nothing.
    pub fn remember_session(&self, local_only: bool, pair: &TokenPair, now: i64, leeway: i64) {
        if local_only {
            let until = now
                .saturating_add(i64::try_from(pair.expires_in).unwrap_or(i64::MAX / 2))
                .saturating_add(leeway);
            self.note_session(&pair.sub, &pair.session_id, until);
        }
    }

    /// Records what logout-all ended, effective here at once: every token of
    /// `claims.sub` issued before `not_before`, for `life` seconds. Without
    /// Redis (`local_only`) it also ends each session this instance handed
    /// out to the user (tokens minted in the same second as `not_before`).
    pub fn end_user(&self, local_only: bool, claims: &AccessClaims, not_before: i64, life: i64) {
        let until = not_before.saturating_add(life);
        self.apply(&RevocationEvent {
            kind: RevocationKind::User,
            id: claims.sub.clone(),
            at: not_before,
            expires: until,
        });
        if local_only {
            let mut sessions = self.sessions_of(&claims.sub);
            sessions.push((claims.sid.clone(), until));
            for (sid, until) in sessions {
                self.apply(&RevocationEvent {
                    kind: RevocationKind::Session,
                    id: sid,
                    at: not_before,
                    expires: until,
                });
            }
        }
    }

    /// Records that the session of `claims` ended (logout), effective here at
    /// once whatever the channel does, until every token of it has expired.
    pub fn end_session(&self, claims: &AccessClaims, now: i64, life: i64) {
        self.apply(&RevocationEvent {
            kind: RevocationKind::Session,
            id: claims.sid.clone(),
            at: now,
            expires: now.saturating_add(life),
        });
    }

    fn note_session(&self, sub: &str, sid: &str, until: i64) {
        if let Ok(mut e) = self.entries.write() {
            let s = e.sessions.entry(sub.to_owned()).or_default();
            let slot = s.entry(sid.to_owned()).or_insert(until);
            *slot = (*slot).max(until);
        }
    }

    fn sessions_of(&self, sub: &str) -> Vec<(String, i64)> {
        self.entries
            .read()
            .map(|e| {
                e.sessions
                    .get(sub)
                    .map(|s| s.iter().map(|(k, v)| (k.clone(), *v)).collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }
}

/// Keeps `view` current from Redis until the task is dropped: subscribe,
/// scan, apply events; on any failure mark the state unknown and start over.
pub async fn follow_redis(
    client: redis::Client,
    keys: RevocationKeys,
    view: std::sync::Arc<RevocationView>,
    ping_every: Duration,
    clock: Clock,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let resyncs_before = view.metrics.revocation_resyncs.get();
        if let Err(e) = follow_once(&client, &keys, &view, ping_every, &clock).await {
            tracing::warn!(error = %e, "revocation listener: Redis lost; state unknown until resynced");
        }
        // A link that got as far as a full scan was healthy: retry quickly.
        if view.metrics.revocation_resyncs.get() > resyncs_before {
            backoff = Duration::from_millis(100);
        }
        view.set_known(false);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn follow_once(
    client: &redis::Client,
    keys: &RevocationKeys,
    view: &RevocationView,
    ping_every: Duration,
    clock: &Clock,
) -> redis::RedisResult<()> {
    let connect = Duration::from_secs(2);
    let pubsub = tokio::time::timeout(connect, client.get_async_pubsub())
        .await
        .map_err(|_| io_err("connect timed out"))??;
    let (mut sink, mut stream) = pubsub.split();
    sink.subscribe(keys.channel()).await?;
    // Subscribed: anything revoked from now on arrives on the stream (buffered
    // while we scan). Now load everything revoked before.
    let mut conn = tokio::time::timeout(connect, client.get_multiplexed_async_connection())
        .await
        .map_err(|_| io_err("connect timed out"))??;
    let now = clock.now();
    let mut events = Vec::new();
    for (pattern, kind) in [
        (keys.jti_pattern(), RevocationKind::Jti),
        (keys.session_pattern(), RevocationKind::Session),
        (keys.not_before_pattern(), RevocationKind::User),
    ] {
        let prefix_len = pattern.len() - 1;
        let mut cursor: u64 = 0;
        loop {
            let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            if !found.is_empty() {
                let mut pipe = redis::pipe();
                for k in &found {
                    pipe.get(k).pttl(k);
                }
                let values: Vec<(Option<String>, i64)> = pipe.query_async(&mut conn).await?;
                for (k, (value, pttl)) in found.iter().zip(values) {
                    let Some(value) = value else { continue }; // expired meanwhile
                    let id = k.get(prefix_len..).unwrap_or_default().to_owned();
                    // No TTL (-1) should not happen; keep such entries for a day.
                    let expires = if pttl > 0 {
                        now + pttl / 1000 + 1
                    } else {
                        now + 86_400
                    };
                    let at = if kind == RevocationKind::User {
                        value.parse().unwrap_or(now)
                    } else {
                        expires
                    };
                    events.push(RevocationEvent {
                        kind,
                        id,
                        at,
                        expires,
                    });
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    view.replace(&events);
    view.metrics.revocation_resyncs.inc();
    view.set_known(true);
    tracing::info!(entries = events.len(), "revocation list loaded from Redis");
    drop(conn);

    let mut ping = tokio::time::interval(ping_every);
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return Err(io_err("subscription closed"));
                };
                match serde_json::from_slice::<RevocationEvent>(msg.get_payload_bytes()) {
                    Ok(ev) => view.apply(&ev),
                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed revocation event"),
                }
            }
            _ = ping.tick() => {
                // A silent network failure would otherwise leave a stale view "known".
                // On a subscribed RESP2 connection PING answers ["pong", ""],
                // not "PONG": any non-error reply means the link is alive.
                let pong: Result<redis::RedisResult<redis::Value>, _> =
                    tokio::time::timeout(Duration::from_secs(3), sink.ping()).await;
                match pong {
                    Ok(Ok(_)) => view.metrics.revocation_pings.inc(),
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(io_err("ping timed out")),
                }
            }
        }
    }
}

fn io_err(msg: &'static str) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jti: &str, sid: &str, sub: &str, iat: i64) -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            sub: sub.into(),
            aud: "a".into(),
            exp: iat + 300,
            iat,
            nbf: iat,
            jti: jti.into(),
            sid: sid.into(),
            extra: serde_json::Map::new(),
        }
    }

    #[test]
    fn each_kind_revokes_what_it_names() -> Result<(), Box<dyn std::error::Error>> {
        let v = RevocationView::new(true, Metrics::new()?);
        let c = claims("j1", "s1", "u1", 1000);
        assert_eq!(v.check(&c), Status::Valid);
        v.apply(&RevocationEvent {
            kind: RevocationKind::Jti,
            id: "j1".into(),
            at: 1300,
            expires: 1300,
        });
        assert_eq!(v.check(&c), Status::Revoked);
        assert_eq!(v.check(&claims("j2", "s1", "u1", 1000)), Status::Valid);
        v.apply(&RevocationEvent {
            kind: RevocationKind::Session,
            id: "s1".into(),
            at: 1360,
            expires: 1360,
        });
        assert_eq!(v.check(&claims("j2", "s1", "u1", 1000)), Status::Revoked);
        v.apply(&RevocationEvent {
            kind: RevocationKind::User,
            id: "u2".into(),
            at: 1100,
            expires: 1460,
        });
        assert_eq!(v.check(&claims("j3", "s3", "u2", 1099)), Status::Revoked);
        // Issued at or after the not-before time: a new login, accepted.
        assert_eq!(v.check(&claims("j4", "s4", "u2", 1100)), Status::Valid);
        // Expired entries are forgotten.
        v.purge(1301);
        assert_eq!(v.check(&c), Status::Revoked); // still the session
        v.purge(1500);
        assert_eq!(v.check(&c), Status::Valid);
        assert_eq!(v.check(&claims("j3", "s3", "u2", 1099)), Status::Valid);
        Ok(())
    }

    #[test]
    fn unknown_state_still_reports_known_revocations() -> Result<(), Box<dyn std::error::Error>> {
        let v = RevocationView::new(false, Metrics::new()?);
        let c = claims("j1", "s1", "u1", 1000);
        assert_eq!(v.check(&c), Status::Unknown);
        v.apply(&RevocationEvent {
            kind: RevocationKind::Jti,
            id: "j1".into(),
            at: 1300,
            expires: 1300,
        });
        assert_eq!(v.check(&c), Status::Revoked);
        Ok(())
    }
}
