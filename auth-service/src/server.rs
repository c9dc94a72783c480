//! How the auth-service is assembled and served: [`build`] makes the shared
//! state from a configuration; [`serve_listeners`] serves the public, the
//! internal and the operations routes on three listeners (the binary);
//! [`serve`] serves every route on one listener (embedding and tests).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use authrealm_runtime::listener::{ConnectionStats, Server};
use authrealm_tokens::VerifierConfig;
use axum::Router;
use axum::http::HeaderValue;
use tokio::net::TcpListener;

use crate::clients::{self, ClientRing};
use crate::config::Config;
use crate::error::Error;
use crate::http::{self, App, ListenerStats};
use crate::keys::{self, KeyRing, KeySnapshot};
use crate::metrics::Metrics;
use crate::service::{AuthService, Settings};
use crate::store::{self, Store};
use authrealm_tokens::Clock;

/// The three sockets of a deployed auth-service.
#[derive(Debug)]
pub struct Listeners {
    /// Public: JWKS and discovery (`AUTHREALM_LISTEN`).
    pub public: TcpListener,
    /// Internal API `/v1/...` behind the service credential, which only OP
    /// may reach (`AUTHREALM_INTERNAL_LISTEN`).
    pub internal: TcpListener,
    /// `/metrics`, `/healthz`, `/readyz` (`AUTHREALM_METRICS_LISTEN`).
    pub metrics: TcpListener,
}

impl Listeners {
    /// Binds the three addresses of `config`.
    ///
    /// # Errors
    /// [`Error::Bind`] naming the setting whose address could not be bound.
    pub async fn bind(config: &Config) -> Result<Self, Error> {
        use authrealm_runtime::env;
        let bind = |addr: SocketAddr, setting: &'static str| async move {
            TcpListener::bind(addr).await.map_err(|source| Error::Bind {
                setting,
                addr,
                source,
            })
        };
        Ok(Self {
            public: bind(config.listen, env::LISTEN).await?,
            internal: bind(config.internal_listen, env::ma::INTERNAL_LISTEN).await?,
            metrics: bind(config.metrics_listen, env::METRICS_LISTEN).await?,
        })
    }
}

/// Serves every route (public, internal and operations) on one listener
/// until `shutdown` completes: the form for embedding (the local runner)
/// and for tests. A deployment uses [`serve_listeners`].
///
/// # Errors
/// A clear [`Error`] for invalid settings or an unusable key set at start,
/// or when the server fails.
pub async fn serve(
    config: Config,
    listener: TcpListener,
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
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (app, watcher) = build(&config, clock)?;
    let addr = listener.local_addr().map_err(Error::Io)?;
    tracing::info!(%addr, issuer = %app.service.settings.issuer,
        "auth-service listening (public, internal and operations routes on one listener)");
    let stats = app.connections.public.clone();
    let shutdown = announce(app.clone(), shutdown);
    let result = run(listener, stats, http::router(app), &config, shutdown).await;
    watcher.abort_on_end();
    result
}

/// Serves the public, internal and operations routes each on its own
/// listener until `shutdown` completes: what the `auth-service` binary does.
///
/// # Errors
/// As [`serve`].
pub async fn serve_listeners(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    serve_listeners_with_clock(config, Clock::System, listeners, shutdown).await
}

/// [`serve_listeners`] with an explicit clock.
///
/// # Errors
/// As [`serve`].
pub async fn serve_listeners_with_clock(
    config: Config,
    clock: Clock,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (app, watcher) = build(&config, clock)?;
    let addr = |l: &TcpListener| l.local_addr().map_err(Error::Io);
    tracing::info!(
        public = %addr(&listeners.public)?,
        internal = %addr(&listeners.internal)?,
        metrics = %addr(&listeners.metrics)?,
        issuer = %app.service.settings.issuer,
        "auth-service listening"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let c = app.connections.clone();
    let servers = async {
        tokio::join!(
            run(
                listeners.public,
                c.public,
                http::public_router(app.clone()),
                &config,
                stopped()
            ),
            run(
                listeners.internal,
                c.internal,
                http::internal_router(app.clone()),
                &config,
                stopped()
            ),
            run(
                listeners.metrics,
                c.metrics,
                http::operations_router(app.clone()),
                &config,
                stopped()
            ),
        )
    };
    let shutdown = announce(app.clone(), shutdown);
    let stop = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let ((public, internal, metrics), ()) = tokio::join!(servers, stop);
    watcher.abort_on_end();
    public.and(internal).and(metrics)
}

/// `shutdown`, then tell long-lived answers (the revocation feed) to end.
async fn announce(app: Arc<App>, shutdown: impl Future<Output = ()> + Send) {
    shutdown.await;
    app.stopping.send_replace(true);
}

async fn run(
    listener: TcpListener,
    stats: Arc<ConnectionStats>,
    router: Router,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    Server::new(listener, config.limits)
        .with_stats(stats)
        .serve(router, shutdown)
        .await
        .map_err(Error::Io)
}

/// The key and client registry watcher tasks, stopped when the server ends.
#[derive(Debug)]
pub struct Watcher(Vec<tokio::task::JoinHandle<()>>);

impl Watcher {
    fn abort_on_end(self) {
        for w in self.0 {
            w.abort();
        }
    }
}

/// Builds the shared state from `config` and starts the key and client
/// registry watchers (for the directories configured; a Tokio runtime is
/// needed only then).
///
/// # Errors
/// Invalid settings, a missing credential, or an unusable key set.
pub fn build(config: &Config, clock: Clock) -> Result<(Arc<App>, Watcher), Error> {
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
            url.expose(),
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
    let registry = match &config.clients_dir {
        Some(dir) => clients::load_dir(dir, &metrics),
        None => clients::empty(),
    };
    let client_ring = Arc::new(ClientRing::new(registry));
    let mut watchers = Vec::new();
    if let Some(dir) = config.keys_dir.clone() {
        watchers.push(tokio::spawn(keys::watch_dir(
            ring.clone(),
            dir,
            config.keys_poll_interval,
            verify,
            metrics.clone(),
        )));
    }
    if let Some(dir) = config.clients_dir.clone() {
        watchers.push(tokio::spawn(clients::watch_dir(
            client_ring.clone(),
            dir,
            config.clients_poll_interval,
            metrics.clone(),
        )));
    }
    let jwks_cache_control = HeaderValue::from_str(&format!(
        "public, max-age={}",
        config.jwks_max_age.as_secs()
    ))
    .map_err(|_| Error::Config("AUTHREALM_JWKS_MAX_AGE".into()))?;
    let app = Arc::new(App {
        service: AuthService {
            keys: ring,
            clients: client_ring,
            store,
            clock,
            metrics,
            settings,
        },
        credential,
        jwks_cache_control,
        max_body_bytes: config.max_body_bytes,
        connections: ListenerStats::default(),
        stopping: tokio::sync::watch::channel(false).0,
    });
    Ok((app, Watcher(watchers)))
}
