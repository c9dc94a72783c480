//! MA's public keys as OP holds them: the current [`Verifier`] built from the
//! JWKS, fetched at start, refreshed periodically and on an unknown `kid`
//! (at most once per `min_refetch` interval, so a flood of made-up `kid`s
//! cannot hammer MA), plus a bounded cache of already-verified tokens.
//!
//! The cache ([`cache`]) is keyed by the full token text, admits a token on
//! its second sighting, and belongs to one key-set snapshot (a new key set
//! starts an empty cache). Expiry, `nbf` and `iat` are checked again on
//! every hit; revocation is checked by the caller.

mod cache;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use authrealm_tokens::oidc::IdTokenHint;
use authrealm_tokens::{AccessClaims, Clock, JwkSet, Verifier, VerifierConfig, VerifyError};

use crate::auth_client::AuthClient;
use crate::error::Error;
use crate::metrics::Metrics;
use cache::VerifiedCache;

/// One JWKS and the verifier and cache that go with it.
struct Snapshot {
    jwks: JwkSet,
    verifier: Verifier,
    cache: VerifiedCache,
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
            cache: VerifiedCache::new(self.cache_entries),
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
        if !snap.cache.enabled() {
            return snap.verifier.verify(token, now).map(Arc::new);
        }
        let hash = snap.cache.hash(token);
        if let Some(claims) = snap.cache.get(hash, token) {
            self.metrics.token_cache_hits.inc();
            // The same time checks as a first verification, at this `now`.
            snap.verifier.check_times(&claims, now)?;
            return Ok(claims);
        }
        let claims = Arc::new(snap.verifier.verify(token, now)?);
        snap.cache.verified(hash, token, &claims, now);
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

#[cfg(test)]
mod tests {
    use authrealm_tokens::keyset::{KeyEntry, KeySetFile, KeyState};
    use authrealm_tokens::testsupport::{claims_for, header_for, sign_raw};
    use authrealm_tokens::{ServiceCredential, SigningAlgorithm};

    use super::*;

    const NOW: i64 = 1_900_000_000;

    /// A store holding one EdDSA key (installed directly; MA is never
    /// asked), and that key.
    fn store(cache_entries: usize) -> Result<(KeyStore, KeyEntry), Box<dyn std::error::Error>> {
        let metrics = Metrics::new()?;
        let client = AuthClient::new(
            "http://127.0.0.1:9",
            "http://127.0.0.1:9/.well-known/jwks.json".into(),
            ServiceCredential::generate().map_err(|_| "no credential")?,
            Duration::from_secs(1),
            metrics.clone(),
        )?;
        let config = VerifierConfig {
            issuer: "https://issuer".into(),
            audience: "api".into(),
            leeway_secs: 5,
        };
        let store = KeyStore::new(
            client,
            config,
            Duration::from_secs(60),
            cache_entries,
            metrics,
            Clock::manual(NOW),
        );
        let key = KeyEntry::generate(SigningAlgorithm::EdDSA, "k1".into(), KeyState::Active, NOW)?;
        store.install(KeySetFile::new(vec![key.clone()]).jwks()?);
        Ok((store, key))
    }

    fn sign(
        key: &KeyEntry,
        claims: &serde_json::Value,
    ) -> Result<String, Box<dyn std::error::Error>> {
        Ok(sign_raw(key, &header_for(key), claims)?)
    }

    fn refused(r: Result<Arc<AccessClaims>, Error>) -> Option<VerifyError> {
        match r {
            Err(Error::Token(e)) => Some(e),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_cached_token_is_refused_once_it_expires() -> Result<(), Box<dyn std::error::Error>> {
        let (store, key) = store(100)?;
        let token = sign(&key, &claims_for("https://issuer", "api", "user-1", NOW))?;
        // Seen once, seen twice (admitted), then answered from the cache.
        for _ in 0..3 {
            store.verify(&token, NOW).await?;
        }
        assert_eq!(store.metrics.token_cache_hits.get(), 1);
        // Past `exp` (300 s) and the leeway: refused, by the cache's own check.
        let r = store.verify(&token, NOW + 305).await;
        assert_eq!(refused(r), Some(VerifyError::Expired));
        assert_eq!(store.metrics.token_cache_hits.get(), 2);
        Ok(())
    }

    #[tokio::test]
    async fn a_cached_token_issued_in_the_future_is_refused_before_then()
    -> Result<(), Box<dyn std::error::Error>> {
        let (store, key) = store(100)?;
        let mut claims = claims_for("https://issuer", "api", "user-1", NOW);
        claims["iat"] = (NOW + 100).into();
        let token = sign(&key, &claims)?;
        for _ in 0..3 {
            store.verify(&token, NOW + 100).await?;
        }
        assert_eq!(store.metrics.token_cache_hits.get(), 1);
        // A hit checks `iat` as a first verification does, not `nbf` alone.
        let r = store.verify(&token, NOW).await;
        assert_eq!(refused(r), Some(VerifyError::NotYetValid));
        Ok(())
    }

    #[tokio::test]
    async fn a_disabled_cache_verifies_every_time() -> Result<(), Box<dyn std::error::Error>> {
        let (store, key) = store(0)?;
        let token = sign(&key, &claims_for("https://issuer", "api", "user-1", NOW))?;
        for _ in 0..3 {
            store.verify(&token, NOW).await?;
        }
        assert_eq!(store.metrics.token_cache_hits.get(), 0);
        let r = store.verify(&token, NOW + 305).await;
        assert_eq!(refused(r), Some(VerifyError::Expired));
        Ok(())
    }
}
