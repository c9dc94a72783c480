//! AuthRealm's main project (OP): users in Postgres or SQLite, login with
//! argon2id on a bounded pool, tokens minted by the auth-service (MA) over
//! HTTP, and a protected API whose JWT check uses MA's JWKS and a local view
//! of the revocation list kept current from Redis.
//!
//! Entry points: [`Config`] (flags and environment), [`serve`] (run on a
//! listener until a shutdown future resolves) and [`app`] (the router).

pub mod auth;
pub mod auth_client;
pub mod config;
pub mod db;
pub mod error;
pub mod keys;
pub mod limiter;
pub mod metrics;
pub mod notes;
pub mod openapi;
pub mod password;
pub mod revocation;
pub mod users;

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use authrealm_tokens::VerifierConfig;
use authrealm_tokens::revocation::RevocationKeys;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use config::{Config, LogFormat, RevocationPolicy, VerifyMode};
pub use error::{ApiError, Error};

use crate::auth_client::AuthClient;
use crate::db::Database;
use crate::error::codes;
use crate::keys::KeyStore;
use crate::limiter::{LoginLimiter, RedisLink};
use crate::metrics::Metrics;
use crate::password::PasswordHasher;
use crate::revocation::RevocationView;

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
}

/// Background work of one instance (aborted when dropped).
#[derive(Debug, Default)]
pub struct Background {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Builds the state from a validated configuration and starts its background
/// tasks (migrations with retry, JWKS upkeep, the Redis revocation listener,
/// purging of expired revocations). Must run inside a Tokio runtime.
///
/// # Errors
/// [`Error::Config`] and friends for settings that cannot work.
pub async fn build(config: &Config) -> Result<(Arc<AppState>, Background), Error> {
    let credential = config.validate()?;
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
    ));
    let revocations = Arc::new(RevocationView::new(redis_client.is_none(), metrics.clone()));

    let mut bg = Background::default();
    {
        let db = db.clone();
        bg.tasks.push(tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                match db.migrate().await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "database not ready; retrying migrations");
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }));
    }
    bg.tasks.push(tokio::spawn(
        keys.clone().maintain(config.jwks_refresh_interval),
    ));
    if let Some(client) = redis_client.clone() {
        bg.tasks.push(tokio::spawn(revocation::follow_redis(
            client,
            RevocationKeys::new(&config.redis_prefix),
            revocations.clone(),
        )));
    }
    {
        let view = revocations.clone();
        bg.tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                view.purge(authrealm_tokens::unix_now());
            }
        }));
    }
    let state = Arc::new(AppState {
        db,
        hasher,
        limiter,
        ma,
        keys,
        revocations,
        metrics,
        revocation_policy: config.revocation_policy,
        verify_mode: config.verify_mode,
        redis_enabled: redis_client.is_some(),
        trust_forwarded_for: config.trust_forwarded_for,
        leeway_secs,
        max_body_bytes: config.max_body_bytes,
    });
    Ok((state, bg))
}

/// The router of OP over a built state.
pub fn app(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/register", post(users::register))
        .route("/login", post(users::login))
        .route("/token/refresh", post(users::refresh))
        .route("/logout", post(users::logout))
        .route("/logout-all", post(users::logout_all))
        .route("/me", get(users::me))
        .route("/session", get(users::session))
        .route("/notes", get(notes::list).post(notes::create))
        .route(
            "/notes/{id}",
            get(notes::get).put(notes::update).delete(notes::delete),
        )
        .route("/openapi.json", get(openapi_json));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .with_state(state)
}

/// Runs OP on `listener` until `shutdown` resolves.
///
/// # Errors
/// Settings that cannot work, or a failing listener.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (state, background) = build(&config).await?;
    let addr = listener.local_addr().map_err(Error::Io)?;
    tracing::info!(%addr, backend = ?state.db.backend(), redis = state.redis_enabled, verify_mode = ?state.verify_mode, "main-project listening");
    let router = app(state.clone());
    let result = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(Error::Io);
    drop(background);
    state.db.close().await;
    result
}

async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    state
        .metrics
        .http_duration
        .with_label_values(&[method.as_str(), route.as_str(), resp.status().as_str()])
        .observe(start.elapsed().as_secs_f64());
    resp
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        "this method is not allowed on this path",
    )
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let database = state.db.is_migrated()
        && tokio::time::timeout(Duration::from_secs(2), state.db.ping())
            .await
            .is_ok_and(|r| r.is_ok());
    let keys = state.keys.is_loaded();
    let revocation = state.verify_mode == VerifyMode::Introspect
        || state.revocation_policy == RevocationPolicy::FailOpen
        || state.revocations.is_known();
    let ready = database && keys && revocation;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "ready": ready,
        "checks": { "database": database, "keys": keys, "revocation": revocation },
    });
    (status, axum::Json(body)).into_response()
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

static OPENAPI: LazyLock<String> = LazyLock::new(|| openapi::document().to_string());

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.as_str(),
    )
        .into_response()
}
