//! Prometheus metrics of one OP instance, on its own registry (several
//! instances can live in one process, as in the tests).

use prometheus::core::Collector;
use prometheus::{
    Encoder as _, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::error::Error;

/// Every metric OP exports.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// `authrealm_op_registrations_total{result}`: created, email_taken, invalid, busy, unavailable.
    pub registrations: IntCounterVec,
    /// `authrealm_op_logins_total{result}`: ok, invalid_credentials, locked, busy, disabled, unavailable.
    pub logins: IntCounterVec,
    /// `authrealm_op_login_lockouts_total{scope}`: account, ip.
    pub lockouts: IntCounterVec,
    /// `authrealm_op_token_verifications_total{result}`: ok, expired, revoked, bad_signature, unknown_kid, malformed, ...
    pub verifications: IntCounterVec,
    /// Pre-resolved `result="ok"` child (the hot path).
    pub verify_ok: IntCounter,
    /// `authrealm_op_token_cache_hits_total`: verifications answered from the verified-token cache.
    pub token_cache_hits: IntCounter,
    /// `authrealm_op_jwks_refreshes_total{reason,result}`: reason start|periodic|unknown_kid.
    pub jwks_refreshes: IntCounterVec,
    /// `authrealm_op_jwks_keys`: usable keys in the current JWKS.
    pub jwks_keys: IntGauge,
    /// `authrealm_op_revocation_events_total{kind}`: events received on the Redis channel.
    pub revocation_events: IntCounterVec,
    /// `authrealm_op_revocation_resyncs_total`: full SCANs of the revocation list.
    pub revocation_resyncs: IntCounter,
    /// `authrealm_op_revocation_pings_total`: keep-alive pings Redis answered.
    pub revocation_pings: IntCounter,
    /// `authrealm_op_revocation_state_known`: 1 while the local view is known to be current.
    pub revocation_known: IntGauge,
    /// `authrealm_op_revocation_entries{kind}`: entries in the local revocation view.
    pub revocation_entries: IntGaugeVec,
    /// `authrealm_op_revocation_last_resync_seconds`: how long the last full
    /// load from Redis took (scan, and the heal when there was one).
    pub revocation_last_resync_seconds: Gauge,
    /// `authrealm_op_revocation_log_reloads_total`: reloads read from the
    /// revocation log alone (the others scanned the keys).
    pub revocation_log_reloads: IntCounter,
    /// `authrealm_op_revocation_checks_total`: key scans finished after a
    /// reload from the log.
    pub revocation_checks: IntCounter,
    /// `authrealm_op_revocation_unlogged_entries_total`: entries such a scan
    /// found that the log lacked.
    pub revocation_unlogged: IntCounter,
    /// `authrealm_op_revocation_last_check_seconds`: how long the last such
    /// scan took.
    pub revocation_last_check_seconds: Gauge,
    /// `authrealm_op_revocation_data_losses_total`: times Redis was found to
    /// have lost the revocation list (generation marker gone or replaced).
    pub revocation_data_losses: IntCounter,
    /// `authrealm_op_revocation_healed_entries_total`: entries written back to Redis.
    pub revocation_healed: IntCounter,
    /// `authrealm_op_revocation_fail_open_total`: tokens accepted while the state was unknown.
    pub revocation_fail_open: IntCounter,
    /// `authrealm_op_argon2_queue_depth`: requests waiting for a hashing slot.
    pub hash_queue_depth: IntGauge,
    /// `authrealm_op_argon2_in_flight`: hashes running now.
    pub hash_in_flight: IntGauge,
    /// `authrealm_op_argon2_rejected_total`: requests refused with 503 busy.
    pub hash_rejected: IntCounter,
    /// `authrealm_op_limiter_backend_errors_total`: Redis failures of the login limiter
    /// (the in-memory limiter answered instead).
    pub limiter_backend_errors: IntCounter,
    /// `authrealm_op_auth_service_requests_total{endpoint,result}`.
    pub ma_requests: IntCounterVec,
    /// `authrealm_op_http_request_duration_seconds{method,route,status}`.
    pub http_duration: HistogramVec,
    /// `authrealm_op_forward_auth_total{result}`: allowed, unauthenticated,
    /// forbidden, bad_request, unavailable, error.
    pub forward_auth: IntCounterVec,
    /// Pre-resolved `result="allowed"` child (the hot path).
    pub forward_auth_allowed: IntCounter,
}

/// Registers a freshly made metric on `registry` and hands it back.
fn register<C: Collector + Clone + 'static>(
    registry: &Registry,
    made: Result<C, prometheus::Error>,
) -> Result<C, Error> {
    let metric = made.map_err(Error::Metrics)?;
    registry
        .register(Box::new(metric.clone()))
        .map_err(Error::Metrics)?;
    Ok(metric)
}

impl Metrics {
    /// Creates and registers every metric on a fresh registry.
    ///
    /// # Errors
    /// [`Error::Metrics`] (only on a programming error: duplicate names).
    pub fn new() -> Result<Self, Error> {
        let registry = Registry::new();
        let r = &registry;
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(r, IntCounterVec::new(Opts::new(name, help), labels))
        };
        let counter = |name: &str, help: &str| register(r, IntCounter::new(name, help));
        let gauge = |name: &str, help: &str| register(r, IntGauge::new(name, help));
        let verifications = counter_vec(
            "authrealm_op_token_verifications_total",
            "Access token verifications by result.",
            &["result"],
        )?;
        let forward_auth = counter_vec(
            "authrealm_op_forward_auth_total",
            "Answers of the forward-auth endpoint (/auth/verify) by result.",
            &["result"],
        )?;
        let http_duration = register(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "authrealm_op_http_request_duration_seconds",
                    "HTTP request durations by route and status.",
                )
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5, 5.0,
                ]),
                &["method", "route", "status"],
            ),
        )?;
        Ok(Self {
            registrations: counter_vec(
                "authrealm_op_registrations_total",
                "Registration attempts by result.",
                &["result"],
            )?,
            logins: counter_vec(
                "authrealm_op_logins_total",
                "Login attempts by result.",
                &["result"],
            )?,
            lockouts: counter_vec(
                "authrealm_op_login_lockouts_total",
                "Logins refused with 429 because of too many failures, by scope.",
                &["scope"],
            )?,
            verify_ok: verifications.with_label_values(&["ok"]),
            verifications,
            token_cache_hits: counter(
                "authrealm_op_token_cache_hits_total",
                "Verifications answered from the verified-token cache (expiry and revocation still checked).",
            )?,
            jwks_refreshes: counter_vec(
                "authrealm_op_jwks_refreshes_total",
                "JWKS fetches by reason and result.",
                &["reason", "result"],
            )?,
            jwks_keys: gauge("authrealm_op_jwks_keys", "Usable keys in the current JWKS.")?,
            revocation_events: counter_vec(
                "authrealm_op_revocation_events_total",
                "Revocation events received on the Redis channel (or recorded locally without Redis), by kind.",
                &["kind"],
            )?,
            revocation_resyncs: counter(
                "authrealm_op_revocation_resyncs_total",
                "Full reloads of the revocation list from Redis (start and reconnect).",
            )?,
            revocation_pings: counter(
                "authrealm_op_revocation_pings_total",
                "Keep-alive pings of the revocation listener that Redis answered.",
            )?,
            revocation_known: gauge(
                "authrealm_op_revocation_state_known",
                "1 while the local revocation view is known to be current.",
            )?,
            revocation_entries: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "authrealm_op_revocation_entries",
                        "Entries in the local revocation view, by kind.",
                    ),
                    &["kind"],
                ),
            )?,
            revocation_last_resync_seconds: register(
                r,
                Gauge::new(
                    "authrealm_op_revocation_last_resync_seconds",
                    "Duration of the last full load of the revocation list from Redis (with the heal, if any).",
                ),
            )?,
            revocation_log_reloads: counter(
                "authrealm_op_revocation_log_reloads_total",
                "Reloads of the revocation list read from the revocation log alone (the others scanned every key).",
            )?,
            revocation_checks: counter(
                "authrealm_op_revocation_checks_total",
                "Scans of every revocation key finished after a reload from the log, to find entries the log lacked.",
            )?,
            revocation_unlogged: counter(
                "authrealm_op_revocation_unlogged_entries_total",
                "Revocation entries a check found in Redis's keys but not in the log (written by a writer that did not log).",
            )?,
            revocation_last_check_seconds: register(
                r,
                Gauge::new(
                    "authrealm_op_revocation_last_check_seconds",
                    "Duration of the last scan that checked a reload from the log.",
                ),
            )?,
            revocation_data_losses: counter(
                "authrealm_op_revocation_data_losses_total",
                "Times Redis was found to have lost the revocation list (its generation marker gone or replaced).",
            )?,
            revocation_healed: counter(
                "authrealm_op_revocation_healed_entries_total",
                "Revocation entries this replica wrote back to Redis after a data loss.",
            )?,
            revocation_fail_open: counter(
                "authrealm_op_revocation_fail_open_total",
                "Tokens accepted under fail-open while the revocation state was unknown.",
            )?,
            hash_queue_depth: gauge(
                "authrealm_op_argon2_queue_depth",
                "Requests waiting for a password-hashing slot.",
            )?,
            hash_in_flight: gauge(
                "authrealm_op_argon2_in_flight",
                "Password hashes running now.",
            )?,
            hash_rejected: counter(
                "authrealm_op_argon2_rejected_total",
                "Requests refused with 503 because hashing slots and queue were full.",
            )?,
            limiter_backend_errors: counter(
                "authrealm_op_limiter_backend_errors_total",
                "Redis failures of the login-failure limiter (the in-memory limiter answered).",
            )?,
            ma_requests: counter_vec(
                "authrealm_op_auth_service_requests_total",
                "Calls to the auth-service by endpoint and result.",
                &["endpoint", "result"],
            )?,
            http_duration,
            forward_auth_allowed: forward_auth.with_label_values(&["allowed"]),
            forward_auth,
            registry,
        })
    }

    /// Counts one verification outcome.
    pub fn verification(&self, result: &str) {
        if result == "ok" {
            self.verify_ok.inc();
        } else {
            self.verifications.with_label_values(&[result]).inc();
        }
    }

    /// Counts one refused forward-auth answer by its status (a bounded label set).
    pub fn forward_auth_result(&self, status: axum::http::StatusCode) {
        let result = match status.as_u16() {
            200 => "allowed",
            401 => "unauthenticated",
            403 => "forbidden",
            400 => "bad_request",
            503 => "unavailable",
            _ => "error",
        };
        self.forward_auth.with_label_values(&[result]).inc();
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
