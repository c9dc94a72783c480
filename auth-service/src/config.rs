//! Configuration of the auth-service: flags and `AUTHREALM_*` environment
//! variables (clap), the embedded defaults of a local run, and the checks
//! that turn a bad setting into a clear error at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use authrealm_tokens::{ServiceCredential, SigningAlgorithm};

pub use authrealm_runtime::LogFormat;
use authrealm_runtime::options::Secret;
use authrealm_runtime::{Limits, env, options};

use crate::error::Error;

/// Every setting of the auth-service. Flags are the lower-kebab names of the
/// environment variables without the `AUTHREALM_` prefix.
///
/// `Debug` is derived: the Redis URL is a [`Secret`] and the credential a
/// `ServiceCredential`, neither of which prints its value.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "auth-service", version, about = "AuthRealm auth-service (MA)")]
pub struct Config {
    /// Address of the public endpoints (JWKS, discovery).
    #[arg(long, env = env::LISTEN, default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,

    /// Address of the internal API (`/v1/...`, service credential), which
    /// only OP may reach.
    #[arg(long, env = env::ma::INTERNAL_LISTEN, default_value = "127.0.0.1:8083")]
    pub internal_listen: SocketAddr,

    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = env::METRICS_LISTEN, default_value = "127.0.0.1:9081")]
    pub metrics_listen: SocketAddr,

    /// `iss` of every token and base of the discovery document's `jwks_uri`
    /// (MA's public base URL).
    #[arg(
        long,
        env = env::ISSUER,
        default_value = "http://127.0.0.1:8081"
    )]
    pub issuer: String,

    /// `aud` of every token.
    #[arg(long, env = env::AUDIENCE, default_value = "authrealm")]
    pub audience: String,

    /// Access token lifetime (e.g. `5m`).
    #[arg(long, env = env::ma::ACCESS_TTL, default_value = "5m", value_parser = options::duration)]
    pub access_ttl: Duration,

    /// Refresh token lifetime; every rotation issues a token with this life.
    #[arg(long, env = env::ma::REFRESH_TTL, default_value = "30d", value_parser = options::duration)]
    pub refresh_ttl: Duration,

    /// Window in which a repeat of the same refresh gets the same successor pair.
    #[arg(long, env = env::ma::REFRESH_GRACE, default_value = "10s", value_parser = options::duration)]
    pub refresh_grace: Duration,

    /// `Cache-Control: max-age` of the JWKS.
    #[arg(long, env = env::ma::JWKS_MAX_AGE, default_value = "5m", value_parser = options::duration)]
    pub jwks_max_age: Duration,

    /// Directory holding `keyset.json` (a mounted Secret). Unset: an ephemeral
    /// key is generated at start.
    #[arg(long, env = env::ma::KEYS_DIR)]
    pub keys_dir: Option<PathBuf>,

    /// How often the key directory is checked for a changed key set.
    #[arg(long, env = env::ma::KEYS_POLL_INTERVAL, default_value = "1s", value_parser = options::duration)]
    pub keys_poll_interval: Duration,

    /// Algorithm of the ephemeral key generated when no key directory is set.
    #[arg(long, env = env::ma::EPHEMERAL_KEY_ALG, default_value = "EdDSA")]
    pub ephemeral_key_alg: SigningAlgorithm,

    /// Directory holding `clients.json`, the OAuth client registry (a
    /// mounted Secret). Unset, or no file in it: no OAuth clients.
    #[arg(long, env = env::ma::CLIENTS_DIR)]
    pub clients_dir: Option<PathBuf>,

    /// How often the clients directory is checked for a changed registry.
    #[arg(long, env = env::ma::CLIENTS_POLL_INTERVAL, default_value = "1s", value_parser = options::duration)]
    pub clients_poll_interval: Duration,

    /// OP's public base URL (`https://login.example.com`): discovery
    /// publishes `authorization_endpoint`, `userinfo_endpoint` and
    /// `end_session_endpoint` under it. Unset: a deployment without the
    /// code flow, and discovery says so.
    #[arg(long, env = env::ma::OP_PUBLIC_URL)]
    pub op_public_url: Option<String>,

    /// The bearer secret OP presents on `/v1/...` (at least 16 characters).
    #[arg(long, env = env::SERVICE_CREDENTIAL, value_parser = options::credential, hide_env_values = true)]
    pub service_credential: Option<ServiceCredential>,

    /// File holding the service credential (a mounted Secret key); used when
    /// `--service-credential` is not given.
    #[arg(long, env = env::SERVICE_CREDENTIAL_FILE)]
    pub service_credential_file: Option<PathBuf>,

    /// Redis URL (`redis://host:port/db`). Unset: an in-memory store (one
    /// process only, lost on restart).
    #[arg(long, env = env::REDIS_URL, hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// Prefix of every Redis key and of the revocation channel.
    #[arg(long, env = env::REDIS_PREFIX, default_value = authrealm_tokens::revocation::DEFAULT_PREFIX)]
    pub redis_prefix: String,

    /// Clock skew verifiers may allow past `exp`: revocation entries (jti,
    /// session, not-before) are kept this much longer than the tokens they
    /// reject. Must be at least OP's `AUTHREALM_CLOCK_LEEWAY`.
    #[arg(long, env = env::ma::CLOCK_SKEW, default_value = "60s", value_parser = options::duration)]
    pub clock_skew: Duration,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = env::MAX_BODY_BYTES, default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,

    /// Log line format.
    #[arg(long, env = env::LOG_FORMAT, value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Header, body and idle timeouts, connection cap and shutdown time of
    /// every listener.
    #[command(flatten)]
    pub limits: Limits,
}

impl Config {
    /// The embedded defaults of a local run: every flag's default (the
    /// environment ignored) and a freshly generated service credential (read
    /// it from [`Config::service_credential`]). With no Redis URL and no key
    /// directory that is the in-memory store and an ephemeral Ed25519 key.
    ///
    /// # Errors
    /// [`Error::Config`] if a default does not parse (a test shows they do),
    /// [`Error::Random`] if no credential can be generated.
    pub fn local() -> Result<Self, Error> {
        let mut config: Self = options::parser_defaults()
            .map_err(|e| Error::Config(format!("built-in defaults: {e}")))?;
        config.service_credential = Some(ServiceCredential::generate().map_err(|_| Error::Random)?);
        Ok(config)
    }

    /// How long session and not-before revocations must be kept: the longest
    /// access token life plus clock skew (every token they reject has expired
    /// by then).
    #[must_use]
    pub fn revocation_ttl_secs(&self) -> u64 {
        self.access_ttl
            .as_secs()
            .saturating_add(self.clock_skew.as_secs())
    }

    /// Checks the settings and resolves the service credential.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting, or [`Error::Credential`].
    pub fn validate(&self) -> Result<ServiceCredential, Error> {
        let bad = |msg: &str| Err(Error::Config(msg.to_owned()));
        if self.access_ttl.as_secs() == 0 {
            return bad("AUTHREALM_ACCESS_TTL must be at least 1s");
        }
        if self.refresh_ttl < self.access_ttl {
            return bad("AUTHREALM_REFRESH_TTL must not be shorter than AUTHREALM_ACCESS_TTL");
        }
        if self.refresh_grace >= self.refresh_ttl {
            return bad("AUTHREALM_REFRESH_GRACE must be shorter than AUTHREALM_REFRESH_TTL");
        }
        if self.keys_poll_interval.is_zero() {
            return bad("AUTHREALM_KEYS_POLL_INTERVAL must be at least 1s");
        }
        if self.clients_poll_interval.is_zero() {
            return bad("AUTHREALM_CLIENTS_POLL_INTERVAL must be at least 1s");
        }
        if let Some(url) = &self.op_public_url
            && !options::is_base_url(url)
        {
            return bad(
                "AUTHREALM_OP_PUBLIC_URL must be an http:// or https:// URL without query or fragment",
            );
        }
        if !(self.issuer.starts_with("http://") || self.issuer.starts_with("https://")) {
            return bad("AUTHREALM_ISSUER must be an http:// or https:// URL");
        }
        if self.audience.is_empty() {
            return bad("AUTHREALM_AUDIENCE must not be empty");
        }
        if self.redis_prefix.is_empty() {
            return bad("AUTHREALM_REDIS_PREFIX must not be empty");
        }
        if self.max_body_bytes < 256 {
            return bad("AUTHREALM_MAX_BODY_BYTES must be at least 256");
        }
        self.limits.validate().map_err(Error::Config)?;
        let addrs = [
            (self.listen, env::LISTEN),
            (self.internal_listen, env::ma::INTERNAL_LISTEN),
            (self.metrics_listen, env::METRICS_LISTEN),
        ];
        for (i, (a, name)) in addrs.iter().enumerate() {
            if let Some((_, other)) = addrs[i + 1..].iter().find(|(b, _)| a.port() != 0 && a == b) {
                return Err(Error::Config(format!(
                    "{name} and {other} must differ: the internal API and metrics must not share the public port"
                )));
            }
        }
        if let Some(url) = &self.redis_url {
            redis::Client::open(url.expose()).map_err(|_| {
                Error::Config(
                    "AUTHREALM_REDIS_URL is not a valid Redis URL (redis://host:port/db)"
                        .to_owned(),
                )
            })?;
        }
        match (&self.service_credential, &self.service_credential_file) {
            (Some(c), _) => Ok(c.clone()),
            (None, Some(path)) => ServiceCredential::from_file(path).map_err(Error::Credential),
            (None, None) => bad(
                "a service credential is required: set AUTHREALM_SERVICE_CREDENTIAL or AUTHREALM_SERVICE_CREDENTIAL_FILE",
            ),
        }
    }

    /// The issuer without a trailing slash, as put in tokens.
    #[must_use]
    pub fn issuer_trimmed(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn local_defaults_are_the_flag_defaults_and_valid() -> Result<(), Error> {
        let local = Config::local()?;
        local.validate()?;
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        assert_eq!(local.listen, loopback(env::ports::MA_PUBLIC));
        assert_eq!(local.internal_listen, loopback(env::ports::MA_INTERNAL));
        assert_eq!(local.metrics_listen, loopback(env::ports::MA_METRICS));
        assert_eq!(local.access_ttl, Duration::from_secs(300));
        assert_eq!(local.refresh_ttl, Duration::from_secs(30 * 86_400));
        assert!(local.redis_url.is_none() && local.keys_dir.is_none());
        assert!(local.service_credential.is_some());
        assert_eq!(
            local.limits,
            Limits::defaults().map_err(|e| Error::Config(e.to_string()))?
        );
        Ok(())
    }

    #[test]
    fn flags_parse_and_bad_values_are_named() -> Result<(), Error> {
        let ok = Config::try_parse_from([
            "auth-service",
            "--access-ttl",
            "90s",
            "--service-credential",
            "0123456789abcdef",
        ]);
        assert!(ok.is_ok_and(|c| c.access_ttl == Duration::from_secs(90)));
        let bad = Config::try_parse_from(["auth-service", "--access-ttl", "5 minutes"]);
        assert!(
            bad.err()
                .is_some_and(|e| e.to_string().contains("invalid duration"))
        );
        let missing = Config {
            service_credential: None,
            ..Config::local()?
        };
        assert!(
            missing
                .validate()
                .err()
                .is_some_and(|e| e.to_string().contains("AUTHREALM_SERVICE_CREDENTIAL"))
        );
        let with_secrets = Config {
            redis_url: Some("redis://:hunter2hunter2@redis:6379".into()),
            ..Config::local()?
        };
        let shown = format!("{with_secrets:?}");
        assert!(!shown.contains("hunter2") && shown.contains("<set>"));
        if let Some(c) = &with_secrets.service_credential {
            assert!(!shown.contains(c.expose()));
        }
        let shared = Config {
            internal_listen: Config::local()?.listen,
            ..Config::local()?
        };
        assert!(
            shared
                .validate()
                .err()
                .is_some_and(|e| e.to_string().contains("AUTHREALM_INTERNAL_LISTEN"))
        );
        for bad_url in [
            "login.example.com",
            "https://",
            "https://a.example/?x=1",
            "ftp://a",
        ] {
            let c = Config {
                op_public_url: Some(bad_url.into()),
                ..Config::local()?
            };
            assert!(
                c.validate()
                    .err()
                    .is_some_and(|e| e.to_string().contains("AUTHREALM_OP_PUBLIC_URL")),
                "{bad_url}"
            );
        }
        let op = Config {
            op_public_url: Some("https://login.example.com/base".into()),
            ..Config::local()?
        };
        assert!(op.validate().is_ok());
        let short_refresh = Config {
            refresh_ttl: Duration::from_secs(10),
            ..Config::local()?
        };
        assert!(
            short_refresh
                .validate()
                .err()
                .is_some_and(|e| e.to_string().contains("AUTHREALM_REFRESH_TTL"))
        );
        Ok(())
    }
}
