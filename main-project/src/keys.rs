//! MA's public keys as OP holds them: the current [`Verifier`] built from the
//! JWKS, fetched at start, refreshed periodically and on an unknown `kid`
//! (at most once per `min_refetch` interval, so a flood of made-up `kid`s
//! cannot hammer MA), plus a bounded cache of already-verified tokens.
//!
//! The cache is keyed by the full token text and belongs to one key-set
//! snapshot (a new key set starts an empty cache). Expiry and `nbf` are
//! checked again on every hit; revocation is checked by the caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use authrealm_tokens::oidc::IdTokenHint;
use authrealm_tokens::{AccessClaims, Clock, JwkSet, Verifier, VerifierConfig, VerifyError};

use crate::auth_client::AuthClient;
use crate::error::Error;
use crate::metrics::Metrics;

/// One JWKS and the verifier and cache that go with it.
struct Snapshot {
    jwks: JwkSet,
    verifier: Verifier,
    cache: RwLock<HashMap<Box<str>, Arc<AccessClaims>>>,
}

/// The key store of one OP instance.
pub struct KeyStore {
    current: RwLock<Option<Arc<Snapshot>>>,
    client: AuthClient,
    config: VerifierConfig,
    /// Least seconds between two unknown-`kid` refetches.
    min_refetch: i64,
    /// When the last fetch started (Unix seconds of `clock`).
    last_fetch: Mutex<Option<i64>>,
    clock: Clock,
    fetching: tokio::sync::Mutex<()>,
    cache_entries: usize,
    metrics: Metrics,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("loaded", &self.is_loaded())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// An empty store; call [`KeyStore::refresh`] (or run [`KeyStore::maintain`]).
    #[must_use]
    pub fn new(
        client: AuthClient,
        config: VerifierConfig,
        min_refetch: Duration,
        cache_entries: usize,
        metrics: Metrics,
        clock: Clock,
    ) -> Self {
        Self {
            current: RwLock::new(None),
            client,
            config,
            min_refetch: i64::try_from(min_refetch.as_secs()).unwrap_or(i64::MAX),
            last_fetch: Mutex::new(None),
            clock,
            fetching: tokio::sync::Mutex::new(()),
            cache_entries,
            metrics,
        }
    }

    /// Whether a JWKS has been loaded.
    #[must_use]
    pub fn is_loaded(&self) -> bool {
        self.current.read().map(|c| c.is_some()).unwrap_or(false)
    }

    /// Installs a key set directly (tests, and the fetch path).
    pub fn install(&self, jwks: JwkSet) -> usize {
        let (verifier, skipped) = Verifier::new(&jwks, self.config.clone());
        for e in &skipped {
            tracing::warn!(error = %e, "JWKS key skipped");
        }
        let n = verifier.key_count();
        self.metrics
            .jwks_keys
            .set(i64::try_from(n).unwrap_or(i64::MAX));
        let snap = Arc::new(Snapshot {
            jwks,
            verifier,
            cache: RwLock::new(HashMap::new()),
        });
        if let Ok(mut c) = self.current.write() {
            *c = Some(snap);
        }
        n
    }

    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    /// Fetches the JWKS now and installs it when it changed and has at least
    /// one usable key. Concurrent callers share one fetch.
    ///
    /// # Errors
    /// A description of why the fetch failed (the old keys stay in use).
    pub async fn refresh(&self, reason: &'static str) -> Result<(), String> {
        let _one_at_a_time = self.fetching.lock().await;
        if let Ok(mut last) = self.last_fetch.lock() {
            *last = Some(self.clock.now());
        }
        let result = match self.client.jwks().await {
            Ok(jwks) => {
                let same = self.snapshot().is_some_and(|s| s.jwks == jwks);
                if same {
                    Ok(())
                } else {
                    let (probe, _) = Verifier::new(&jwks, self.config.clone());
                    if probe.key_count() == 0 {
                        Err("the JWKS has no usable key".to_owned())
                    } else {
                        let n = self.install(jwks);
                        tracing::info!(keys = n, reason, "JWKS installed");
                        Ok(())
                    }
                }
            }
            Err(e) => Err(format!("{e:?}")),
        };
        let label = if result.is_ok() { "ok" } else { "error" };
        self.metrics
            .jwks_refreshes
            .with_label_values(&[reason, label])
            .inc();
        result
    }

    /// Claims the right to refetch because of an unknown `kid`: true at most
    /// once per `min_refetch` (any fetch, periodic too, resets the interval).
    fn claim_refetch(&self, now: i64) -> bool {
        let Ok(mut last) = self.last_fetch.lock() else {
            return false;
        };
        match *last {
            Some(t) if now.saturating_sub(t) < self.min_refetch => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    /// Verifies a token at `now`: cache, then signature and claims; on an
    /// unknown `kid`, one rate-limited refetch and a second try.
    ///
    /// # Errors
    /// [`Error::Token`] for a token that fails a check, [`Error::KeysUnavailable`]
    /// before the first JWKS.
    pub async fn verify(&self, token: &str, now: i64) -> Result<Arc<AccessClaims>, Error> {
        let snap = self.snapshot().ok_or(Error::KeysUnavailable)?;
        match self.verify_with(&snap, token, now) {
            Err(VerifyError::UnknownKid) => {
                // Only a token whose header names a kid can be helped by a refetch.
                let has_kid = matches!(authrealm_tokens::verify::peek_kid(token), Ok(Some(_)));
                if !has_kid || !self.claim_refetch(now) {
                    return Err(Error::Token(VerifyError::UnknownKid));
                }
                if let Err(e) = self.refresh("unknown_kid").await {
                    tracing::warn!(error = %e, "JWKS refetch failed");
                }
                let snap = self.snapshot().ok_or(Error::KeysUnavailable)?;
                self.verify_with(&snap, token, now).map_err(Error::Token)
            }
            other => other.map_err(Error::Token),
        }
    }

    fn verify_with(
        &self,
        snap: &Snapshot,
        token: &str,
        now: i64,
    ) -> Result<Arc<AccessClaims>, VerifyError> {
        let leeway = self.config.leeway_secs;
        if self.cache_entries > 0 {
            let hit = snap.cache.read().ok().and_then(|c| c.get(token).cloned());
            if let Some(claims) = hit {
                self.metrics.token_cache_hits.inc();
                if now >= claims.exp.saturating_add(leeway) {
                    return Err(VerifyError::Expired);
                }
                if now.saturating_add(leeway) < claims.nbf {
                    return Err(VerifyError::NotYetValid);
                }
                return Ok(claims);
            }
        }
        let claims = Arc::new(snap.verifier.verify(token, now)?);
        if self.cache_entries > 0
            && let Ok(mut c) = snap.cache.write()
        {
            if c.len() >= self.cache_entries {
                // Bounded: start over rather than track recency on the hot path.
                c.retain(|_, v| v.exp > now);
                if c.len() >= self.cache_entries {
                    c.clear();
                }
            }
            c.insert(token.into(), claims.clone());
        }
        Ok(claims)
    }

    /// Checks an `id_token_hint` (RP-initiated logout) with the current
    /// keys: signature and issuer, expiry ignored; on an unknown `kid`, one
    /// rate-limited refetch and a second try.
    ///
    /// # Errors
    /// [`Error::Token`] for a token that fails, [`Error::KeysUnavailable`]
    /// before the first JWKS.
    pub async fn id_token_hint(&self, token: &str) -> Result<IdTokenHint, Error> {
        let snap = self.snapshot().ok_or(Error::KeysUnavailable)?;
        match snap.verifier.id_token_hint(token) {
            Err(VerifyError::UnknownKid) if self.claim_refetch(self.clock.now()) => {
                if let Err(e) = self.refresh("unknown_kid").await {
                    tracing::warn!(error = %e, "JWKS refetch failed");
                }
                let snap = self.snapshot().ok_or(Error::KeysUnavailable)?;
                snap.verifier.id_token_hint(token).map_err(Error::Token)
            }
            other => other.map_err(Error::Token),
        }
    }

    /// Loads the keys (retrying until MA answers), then refreshes every
    /// `interval`. Runs until the task is dropped.
    pub async fn maintain(self: Arc<Self>, interval: Duration) {
        let mut backoff = Duration::from_millis(100);
        while !self.is_loaded() {
            if let Err(e) = self.refresh("start").await {
                tracing::warn!(error = %e, "JWKS not loaded yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = self.refresh("periodic").await {
                tracing::warn!(error = %e, "periodic JWKS refresh failed; keeping the current keys");
            }
        }
    }
}
