//! AuthRealm's authentication microservice (MA): signs access JWTs with the
//! active key of a reloadable key set, publishes the JWKS and an OpenID
//! discovery document, rotates refresh tokens with reuse detection, and keeps
//! the revocation list (Redis, or memory for a local run).
//!
//! Embed it with [`serve`] (or [`serve_with_clock`] in tests); the
//! `auth-service` binary is a thin `main` around the same call.

pub mod config;
pub mod error;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod refresh;
pub mod revocation;
pub mod service;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use authrealm_tokens::VerifierConfig;
use axum::http::HeaderValue;

pub use authrealm_tokens::Clock;
pub use config::{Config, LogFormat};
pub use error::Error;

use crate::http::App;
use crate::keys::{KeyRing, KeySnapshot};
use crate::metrics::Metrics;
use crate::service::{AuthService, Settings};
use crate::store::Store;

/// Serves the auth-service on `listener` until `shutdown` completes.
///
/// # Errors
/// A clear [`Error`] for invalid settings or an unusable key set at start,
/// or when the server fails.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    serve_with_clock(config, Clock::System, listener, shutdown).await
}

/// [`serve`] with an explicit clock (tests move a manual clock to cross
/// expiry and grace windows without sleeping).
///
/// # Errors
/// As [`serve`].
pub async fn serve_with_clock(
    config: Config,
    clock: Clock,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (app, watcher) = build(&config, clock)?;
    let addr = listener.local_addr().map_err(Error::Io)?;
    tracing::info!(%addr, issuer = %app.service.settings.issuer, "auth-service listening");
    let result =
        authrealm_runtime::listener::serve(listener, http::router(app), config.limits, shutdown)
            .await
            .map_err(Error::Io);
    if let Some(w) = watcher {
        w.abort();
    }
    result
}

/// Builds the shared state from `config` and starts the key watcher (when a
/// key directory is configured). Needs a Tokio runtime.
///
/// # Errors
/// Invalid settings, a missing credential, or an unusable key set.
pub fn build(
    config: &Config,
    clock: Clock,
) -> Result<(Arc<App>, Option<tokio::task::JoinHandle<()>>), Error> {
    let credential = config.validate()?;
    let settings = Settings::from_config(config);
    let verify = VerifierConfig {
        issuer: settings.issuer.clone(),
        audience: settings.audience.clone(),
        leeway_secs: 0,
    };
    let metrics =
        Arc::new(Metrics::new().map_err(|e| Error::Config(format!("metrics registry: {e}")))?);
    let snapshot = match &config.keys_dir {
        Some(dir) => {
            let s = keys::load_dir(dir, verify.clone())?;
            tracing::info!(dir = %dir.display(), active_kid = %s.active().kid(), "key set loaded");
            s
        }
        None => {
            let s = KeySnapshot::ephemeral(config.ephemeral_key_alg, clock.now(), verify.clone())
                .map_err(Error::KeySet)?;
            tracing::warn!(kid = %s.active().kid(), alg = s.active().alg().as_str(),
                "no AUTHREALM_KEYS_DIR: signing with an ephemeral key generated at start; \
                 its tokens stop verifying when this process ends");
            s
        }
    };
    let ring = Arc::new(KeyRing::new(snapshot));
    let store = match &config.redis_url {
        Some(url) => Store::Redis(store::redis::RedisStore::connect(
            url,
            &config.redis_prefix,
        )?),
        None => {
            tracing::warn!(
                "no AUTHREALM_REDIS_URL: refresh families and revocations are kept in memory \
                 (one process only, lost on restart)"
            );
            Store::Memory(store::memory::MemoryStore::new())
        }
    };
    let watcher = config.keys_dir.clone().map(|dir| {
        tokio::spawn(keys::watch_dir(
            ring.clone(),
            dir,
            config.keys_poll_interval,
            verify,
            metrics.clone(),
        ))
    });
    let jwks_cache_control = HeaderValue::from_str(&format!(
        "public, max-age={}",
        config.jwks_max_age.as_secs()
    ))
    .map_err(|_| Error::Config("AUTHREALM_JWKS_MAX_AGE".into()))?;
    let app = Arc::new(App {
        service: AuthService {
            keys: ring,
            store,
            clock,
            metrics,
            settings,
        },
        credential,
        jwks_cache_control,
        max_body_bytes: config.max_body_bytes,
    });
    Ok((app, watcher))
}
