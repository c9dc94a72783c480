//! Operator metrics on a per-instance Prometheus registry: reconciles by
//! result and their duration (recorded as they happen), and per-realm key age,
//! next rotation time and realms by readiness (computed from the realm cache
//! at scrape time, so deleted realms never linger).

use std::sync::Arc;

use prometheus::{
    Encoder as _, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::crd::AuthRealm;
use crate::status::{READY, condition};

/// The operator's metrics.
#[derive(Clone)]
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// `authrealm_operator_reconciles_total{result}`.
    pub reconciles: IntCounterVec,
    /// `authrealm_operator_reconcile_duration_seconds{result}`.
    pub duration: HistogramVec,
    key_age: GaugeVec,
    next_rotation: GaugeVec,
    rotation_interval: GaugeVec,
    realms: IntGaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Result labels of a reconcile.
pub mod result {
    /// Everything applied.
    pub const APPLIED: &str = "applied";
    /// The spec was refused (`InvalidSpec`).
    pub const INVALID_SPEC: &str = "invalid_spec";
    /// A referenced Secret or key is missing, or a managed Secret is unusable.
    pub const BLOCKED: &str = "blocked";
    /// An API or key-generation error; retried with backoff.
    pub const ERROR: &str = "error";
}

impl Metrics {
    /// Registers every metric on a fresh registry.
    ///
    /// # Errors
    /// Only on a duplicate or malformed metric definition.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "authrealm_operator_reconciles_total",
                "Reconciles of AuthRealm resources by result.",
            ),
            &["result"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "authrealm_operator_reconcile_duration_seconds",
                "Time one reconcile of an AuthRealm took.",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["result"],
        )?;
        let key_age = GaugeVec::new(
            Opts::new(
                "authrealm_operator_active_key_age_seconds",
                "How long the active signing key of a realm has been signing.",
            ),
            &["namespace", "realm"],
        )?;
        let next_rotation = GaugeVec::new(
            Opts::new(
                "authrealm_operator_next_key_rotation_timestamp_seconds",
                "When the next signing key of a realm becomes active (Unix time).",
            ),
            &["namespace", "realm"],
        )?;
        let rotation_interval = GaugeVec::new(
            Opts::new(
                "authrealm_operator_key_rotation_interval_seconds",
                "How long a signing key of a realm signs before the next takes over (spec).",
            ),
            &["namespace", "realm"],
        )?;
        let realms = IntGaugeVec::new(
            Opts::new(
                "authrealm_operator_realms",
                "AuthRealm resources by the status of their Ready condition.",
            ),
            &["ready"],
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(key_age.clone()))?;
        registry.register(Box::new(next_rotation.clone()))?;
        registry.register(Box::new(rotation_interval.clone()))?;
        registry.register(Box::new(realms.clone()))?;
        Ok(Self {
            registry,
            reconciles,
            duration,
            key_age,
            next_rotation,
            rotation_interval,
            realms,
        })
    }

    /// Records one finished reconcile.
    pub fn observe(&self, result: &str, seconds: f64) {
        self.reconciles.with_label_values(&[result]).inc();
        self.duration.with_label_values(&[result]).observe(seconds);
    }

    /// Refreshes the per-realm gauges from the cached realms and renders the
    /// registry in the Prometheus text format.
    #[must_use]
    pub fn render(&self, realms: &[Arc<AuthRealm>], now: i64) -> String {
        self.key_age.reset();
        self.next_rotation.reset();
        self.rotation_interval.reset();
        self.realms.reset();
        for ready in ["true", "false", "unknown"] {
            self.realms.with_label_values(&[ready]).set(0);
        }
        for r in realms {
            let ns = r.metadata.namespace.clone().unwrap_or_default();
            let name = r.metadata.name.clone().unwrap_or_default();
            let status = r.status.as_ref();
            let ready = match condition(status, READY).map(|c| c.status.as_str()) {
                Some("True") => "true",
                Some("False") => "false",
                _ => "unknown",
            };
            self.realms.with_label_values(&[ready]).inc();
            if let Ok(d) = authrealm_tokens::duration::parse(&r.spec.signing_keys.rotation_interval)
            {
                #[allow(clippy::cast_precision_loss)]
                self.rotation_interval
                    .with_label_values(&[&ns, &name])
                    .set(d.as_secs() as f64);
            }
            let Some(status) = status else { continue };
            let parse = |t: &str| t.parse::<jiff::Timestamp>().ok().map(|t| t.as_second());
            let active_since = status
                .keys
                .iter()
                .find(|k| k.state == "active")
                .and_then(|k| k.activated_at.as_deref())
                .and_then(parse);
            if let Some(since) = active_since {
                #[allow(clippy::cast_precision_loss)]
                let age = (now - since).max(0) as f64;
                self.key_age.with_label_values(&[&ns, &name]).set(age);
            }
            if let Some(next) = status.next_rotation_time.as_deref().and_then(parse) {
                #[allow(clippy::cast_precision_loss)]
                self.next_rotation
                    .with_label_values(&[&ns, &name])
                    .set(next as f64);
            }
        }
        let mut out = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AuthRealmSpec, AuthRealmStatus, Condition, KeyStatus};

    #[test]
    fn per_realm_gauges_come_from_the_cached_status() -> Result<(), prometheus::Error> {
        let m = Metrics::new()?;
        m.observe(result::APPLIED, 0.2);
        let mut r = AuthRealm::new("demo", AuthRealmSpec::default());
        r.metadata.namespace = Some("ns".into());
        r.status = Some(AuthRealmStatus {
            conditions: vec![Condition {
                type_: READY.into(),
                status: "True".into(),
                reason: "Ready".into(),
                message: String::new(),
                last_transition_time: "1970-01-01T00:00:00Z".into(),
                observed_generation: None,
            }],
            keys: vec![KeyStatus {
                kid: "k1".into(),
                algorithm: "EdDSA".into(),
                state: "active".into(),
                created_at: "1970-01-01T00:00:00Z".into(),
                activated_at: Some("1970-01-01T00:01:40Z".into()),
                retired_at: None,
                remove_after: None,
                served_by: None,
                served_everywhere_since: None,
            }],
            next_rotation_time: Some("1970-01-01T00:16:40Z".into()),
            ..AuthRealmStatus::default()
        });
        let text = m.render(&[Arc::new(r)], 400);
        assert!(text.contains("authrealm_operator_reconciles_total{result=\"applied\"} 1"));
        assert!(text.contains(
            "authrealm_operator_active_key_age_seconds{namespace=\"ns\",realm=\"demo\"} 300"
        ));
        assert!(text.contains(
            "authrealm_operator_next_key_rotation_timestamp_seconds{namespace=\"ns\",realm=\"demo\"} 1000"
        ));
        assert!(text.contains("authrealm_operator_realms{ready=\"true\"} 1"));
        assert!(text.contains(
            "authrealm_operator_key_rotation_interval_seconds{namespace=\"ns\",realm=\"demo\"} 2592000"
        ));
        // A realm gone from the cache is gone from the metrics.
        let text = m.render(&[], 400);
        assert!(!text.contains("realm=\"demo\""));
        assert!(text.contains("authrealm_operator_realms{ready=\"true\"} 0"));
        Ok(())
    }
}
