//! What every reconcile shares: the API client, the event publisher, the
//! metrics, the clock, and the per-realm failure counts behind the backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Client;

use crate::events::Publisher;
use crate::metrics::Metrics;
use crate::upgrade::Rollouts;
use crate::validate::Defaults;

/// Unix seconds; a parameter so tests pin time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What every reconcile shares.
pub struct Context {
    /// Kubernetes client (the real API server, or a mock in tests).
    pub client: Client,
    /// Publishes Events on realms.
    pub events: Publisher,
    /// Operator metrics.
    pub metrics: Metrics,
    /// The clock.
    pub clock: Clock,
    /// Consecutive failures per realm (`namespace/name`), for backoff.
    pub failures: Mutex<HashMap<String, u32>>,
    /// What realms get where their spec leaves it to the operator (images).
    pub defaults: Defaults,
    /// HTTP client that fetches the auth-service replicas' JWKS.
    pub http: reqwest::Client,
    /// The one-at-a-time gate of upgrades to the operator's images.
    pub rollouts: Rollouts,
    /// The namespaces the operator watches (`--watch-namespaces`); empty: all.
    pub watch_namespaces: Vec<String>,
}

impl Context {
    /// A context with the system clock.
    #[must_use]
    pub fn new(client: Client, events: Publisher, metrics: Metrics) -> Self {
        Self::with_clock(
            client,
            events,
            metrics,
            Arc::new(authrealm_tokens::unix_now),
        )
    }

    /// A context with a given clock.
    #[must_use]
    pub fn with_clock(client: Client, events: Publisher, metrics: Metrics, clock: Clock) -> Self {
        Self {
            client,
            events,
            metrics,
            clock,
            failures: Mutex::new(HashMap::new()),
            defaults: Defaults::default(),
            http: reqwest::Client::new(),
            rollouts: Rollouts::default(),
            watch_namespaces: Vec::new(),
        }
    }

    /// The current time in Unix seconds.
    #[must_use]
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Counts one more consecutive failure of `key`; the delay before the
    /// next try ([`crate::reconcile::backoff`]).
    #[must_use]
    pub fn failed(&self, key: &str) -> std::time::Duration {
        let n = self
            .failures
            .lock()
            .map(|mut f| {
                let n = f.entry(key.to_owned()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            })
            .unwrap_or(1);
        crate::reconcile::backoff(n)
    }
}
