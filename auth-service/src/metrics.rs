//! Prometheus metrics of one auth-service instance, on its own registry (so
//! several instances can live in one test process). Label values that are
//! known up front are resolved once here, not on every request.

use std::sync::Mutex;

use authrealm_runtime::listener::{CloseReason, ConnectionStats};
use prometheus::core::Collector;
use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use authrealm_tokens::clients::GrantType;
use authrealm_tokens::oauth::ErrorCode;
use authrealm_tokens::revocation::RevocationKind;

/// Outcome of a refresh, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshResult {
    /// A new pair was issued.
    Rotated,
    /// A repeat within the grace window got the same pair.
    Repeat,
    /// A spent token was presented: the family was revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

/// An OAuth endpoint, as counted in `authrealm_ma_oauth_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthEndpoint {
    /// `POST /oauth2/revoke`.
    Revoke,
    /// `POST /oauth2/introspect`.
    Introspect,
    /// `POST /v1/oauth2/authorize` (OP validating a request).
    Authorize,
    /// `POST /v1/oauth2/codes`.
    Codes,
}

impl OAuthEndpoint {
    fn as_str(self) -> &'static str {
        match self {
            Self::Revoke => "revoke",
            Self::Introspect => "introspect",
            Self::Authorize => "authorize",
            Self::Codes => "codes",
        }
    }
}

/// The `outcome` label: `ok`, or the OAuth error code answered (a bounded set).
#[must_use]
pub fn outcome_label(outcome: Result<(), ErrorCode>) -> &'static str {
    outcome.map_or_else(ErrorCode::as_str, |()| "ok")
}

/// Every metric of the service.
pub struct Metrics {
    registry: Registry,
    /// `authrealm_ma_tokens_minted_total`.
    pub minted: IntCounter,
    refreshes: [IntCounter; 4],
    /// `authrealm_ma_refresh_reuse_detected_total`.
    pub reuse_detected: IntCounter,
    revocations: [IntCounter; 3],
    /// `authrealm_ma_jwks_requests_total`.
    pub jwks_requests: IntCounter,
    /// `authrealm_ma_key_reloads_total{result="ok"}`.
    pub key_reload_ok: IntCounter,
    /// `authrealm_ma_key_reloads_total{result="failed"}`.
    pub key_reload_failed: IntCounter,
    /// `authrealm_ma_active_key_age_seconds`, set at scrape time.
    pub active_key_age: IntGauge,
    /// `authrealm_ma_http_request_duration_seconds{route,status}`.
    pub request_duration: HistogramVec,
    /// `authrealm_ma_client_registry_reloads_total{result="ok"}`.
    pub client_reload_ok: IntCounter,
    /// `authrealm_ma_client_registry_reloads_total{result="failed"}`.
    pub client_reload_failed: IntCounter,
    /// `authrealm_ma_oauth_clients`, set at scrape time.
    pub oauth_clients: IntGauge,
    /// `authrealm_ma_oauth_codes_issued_total`.
    pub codes_issued: IntCounter,
    /// `authrealm_ma_oauth_code_reuse_detected_total`.
    pub code_reuse_detected: IntCounter,
    token_requests: IntCounterVec,
    oauth_requests: IntCounterVec,
    connections_open: IntGaugeVec,
    connections_closed: IntCounterVec,
    /// Serialises copying the listener counters (deltas must not be added twice).
    connections_sync: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Registers `metric` on `registry` and hands it back: each metric is
/// created and registered in one expression.
fn reg<M: Collector + Clone + 'static>(registry: &Registry, metric: M) -> prometheus::Result<M> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl Metrics {
    /// Creates and registers every metric on a fresh registry.
    ///
    /// # Errors
    /// Only on a programming error (duplicate or invalid metric names).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let minted = reg(
            &registry,
            IntCounter::new(
                "authrealm_ma_tokens_minted_total",
                "Access + refresh token pairs minted (new sessions).",
            )?,
        )?;
        let refreshes_vec = reg(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "authrealm_ma_refreshes_total",
                    "Refresh requests by result: rotated, repeat (same pair within the grace window), reused (family revoked), invalid.",
                ),
                &["result"],
            )?,
        )?;
        let reuse_detected = reg(
            &registry,
            IntCounter::new(
                "authrealm_ma_refresh_reuse_detected_total",
                "Spent refresh tokens presented again outside the grace window (each revoked a session).",
            )?,
        )?;
        let revocations_vec = reg(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "authrealm_ma_revocations_total",
                    "Revocations written and published, by kind: jti, session, user.",
                ),
                &["kind"],
            )?,
        )?;
        let jwks_requests = reg(
            &registry,
            IntCounter::new(
                "authrealm_ma_jwks_requests_total",
                "Requests for the JWKS document.",
            )?,
        )?;
        let reloads = reg(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "authrealm_ma_key_reloads_total",
                    "Key set reloads from the key directory, by result: ok, failed (previous set kept).",
                ),
                &["result"],
            )?,
        )?;
        let active_key_age = reg(
            &registry,
            IntGauge::new(
                "authrealm_ma_active_key_age_seconds",
                "Seconds since the active signing key was activated.",
            )?,
        )?;
        let request_duration = reg(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "authrealm_ma_http_request_duration_seconds",
                    "HTTP request duration by route and status.",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ]),
                &["route", "status"],
            )?,
        )?;
        let connections_open = reg(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "authrealm_ma_http_connections_open",
                    "Open HTTP connections by listener: public, internal, metrics.",
                ),
                &["listener"],
            )?,
        )?;
        let connections_closed = reg(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "authrealm_ma_http_connections_closed_total",
                    "Connections the server closed, by listener and reason: header_timeout, body_timeout (answered 408), idle_timeout.",
                ),
                &["listener", "reason"],
            )?,
        )?;
        let client_reloads = reg(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "authrealm_ma_client_registry_reloads_total",
                    "OAuth client registry loads and reloads, by result: ok, failed (previous registry kept).",
                ),
                &["result"],
            )?,
        )?;
        let oauth_clients = reg(
            &registry,
            IntGauge::new(
                "authrealm_ma_oauth_clients",
                "OAuth clients in the registry in use.",
            )?,
        )?;
        let codes_issued = reg(
            &registry,
            IntCounter::new(
                "authrealm_ma_oauth_codes_issued_total",
                "Authorization codes issued to OP after a login.",
            )?,
        )?;
        let code_reuse_detected = reg(
            &registry,
            IntCounter::new(
                "authrealm_ma_oauth_code_reuse_detected_total",
                "Authorization codes presented again after their exchange (each revoked the session the code created).",
            )?,
        )?;
        let token_requests = reg(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "authrealm_ma_oauth_token_requests_total",
                    "Token endpoint requests by grant_type (authorization_code, refresh_token, client_credentials, other) and outcome (ok or the OAuth error code).",
                ),
                &["grant_type", "outcome"],
            )?,
        )?;
        let oauth_requests = reg(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "authrealm_ma_oauth_requests_total",
                    "Other OAuth requests by endpoint (revoke, introspect, authorize, codes) and outcome (ok or the OAuth error code).",
                ),
                &["endpoint", "outcome"],
            )?,
        )?;
        let refreshes = ["rotated", "repeat", "reused", "invalid"]
            .map(|r| refreshes_vec.with_label_values(&[r]));
        let revocations = [
            RevocationKind::Jti,
            RevocationKind::Session,
            RevocationKind::User,
        ]
        .map(|k| revocations_vec.with_label_values(&[k.as_str()]));
        Ok(Self {
            registry,
            minted,
            refreshes,
            reuse_detected,
            revocations,
            jwks_requests,
            key_reload_ok: reloads.with_label_values(&["ok"]),
            key_reload_failed: reloads.with_label_values(&["failed"]),
            active_key_age,
            request_duration,
            client_reload_ok: client_reloads.with_label_values(&["ok"]),
            client_reload_failed: client_reloads.with_label_values(&["failed"]),
            oauth_clients,
            codes_issued,
            code_reuse_detected,
            token_requests,
            oauth_requests,
            connections_open,
            connections_closed,
            connections_sync: Mutex::new(()),
        })
    }

    /// Copies the listeners' connection counters into the metrics (at scrape time).
    pub fn record_connections(&self, listeners: [(&'static str, &ConnectionStats); 3]) {
        let _one_at_a_time = self
            .connections_sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, stats) in listeners {
            self.connections_open
                .with_label_values(&[name])
                .set(i64::try_from(stats.open()).unwrap_or(i64::MAX));
            for reason in CloseReason::ALL {
                let counter = self
                    .connections_closed
                    .with_label_values(&[name, reason.as_str()]);
                let total = stats.closed(reason);
                counter.inc_by(total.saturating_sub(counter.get()));
            }
        }
    }

    /// Counts a refresh outcome.
    pub fn refresh(&self, result: RefreshResult) {
        let i = match result {
            RefreshResult::Rotated => 0,
            RefreshResult::Repeat => 1,
            RefreshResult::Reused => 2,
            RefreshResult::Invalid => 3,
        };
        self.refreshes[i].inc();
    }

    /// Counts a token endpoint request. `grant` is the `grant_type` when it
    /// is one of the three known ones (anything else counts as `other`).
    pub fn token_request(&self, grant: Option<GrantType>, outcome: Result<(), ErrorCode>) {
        let grant = grant.map_or("other", GrantType::as_str);
        self.token_requests
            .with_label_values(&[grant, outcome_label(outcome)])
            .inc();
    }

    /// Counts a request of another OAuth endpoint.
    pub fn oauth_request(&self, endpoint: OAuthEndpoint, outcome: Result<(), ErrorCode>) {
        self.oauth_requests
            .with_label_values(&[endpoint.as_str(), outcome_label(outcome)])
            .inc();
    }

    /// Counts `n` revocations of `kind`.
    pub fn revoked(&self, kind: RevocationKind, n: u64) {
        let i = match kind {
            RevocationKind::Jti => 0,
            RevocationKind::Session => 1,
            RevocationKind::User => 2,
        };
        self.revocations[i].inc_by(n);
    }

    /// The histogram child for one route and status.
    #[must_use]
    pub fn duration(&self, route: &str, status: &str) -> Histogram {
        self.request_duration.with_label_values(&[route, status])
    }

    /// The text exposition of every metric.
    #[must_use]
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
