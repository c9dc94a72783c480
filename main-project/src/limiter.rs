//! Failed-login limiting per account and per client IP: fixed windows of
//! counters, in Redis when configured (shared by every replica, one Lua
//! script so the increment and the check are atomic) and in memory otherwise.
//!
//! An attempt is counted *before* the password is checked and forgiven on
//! success, so N concurrent wrong guesses cannot all slip past a limit of N.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::metrics::Metrics;

/// Which limit refused a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Too many failures for this email.
    Account,
    /// Too many failures from this client address.
    Ip,
}

impl Scope {
    /// Metrics label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Ip => "ip",
        }
    }
}

/// Answer to [`LoginLimiter::begin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go on and check the password.
    Allowed,
    /// Refuse with 429; retry after this many seconds.
    Locked {
        /// Which limit.
        scope: Scope,
        /// Seconds until the window ends.
        retry_after: u64,
    },
}

const BEGIN_SCRIPT: &str = r"
local a = redis.call('INCR', KEYS[1])
if a == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local i = redis.call('INCR', KEYS[2])
if i == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
return {a, i, redis.call('TTL', KEYS[1]), redis.call('TTL', KEYS[2])}
";

/// ARGV[1]: `forgive` (a correct password: the account starts over) or
/// `undo` (the attempt never got an answer: it does not count).
const RELEASE_SCRIPT: &str = r"
local a = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[1] == 'forgive' then redis.call('DEL', KEYS[1])
elseif a > 0 then redis.call('DECR', KEYS[1]) end
local i = tonumber(redis.call('GET', KEYS[2]) or '0')
if i > 0 then redis.call('DECR', KEYS[2]) end
return 0
";

/// How a counted attempt is let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// The password was right: the account's failures are forgiven.
    Forgive,
    /// The attempt failed for OP's own reasons (503): it does not count.
    Undo,
}

impl Release {
    fn as_str(self) -> &'static str {
        match self {
            Self::Forgive => "forgive",
            Self::Undo => "undo",
        }
    }
}

/// A lazily connected, self-reconnecting Redis connection shared by the
/// limiter (the revocation listener keeps its own connections).
#[derive(Clone)]
pub struct RedisLink {
    client: redis::Client,
    conn: Arc<OnceCell<redis::aio::ConnectionManager>>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisLink")
    }
}

impl RedisLink {
    /// A link to `client`; connects on first use.
    #[must_use]
    pub fn new(client: redis::Client) -> Self {
        Self {
            client,
            conn: Arc::new(OnceCell::new()),
        }
    }

    /// The connection, connecting now if needed.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn get(&self) -> redis::RedisResult<redis::aio::ConnectionManager> {
        let c = self
            .conn
            .get_or_try_init(|| async {
                let cfg = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_response_timeout(Some(Duration::from_secs(1)))
                    .set_number_of_retries(1);
                self.client.get_connection_manager_with_config(cfg).await
            })
            .await?;
        Ok(c.clone())
    }
}

/// Most entries the in-memory counters hold (about 100 bytes each).
const MEMORY_CAP: usize = 100_000;

#[derive(Default)]
struct MemoryCounters {
    // key -> (count, window end in Unix seconds)
    map: Mutex<HashMap<String, (u32, i64)>>,
}

impl MemoryCounters {
    /// Counts one attempt for `[account, ip]`. The IP is counted first: once
    /// it is over `max_ip`, no account entry is created for it, so one client
    /// cannot fill the map with made-up emails. The map never holds more than
    /// [`MEMORY_CAP`] entries: when full of live entries, new keys are not
    /// tracked (the attempt counts as a first one) and a warning is logged.
    fn begin(
        &self,
        [account, ip]: [&str; 2],
        max_ip: u32,
        window: i64,
        now: i64,
    ) -> [(u32, i64); 2] {
        let Ok(mut map) = self.map.lock() else {
            return [(0, now); 2];
        };
        if map.len() >= MEMORY_CAP {
            map.retain(|_, (_, end)| *end > now);
        }
        let mut count = |k: &str| -> (u32, i64) {
            let full = map.len() >= MEMORY_CAP;
            let e = match map.get_mut(k) {
                Some(e) => e,
                None if full => {
                    tracing::warn!("login limiter: memory table full; an attempt went uncounted");
                    return (1, window);
                }
                None => map.entry(k.to_owned()).or_insert((0, now + window)),
            };
            if e.1 <= now {
                *e = (0, now + window);
            }
            e.0 = e.0.saturating_add(1);
            (e.0, e.1 - now)
        };
        let ip_count = count(ip);
        if ip_count.0 > max_ip {
            return [(0, window), ip_count];
        }
        [count(account), ip_count]
    }

    fn release(&self, account: &str, ip: &str, how: Release) {
        if let Ok(mut map) = self.map.lock() {
            match how {
                Release::Forgive => {
                    map.remove(account);
                }
                Release::Undo => {
                    if let Some(e) = map.get_mut(account) {
                        e.0 = e.0.saturating_sub(1);
                    }
                }
            }
            if let Some(e) = map.get_mut(ip) {
                e.0 = e.0.saturating_sub(1);
            }
        }
    }
}

/// The failed-login limiter.
#[derive(Clone)]
pub struct LoginLimiter {
    redis: Option<(RedisLink, String)>,
    memory: Arc<MemoryCounters>,
    max_account: u32,
    max_ip: u32,
    window: i64,
    begin_script: Arc<redis::Script>,
    release_script: Arc<redis::Script>,
    metrics: Metrics,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("redis", &self.redis.is_some())
            .field("max_account", &self.max_account)
            .field("max_ip", &self.max_ip)
            .field("window", &self.window)
            .finish()
    }
}

fn key_hash(s: &str) -> String {
    // Emails and addresses are not stored in Redis key names in the clear.
    authrealm_tokens::digest::hex(
        authrealm_tokens::digest::sha256(s.as_bytes())
            .get(..16)
            .unwrap_or_default(),
    )
}

impl LoginLimiter {
    /// A limiter allowing `max_account` failures per account and `max_ip`
    /// per address in each `window`; shared through Redis under `prefix` when
    /// `redis` is given.
    #[must_use]
    pub fn new(
        redis: Option<(RedisLink, String)>,
        max_account: u32,
        max_ip: u32,
        window: Duration,
        metrics: Metrics,
    ) -> Self {
        Self {
            redis,
            memory: Arc::new(MemoryCounters::default()),
            max_account,
            max_ip,
            window: i64::try_from(window.as_secs()).unwrap_or(i64::MAX).max(1),
            begin_script: Arc::new(redis::Script::new(BEGIN_SCRIPT)),
            release_script: Arc::new(redis::Script::new(RELEASE_SCRIPT)),
            metrics,
        }
    }

    fn keys(&self, account: &str, ip: &str) -> (String, String) {
        let prefix = self.redis.as_ref().map_or("op", |(_, p)| p.as_str());
        (
            format!("{prefix}:op:loginfail:acct:{}", key_hash(account)),
            format!("{prefix}:op:loginfail:ip:{}", key_hash(ip)),
        )
    }

    /// Counts an attempt for `account` from `ip` and says whether it may go on.
    pub async fn begin(&self, account: &str, ip: &str, now: i64) -> Decision {
        let (ka, ki) = self.keys(account, ip);
        let counts = match &self.redis {
            Some((link, _)) => match self.begin_redis(link, &ka, &ki).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "login limiter: Redis failed; counting in memory");
                    self.metrics.limiter_backend_errors.inc();
                    self.memory.begin([&ka, &ki], self.max_ip, self.window, now)
                }
            },
            None => self.memory.begin([&ka, &ki], self.max_ip, self.window, now),
        };
        let [(acct, acct_ttl), (ip_n, ip_ttl)] = counts;
        let secs = |t: i64| u64::try_from(t).unwrap_or(1).max(1);
        if acct > self.max_account {
            self.metrics.lockouts.with_label_values(&["account"]).inc();
            return Decision::Locked {
                scope: Scope::Account,
                retry_after: secs(acct_ttl),
            };
        }
        if ip_n > self.max_ip {
            self.metrics.lockouts.with_label_values(&["ip"]).inc();
            return Decision::Locked {
                scope: Scope::Ip,
                retry_after: secs(ip_ttl),
            };
        }
        Decision::Allowed
    }

    async fn begin_redis(
        &self,
        link: &RedisLink,
        ka: &str,
        ki: &str,
    ) -> redis::RedisResult<[(u32, i64); 2]> {
        let mut conn = link.get().await?;
        let (a, i, at, it): (u32, u32, i64, i64) = self
            .begin_script
            .key(ka)
            .key(ki)
            .arg(self.window)
            .invoke_async(&mut conn)
            .await?;
        Ok([(a, at), (i, it)])
    }

    /// Forgives the attempt after a correct password: the account's count is
    /// reset, the address's count goes down by one.
    pub async fn succeeded(&self, account: &str, ip: &str) {
        self.release(account, ip, Release::Forgive).await;
    }

    /// Takes back an attempt that got no answer (the database or the hashing
    /// pool was unavailable): a client retrying through an outage must not
    /// lock its own account.
    pub async fn undo(&self, account: &str, ip: &str) {
        self.release(account, ip, Release::Undo).await;
    }

    async fn release(&self, account: &str, ip: &str, how: Release) {
        let (ka, ki) = self.keys(account, ip);
        if let Some((link, _)) = &self.redis {
            let res: redis::RedisResult<i64> = async {
                let mut conn = link.get().await?;
                self.release_script
                    .key(&ka)
                    .key(&ki)
                    .arg(how.as_str())
                    .invoke_async(&mut conn)
                    .await
            }
            .await;
            if let Err(e) = res {
                tracing::warn!(error = %e, "login limiter: Redis failed releasing an attempt");
                self.metrics.limiter_backend_errors.inc();
            }
        }
        self.memory.release(&ka, &ki, how);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_limiter_locks_after_n_and_resets_after_window()
    -> Result<(), Box<dyn std::error::Error>> {
        let m = Metrics::new()?;
        let l = LoginLimiter::new(None, 3, 100, Duration::from_secs(60), m.clone());
        let now = 1_000;
        for _ in 0..3 {
            assert_eq!(
                l.begin("a@x.test", "10.0.0.1", now).await,
                Decision::Allowed
            );
        }
        assert_eq!(
            l.begin("a@x.test", "10.0.0.1", now + 10).await,
            Decision::Locked {
                scope: Scope::Account,
                retry_after: 50
            }
        );
        // Another account from the same address is not locked.
        assert_eq!(
            l.begin("b@x.test", "10.0.0.1", now).await,
            Decision::Allowed
        );
        // After the window the account may try again.
        assert_eq!(
            l.begin("a@x.test", "10.0.0.1", now + 61).await,
            Decision::Allowed
        );
        assert_eq!(m.lockouts.with_label_values(&["account"]).get(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn success_resets_the_account() -> Result<(), Box<dyn std::error::Error>> {
        let l = LoginLimiter::new(None, 2, 100, Duration::from_secs(60), Metrics::new()?);
        assert_eq!(l.begin("a@x.test", "ip", 0).await, Decision::Allowed);
        assert_eq!(l.begin("a@x.test", "ip", 0).await, Decision::Allowed);
        l.succeeded("a@x.test", "ip").await;
        assert_eq!(l.begin("a@x.test", "ip", 0).await, Decision::Allowed);
        Ok(())
    }

    #[tokio::test]
    async fn an_undone_attempt_does_not_count() -> Result<(), Box<dyn std::error::Error>> {
        let l = LoginLimiter::new(None, 2, 100, Duration::from_secs(60), Metrics::new()?);
        for _ in 0..10 {
            assert_eq!(l.begin("a@x.test", "ip", 0).await, Decision::Allowed);
            l.undo("a@x.test", "ip").await;
        }
        assert_eq!(l.begin("a@x.test", "ip", 0).await, Decision::Allowed);
        assert_eq!(l.begin("a@x.test", "ip", 0).await, Decision::Allowed);
        assert!(matches!(
            l.begin("a@x.test", "ip", 0).await,
            Decision::Locked { .. }
        ));
        Ok(())
    }

    #[tokio::test]
    async fn the_ip_limit_spans_accounts() -> Result<(), Box<dyn std::error::Error>> {
        let l = LoginLimiter::new(None, 100, 3, Duration::from_secs(60), Metrics::new()?);
        for i in 0..3 {
            assert_eq!(
                l.begin(&format!("u{i}@x.test"), "ip", 0).await,
                Decision::Allowed
            );
        }
        assert!(matches!(
            l.begin("u9@x.test", "ip", 0).await,
            Decision::Locked {
                scope: Scope::Ip,
                ..
            }
        ));
        Ok(())
    }

    #[tokio::test]
    async fn a_flood_of_made_up_emails_cannot_grow_the_memory_table()
    -> Result<(), Box<dyn std::error::Error>> {
        let l = LoginLimiter::new(None, 5, 20, Duration::from_secs(900), Metrics::new()?);
        // One address: past its limit, new emails are no longer tracked.
        for i in 0..1_000 {
            l.begin(&format!("u{i}@x.test"), "10.0.0.9", 0).await;
        }
        let entries = l.memory.map.lock().map(|m| m.len()).unwrap_or(usize::MAX);
        assert!(entries <= 1 + 21, "{entries} entries for one address");
        assert!(matches!(
            l.begin("fresh@x.test", "10.0.0.9", 0).await,
            Decision::Locked {
                scope: Scope::Ip,
                ..
            }
        ));
        // Many addresses: the table stops at its cap.
        let many = LoginLimiter::new(None, 5, 20, Duration::from_secs(900), Metrics::new()?);
        for i in 0..(MEMORY_CAP / 2 + 10) {
            many.begin(&format!("u{i}@x.test"), &format!("ip{i}"), 0)
                .await;
        }
        let entries = many
            .memory
            .map
            .lock()
            .map(|m| m.len())
            .unwrap_or(usize::MAX);
        assert_eq!(entries, MEMORY_CAP);
        // Keys already tracked keep counting (and locking) while it is full.
        for _ in 0..5 {
            many.begin("u1@x.test", "ip1", 0).await;
        }
        assert!(matches!(
            many.begin("u1@x.test", "ip1", 0).await,
            Decision::Locked {
                scope: Scope::Account,
                ..
            }
        ));
        Ok(())
    }
}
