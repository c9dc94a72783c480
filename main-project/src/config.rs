//! Configuration of the main project: flags and `AUTHREALM_*` environment
//! variables (clap), the embedded defaults of a local run, and the checks that
//! turn a bad setting into a clear error at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use authrealm_tokens::{Clock, ServiceCredential};

pub use authrealm_runtime::LogFormat;
use authrealm_runtime::env::{self, ports};
use authrealm_runtime::options;

use crate::error::Error;

/// What a protected request does while the revocation state in Redis is unknown
/// (Redis unreachable, or the initial scan not finished).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RevocationPolicy {
    /// Answer 503 `revocation_unavailable` (the default: never accept a token
    /// that might have been revoked).
    FailClosed,
    /// Accept signature-valid tokens and count each one in
    /// `authrealm_op_revocation_fail_open_total`.
    FailOpen,
}

/// How access tokens are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyMode {
    /// Signature with the cached JWKS, then the local revocation view.
    Local,
    /// Signature with the cached JWKS, then MA's introspection endpoint on
    /// every request (no Redis needed; one MA round trip per request).
    Introspect,
}

/// Every setting of the main project. Flags are the lower-kebab names of the
/// environment variables without the `AUTHREALM_` prefix.
///
/// `Debug` leaves out the database and Redis URLs (they may hold passwords)
/// and the credential.
#[derive(clap::Parser, Clone)]
#[command(name = "main-project", version, about = "AuthRealm main project (OP)")]
pub struct Config {
    /// Address the public API listens on.
    #[arg(long, env = env::LISTEN, default_value_t = SocketAddr::from(([127, 0, 0, 1], ports::OP_API)))]
    pub listen: SocketAddr,

    /// Address `/metrics`, `/healthz` and `/readyz` are served on (never
    /// through the public listener, so an Ingress cannot expose them).
    #[arg(long, env = env::METRICS_LISTEN, default_value_t = SocketAddr::from(([127, 0, 0, 1], ports::OP_METRICS)))]
    pub metrics_listen: SocketAddr,

    /// Base URL of the auth-service (MA): its internal `/v1` API and its JWKS.
    #[arg(
        long,
        env = env::op::AUTH_SERVICE_URL,
        default_value = "http://127.0.0.1:8081"
    )]
    pub auth_service_url: String,

    /// JWKS URL; unset: `<auth-service-url>/.well-known/jwks.json`.
    #[arg(long, env = env::op::JWKS_URL)]
    pub jwks_url: Option<String>,

    /// `iss` every access token must carry (MA's public base URL).
    #[arg(
        long,
        env = env::ISSUER,
        default_value = "http://127.0.0.1:8081"
    )]
    pub issuer: String,

    /// `aud` every access token must carry.
    #[arg(long, env = env::AUDIENCE, default_value = "authrealm")]
    pub audience: String,

    /// Clock skew tolerated on `exp` / `nbf`.
    #[arg(long, env = env::op::CLOCK_LEEWAY, default_value = "5s", value_parser = options::duration)]
    pub clock_leeway: Duration,

    /// The bearer secret presented to MA's internal API (at least 16 characters).
    #[arg(long, env = env::SERVICE_CREDENTIAL, value_parser = options::credential, hide_env_values = true)]
    pub service_credential: Option<ServiceCredential>,

    /// File holding the service credential (a mounted Secret key); used when
    /// `--service-credential` is not given.
    #[arg(long, env = env::SERVICE_CREDENTIAL_FILE)]
    pub service_credential_file: Option<PathBuf>,

    /// Timeout of one call to MA.
    #[arg(long, env = env::op::AUTH_SERVICE_TIMEOUT, default_value = "5s", value_parser = options::duration)]
    pub auth_service_timeout: Duration,

    /// Database URL: `sqlite://path?mode=rwc` (embedded) or `postgres://...`.
    #[arg(
        long,
        env = env::op::DATABASE_URL,
        default_value = "sqlite://data/main-project.db?mode=rwc",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Largest number of pooled database connections.
    #[arg(long, env = env::op::DATABASE_MAX_CONNECTIONS, default_value_t = 10)]
    pub database_max_connections: u32,

    /// How long a request waits for a database connection before 503.
    #[arg(long, env = env::op::DATABASE_ACQUIRE_TIMEOUT, default_value = "3s", value_parser = options::duration)]
    pub database_acquire_timeout: Duration,

    /// Redis URL. Unset: revocations and login failures are kept in memory
    /// (one replica only).
    #[arg(long, env = env::REDIS_URL, hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and of the revocation channel (same as MA's).
    #[arg(long, env = env::REDIS_PREFIX, default_value = authrealm_tokens::revocation::DEFAULT_PREFIX)]
    pub redis_prefix: String,

    /// What to do while the revocation state is unknown.
    #[arg(
        long,
        env = env::op::REVOCATION_POLICY,
        value_enum,
        default_value = "fail-closed"
    )]
    pub revocation_policy: RevocationPolicy,

    /// `local` (JWKS + revocation view) or `introspect` (ask MA each request).
    #[arg(
        long,
        env = env::op::VERIFY_MODE,
        value_enum,
        default_value = "local"
    )]
    pub verify_mode: VerifyMode,

    /// How often the JWKS is refetched even without an unknown `kid`.
    #[arg(long, env = env::op::JWKS_REFRESH_INTERVAL, default_value = "5m", value_parser = options::duration)]
    pub jwks_refresh_interval: Duration,

    /// Least time between two refetches triggered by unknown `kid`s (whole seconds).
    #[arg(long, env = env::op::JWKS_MIN_REFETCH_INTERVAL, default_value = "5s", value_parser = options::duration)]
    pub jwks_min_refetch_interval: Duration,

    /// How often the revocation listener pings Redis and checks the
    /// generation marker; a link silent for longer is treated as lost.
    #[arg(long, env = env::op::REVOCATION_PING_INTERVAL, default_value = "5s", value_parser = options::duration)]
    pub revocation_ping_interval: Duration,

    /// Failed logins per account (and, times `--ip-failure-factor`, per client
    /// IP) allowed in one window before 429.
    #[arg(long, env = env::op::LOGIN_MAX_FAILURES, default_value_t = 5)]
    pub login_max_failures: u32,

    /// The failure-counting window (also the longest lockout).
    #[arg(long, env = env::op::LOGIN_FAILURE_WINDOW, default_value = "15m", value_parser = options::duration)]
    pub login_failure_window: Duration,

    /// The per-IP limit is this many times the per-account limit (many users
    /// may share one address).
    #[arg(long, env = env::op::IP_FAILURE_FACTOR, default_value_t = 4)]
    pub ip_failure_factor: u32,

    /// Take the client IP from the first `X-Forwarded-For` entry (only behind
    /// a proxy that sets it).
    #[arg(long, env = env::op::TRUST_FORWARDED_FOR, default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// Password hashes computed at once (0 = number of CPU cores).
    #[arg(long, env = env::op::HASH_CONCURRENCY, default_value_t = 0)]
    pub hash_concurrency: usize,

    /// Requests allowed to wait for a hashing slot; beyond it 503 at once.
    #[arg(long, env = env::op::HASH_QUEUE, default_value_t = 64)]
    pub hash_queue: usize,

    /// Longest wait for a hashing slot before 503.
    #[arg(long, env = env::op::HASH_QUEUE_TIMEOUT, default_value = "5s", value_parser = options::duration)]
    pub hash_queue_timeout: Duration,

    /// argon2id memory cost in KiB (OWASP minimum 19456).
    #[arg(long, env = env::op::ARGON2_MEMORY_KIB, default_value_t = 19_456)]
    pub argon2_memory_kib: u32,

    /// argon2id iterations (OWASP minimum 2).
    #[arg(long, env = env::op::ARGON2_ITERATIONS, default_value_t = 2)]
    pub argon2_iterations: u32,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = env::MAX_BODY_BYTES, default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Entries kept in the cache of already-verified tokens (0 disables it).
    #[arg(long, env = env::op::TOKEN_CACHE_ENTRIES, default_value_t = 100_000)]
    pub token_cache_entries: usize,

    /// Key of the browser-session (SSO) cookie and of the login form's CSRF
    /// token (at least 32 characters; every replica the same). Unset: a
    /// random key per process (a local run: sessions end with the process).
    #[arg(long, env = env::op::SESSION_COOKIE_KEY, value_parser = options::credential, hide_env_values = true)]
    pub session_cookie_key: Option<ServiceCredential>,

    /// File holding the session cookie key (a mounted Secret key); used when
    /// `--session-cookie-key` is not given.
    #[arg(long, env = env::op::SESSION_COOKIE_KEY_FILE)]
    pub session_cookie_key_file: Option<PathBuf>,

    /// Whether the session and CSRF cookies carry `Secure`. `false` is
    /// accepted only when OP listens on a loopback address (a local run
    /// over plain http://127.0.0.1).
    #[arg(long, env = env::op::SESSION_COOKIE_SECURE, default_value_t = true, action = clap::ArgAction::Set)]
    pub session_cookie_secure: bool,

    /// Longest life of a browser session (SSO) from the login.
    #[arg(long, env = env::op::SESSION_TTL, default_value = "8h", value_parser = options::duration)]
    pub session_ttl: Duration,
    /// Prefix of the identity headers `/auth/verify` answers with and of the
    /// requirement headers it reads (`X-Auth-Subject`, `X-Auth-Require-Scope`,
    /// ...): letters, digits and `-`, at most 64 bytes.
    #[arg(long, env = env::op::FORWARD_AUTH_HEADER_PREFIX, default_value = crate::forward_auth::DEFAULT_HEADER_PREFIX)]
    pub forward_auth_header_prefix: String,

    /// Log line format.
    #[arg(long, env = env::LOG_FORMAT, value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Header, body and idle timeouts, connection cap and shutdown time of
    /// every listener (the same hardened listener as auth-service's).
    #[command(flatten)]
    pub limits: authrealm_runtime::Limits,

    /// The clock every time decision reads (the system clock; tests move a
    /// manual one). Not a flag.
    #[arg(skip)]
    pub clock: Clock,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("metrics_listen", &self.metrics_listen)
            .field("auth_service_url", &self.auth_service_url)
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field(
                "database",
                &crate::db::Backend::from_url(&self.database_url),
            )
            .field("redis", &self.redis_url.is_some())
            .field("redis_prefix", &self.redis_prefix)
            .field("revocation_policy", &self.revocation_policy)
            .field("verify_mode", &self.verify_mode)
            .finish_non_exhaustive()
    }
}

/// Shortest session cookie key accepted, in bytes.
pub const MIN_SESSION_KEY_LEN: usize = 32;

/// Lowest argon2id memory cost accepted (OWASP).
pub const MIN_ARGON2_MEMORY_KIB: u32 = 19_456;
/// Lowest argon2id iteration count accepted (OWASP).
pub const MIN_ARGON2_ITERATIONS: u32 = 2;

impl Config {
    /// The embedded defaults of a local run: the flags' own defaults with no
    /// environment read (`127.0.0.1:8080`, MA at `http://127.0.0.1:8081`,
    /// SQLite in `data/`, no Redis). The service credential is unset: give it
    /// MA's (see `auth_service::Config::local`).
    #[must_use]
    pub fn local() -> Self {
        use clap::{CommandFactory as _, FromArgMatches as _};
        // Only broken defaults could fail here (a unit test parses them);
        // clap then reports and exits, as it does for any bad setting.
        let command = Self::command().mut_args(|a| a.env(None));
        let matches = command.get_matches_from(["main-project"]);
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// Checks the settings and resolves the service credential.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting, or [`Error::Credential`].
    pub fn validate(&self) -> Result<ServiceCredential, Error> {
        let bad = |msg: &str| Err(Error::Config(msg.to_owned()));
        let is_http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        if !is_http(&self.auth_service_url) {
            return bad("AUTHREALM_AUTH_SERVICE_URL must be an http:// or https:// URL");
        }
        if let Some(u) = &self.jwks_url
            && !is_http(u)
        {
            return bad("AUTHREALM_JWKS_URL must be an http:// or https:// URL");
        }
        if self.issuer.is_empty() {
            return bad("AUTHREALM_ISSUER must not be empty");
        }
        if self.audience.is_empty() {
            return bad("AUTHREALM_AUDIENCE must not be empty");
        }
        if !(self.database_url.starts_with("sqlite:") || self.database_url.starts_with("postgres"))
        {
            return bad(
                "AUTHREALM_DATABASE_URL must start with sqlite: or postgres:// (postgresql:// also works)",
            );
        }
        if self.database_max_connections == 0 {
            return bad("AUTHREALM_DATABASE_MAX_CONNECTIONS must be at least 1");
        }
        if self.redis_prefix.is_empty() {
            return bad("AUTHREALM_REDIS_PREFIX must not be empty");
        }
        if let Some(url) = &self.redis_url {
            redis::Client::open(url.as_str()).map_err(|_| {
                Error::Config(
                    "AUTHREALM_REDIS_URL is not a valid Redis URL (redis://host:port/db)"
                        .to_owned(),
                )
            })?;
        }
        if self.login_max_failures == 0 {
            return bad("AUTHREALM_LOGIN_MAX_FAILURES must be at least 1");
        }
        if self.ip_failure_factor == 0 {
            return bad("AUTHREALM_IP_FAILURE_FACTOR must be at least 1");
        }
        if self.login_failure_window.as_secs() == 0 {
            return bad("AUTHREALM_LOGIN_FAILURE_WINDOW must be at least 1s");
        }
        if self.jwks_refresh_interval.as_secs() == 0 {
            return bad("AUTHREALM_JWKS_REFRESH_INTERVAL must be at least 1s");
        }
        if self.revocation_ping_interval < Duration::from_millis(10) {
            return bad("AUTHREALM_REVOCATION_PING_INTERVAL must be at least 10ms");
        }
        if self.argon2_memory_kib < MIN_ARGON2_MEMORY_KIB {
            return bad("AUTHREALM_ARGON2_MEMORY_KIB must be at least 19456 (OWASP)");
        }
        if self.argon2_iterations < MIN_ARGON2_ITERATIONS {
            return bad("AUTHREALM_ARGON2_ITERATIONS must be at least 2 (OWASP)");
        }
        if !crate::forward_auth::is_header_prefix(&self.forward_auth_header_prefix) {
            return bad(
                "AUTHREALM_FORWARD_AUTH_HEADER_PREFIX must be 1 to 64 letters, digits or `-`",
            );
        }
        self.limits.validate().map_err(Error::Config)?;
        if self.max_body_bytes < 1024 {
            return bad("AUTHREALM_MAX_BODY_BYTES must be at least 1024");
        }
        if !self.session_cookie_secure && !self.listen.ip().is_loopback() {
            return bad(
                "AUTHREALM_SESSION_COOKIE_SECURE=false is only allowed when AUTHREALM_LISTEN is a loopback address",
            );
        }
        if self.session_ttl.as_secs() < 60 {
            return bad("AUTHREALM_SESSION_TTL must be at least 1m");
        }
        if let Some(k) = &self.session_cookie_key
            && k.expose().len() < MIN_SESSION_KEY_LEN
        {
            return bad("AUTHREALM_SESSION_COOKIE_KEY must have at least 32 characters");
        }
        match (&self.service_credential, &self.service_credential_file) {
            (Some(c), _) => Ok(c.clone()),
            (None, Some(path)) => ServiceCredential::from_file(path).map_err(Error::Credential),
            (None, None) => bad(
                "a service credential is required: set AUTHREALM_SERVICE_CREDENTIAL or AUTHREALM_SERVICE_CREDENTIAL_FILE",
            ),
        }
    }

    /// The configured session cookie key, from the flag or its file; `None`
    /// when neither is set (then the state makes a random one).
    ///
    /// # Errors
    /// [`Error::Credential`] for an unreadable file, [`Error::Config`] for a
    /// short key.
    pub fn session_key(&self) -> Result<Option<ServiceCredential>, Error> {
        let key = match (&self.session_cookie_key, &self.session_cookie_key_file) {
            (Some(k), _) => Some(k.clone()),
            (None, Some(path)) => {
                Some(ServiceCredential::from_file(path).map_err(Error::Credential)?)
            }
            (None, None) => None,
        };
        if key
            .as_ref()
            .is_some_and(|k| k.expose().len() < MIN_SESSION_KEY_LEN)
        {
            return Err(Error::Config(
                "the session cookie key (AUTHREALM_SESSION_COOKIE_KEY_FILE) must have at least 32 characters".into(),
            ));
        }
        Ok(key)
    }

    /// The JWKS URL to fetch.
    #[must_use]
    pub fn jwks_url(&self) -> String {
        self.jwks_url.clone().unwrap_or_else(|| {
            format!(
                "{}{}",
                self.auth_service_url.trim_end_matches('/'),
                authrealm_tokens::api::PATH_JWKS
            )
        })
    }

    /// Hashing slots: the configured number, or one per CPU core.
    #[must_use]
    pub fn hash_slots(&self) -> usize {
        if self.hash_concurrency > 0 {
            self.hash_concurrency
        } else {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn defaults_parse_and_match_local() -> Result<(), Box<dyn std::error::Error>> {
        let c = Config::try_parse_from([
            "main-project",
            "--service-credential",
            "0123456789abcdef-local",
        ])?;
        let l = Config::local();
        assert_eq!(c.listen, l.listen);
        assert_eq!(c.database_url, l.database_url);
        assert_eq!(c.issuer, l.issuer);
        assert_eq!(c.audience, l.audience);
        assert_eq!(c.revocation_policy, RevocationPolicy::FailClosed);
        assert_eq!(c.verify_mode, VerifyMode::Local);
        assert_eq!(c.login_failure_window, l.login_failure_window);
        assert_eq!(c.metrics_listen, SocketAddr::from(([127, 0, 0, 1], 9080)));
        assert_eq!(c.revocation_ping_interval, Duration::from_secs(5));
        c.validate()?;
        assert_eq!(c.jwks_url(), "http://127.0.0.1:8081/.well-known/jwks.json");
        Ok(())
    }

    #[test]
    fn bad_settings_are_named() -> Result<(), Box<dyn std::error::Error>> {
        let mut c = Config::local();
        let msg = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("AUTHREALM_SERVICE_CREDENTIAL"), "{msg}");
        c.service_credential = Some(ServiceCredential::new("0123456789abcdef-local")?);
        c.argon2_memory_kib = 1024;
        let msg = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("AUTHREALM_ARGON2_MEMORY_KIB"), "{msg}");
        c.argon2_memory_kib = MIN_ARGON2_MEMORY_KIB;
        c.database_url = "mysql://x".into();
        let msg = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("AUTHREALM_DATABASE_URL"), "{msg}");
        c.database_url = Config::local().database_url;
        c.forward_auth_header_prefix = "X-Auth:".into();
        let msg = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("AUTHREALM_FORWARD_AUTH_HEADER_PREFIX"),
            "{msg}"
        );
        assert!(Config::try_parse_from(["main-project", "--login-failure-window", "5x"]).is_err());
        assert!(Config::try_parse_from(["main-project", "--revocation-policy", "maybe"]).is_err());
        Ok(())
    }

    #[test]
    fn session_cookie_settings_are_checked() -> Result<(), Box<dyn std::error::Error>> {
        let mut c = Config::local();
        c.service_credential = Some(ServiceCredential::new("0123456789abcdef-local")?);
        assert!(c.session_cookie_secure, "Secure by default");
        c.session_cookie_secure = false;
        c.validate()?; // loopback listener: a local run
        c.listen = SocketAddr::from(([0, 0, 0, 0], 8080));
        let msg = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("AUTHREALM_SESSION_COOKIE_SECURE"), "{msg}");
        c.session_cookie_secure = true;
        c.session_cookie_key = Some(ServiceCredential::new("only-20-characters!!")?);
        let msg = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("AUTHREALM_SESSION_COOKIE_KEY"), "{msg}");
        assert!(!msg.contains("only-20"), "{msg}");
        Ok(())
    }

    #[test]
    fn debug_names_no_url_or_secret() -> Result<(), Box<dyn std::error::Error>> {
        let mut c = Config::local();
        c.database_url = "postgres://op:db-password-1@db:5432/op".into();
        c.redis_url = Some("redis://:redis-password-2@redis:6379".into());
        c.service_credential = Some(ServiceCredential::new("0123456789abcdef-secret-3")?);
        let text = format!("{c:?}");
        for secret in [
            "db-password-1",
            "redis-password-2",
            "secret-3",
            "postgres://",
            "redis://",
        ] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("Postgres"), "{text}");
        Ok(())
    }
}
