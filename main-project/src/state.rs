//! What a request handler can reach ([`AppState`]), how it is built from a
//! validated [`Config`], and the background work of one instance
//! ([`Background`]: migrations with retry, JWKS upkeep, the Redis revocation
//! listener, purging of expired revocations).

use std::sync::Arc;
use std::time::Duration;

use authrealm_tokens::revocation::RevocationKeys;
use authrealm_tokens::{Clock, VerifierConfig};

use crate::auth_client::AuthClient;
use crate::config::{Config, RevocationPolicy, VerifyMode};
use crate::db::Database;
use crate::error::Error;
use crate::forward_auth::{ForwardAuthHeaders, IdentityCache};
use crate::keys::KeyStore;
use crate::limiter::{LoginLimiter, RedisLink};
use crate::metrics::Metrics;
use crate::password::PasswordHasher;
use crate::revocation::{self, RevocationView};
use crate::sessions::pending::PendingRefreshes;

/// How often expired revocations are forgotten.
const PURGE_INTERVAL: Duration = Duration::from_secs(30);

/// Everything a request handler can reach.
#[derive(Debug)]
pub struct AppState {
    /// Users and notes.
    pub db: Database,
    /// argon2id on the bounded pool.
    pub hasher: PasswordHasher,
    /// Failed-login limits.
    pub limiter: LoginLimiter,
    /// The auth-service client.
    pub ma: AuthClient,
    /// JWKS and verifier.
    pub keys: Arc<KeyStore>,
    /// Local revocation view.
    pub revocations: Arc<RevocationView>,
    /// Metrics of this instance.
    pub metrics: Metrics,
    /// The clock every time decision reads.
    pub clock: Clock,
    /// Refreshes rotated at MA whose account check the database cut short.
    pub pending: PendingRefreshes,
    /// Policy while the revocation state is unknown.
    pub revocation_policy: RevocationPolicy,
    /// Local or introspection verification.
    pub verify_mode: VerifyMode,
    /// Whether Redis is configured.
    pub redis_enabled: bool,
    /// Whether `X-Forwarded-For` names the client.
    pub trust_forwarded_for: bool,
    /// Clock skew tolerated on token times.
    pub leeway_secs: i64,
    /// Body size limit.
    pub max_body_bytes: usize,
    /// MA's issuer (the `iss` of authorization responses, RFC 9207).
    pub issuer: String,
    /// The browser side of the code flow: cookie keys and settings.
    pub oidc: crate::oidc::Settings,
    /// The header names of the forward-auth endpoint.
    pub forward_auth: ForwardAuthHeaders,
    /// The forward-auth endpoint's identity header values of tokens seen again.
    pub forward_auth_identity: IdentityCache,
}

impl AppState {
    /// Refuses database work until the migrations have run.
    ///
    /// # Errors
    /// [`Error::DatabaseNotReady`] (503 + `Retry-After`).
    pub fn require_db(&self) -> Result<(), Error> {
        if self.db.is_migrated() {
            Ok(())
        } else {
            Err(Error::DatabaseNotReady)
        }
    }
}

/// Background work of one instance (aborted when dropped).
#[derive(Debug, Default)]
pub struct Background {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    fn spawn(&mut self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(task));
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Builds the state from a configuration and starts its background tasks.
/// Must run inside a Tokio runtime.
///
/// # Errors
/// [`Error::Config`] and friends for settings that cannot work.
pub async fn build(config: &Config) -> Result<(Arc<AppState>, Background), Error> {
    let credential = config.validate()?;
    let session_key = config.session_key()?;
    if session_key.is_none() {
        tracing::warn!(
            "AUTHREALM_SESSION_COOKIE_KEY is not set: a random key signs browser sessions and login forms, so they work on this process only and end with it"
        );
    }
    let oidc = crate::oidc::Settings {
        keys: crate::oidc::seal::Keys::new(session_key.as_ref())?,
        secure_cookies: config.session_cookie_secure,
        session_ttl: i64::try_from(config.session_ttl.as_secs()).unwrap_or(i64::MAX),
    };
    let forward_auth = ForwardAuthHeaders::new(&config.forward_auth_header_prefix)?;
    let clock = config.clock.clone();
    let metrics = Metrics::new()?;
    let db = Database::connect_lazy(
        &config.database_url,
        config.database_max_connections,
        config.database_acquire_timeout,
    )?;
    let hasher = PasswordHasher::new(
        config.hash_slots(),
        config.hash_queue,
        config.hash_queue_timeout,
        config.argon2_memory_kib,
        config.argon2_iterations,
        metrics.clone(),
    )?;
    let redis_client = config
        .redis_url
        .as_deref()
        .map(redis::Client::open)
        .transpose()
        .map_err(Error::Redis)?;
    let limiter = LoginLimiter::new(
        redis_client
            .clone()
            .map(|c| (RedisLink::new(c), config.redis_prefix.clone())),
        config.login_max_failures,
        config
            .login_max_failures
            .saturating_mul(config.ip_failure_factor),
        config.login_failure_window,
        metrics.clone(),
    );
    let ma = AuthClient::new(
        &config.auth_service_url,
        config.jwks_url(),
        credential,
        config.auth_service_timeout,
        metrics.clone(),
    )?;
    let leeway_secs = i64::try_from(config.clock_leeway.as_secs()).unwrap_or(60);
    let keys = Arc::new(KeyStore::new(
        ma.clone(),
        VerifierConfig {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway_secs,
        },
        config.jwks_min_refetch_interval,
        config.token_cache_entries,
        metrics.clone(),
        clock.clone(),
    ));
    let revocations = Arc::new(RevocationView::new(false, metrics.clone()));

    let mut bg = Background::default();
    bg.spawn(migrate_until_done(db.clone(), clock.clone()));
    bg.spawn(keys.clone().maintain(config.jwks_refresh_interval));
    if let Some(client) = redis_client.clone() {
        bg.spawn(revocation::follow_redis(
            client,
            RevocationKeys::new(&config.redis_prefix),
            revocations.clone(),
            config.revocation_ping_interval,
            clock.clone(),
            leeway_secs,
        ));
    } else {
        bg.spawn(revocation::follow_feed(ma.clone(), revocations.clone()));
    }
    bg.spawn(purge_expired(revocations.clone(), clock.clone()));
    let state = Arc::new(AppState {
        db,
        hasher,
        limiter,
        ma,
        keys,
        revocations,
        metrics,
        clock,
        pending: PendingRefreshes::default(),
        revocation_policy: config.revocation_policy,
        verify_mode: config.verify_mode,
        redis_enabled: redis_client.is_some(),
        trust_forwarded_for: config.trust_forwarded_for,
        leeway_secs,
        max_body_bytes: config.max_body_bytes,
        issuer: config.issuer.clone(),
        oidc,
        forward_auth,
        forward_auth_identity: IdentityCache::default(),
    });
    Ok((state, bg))
}

/// Applies the migrations, retrying with backoff until the database answers.
async fn migrate_until_done(db: Database, clock: Clock) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match db.migrate(clock.now()).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "database not ready; retrying migrations");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Forgets revocations whose tokens have all expired, every [`PURGE_INTERVAL`].
async fn purge_expired(view: Arc<RevocationView>, clock: Clock) {
    let mut tick = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tick.tick().await;
        view.purge(clock.now());
    }
}
