//! Signing keys: the key set loaded from the key directory (or an ephemeral
//! set), parsed once per load into ready-to-use signers, the pre-rendered
//! JWKS, and the watcher that swaps in a changed set without dropping a
//! request and keeps the old set when the new one is refused. A set has an
//! access-token key and an ID-token key (the active RS256 key when there is
//! one; see `authrealm_tokens::keyset`).
//!
//! Signing uses aws-lc-rs key pairs parsed once per load (the provider
//! `jsonwebtoken` uses too): `jsonwebtoken::encode` would re-parse the
//! private key on every call, which for RSA costs far more than the
//! signature. Tokens are standard compact JWS and are checked by
//! `jsonwebtoken` (the shared verifier) and by PyJWT in the tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use authrealm_tokens::jwks::JwkError;
use authrealm_tokens::keyset::{FILE_NAME, FORMAT_VERSION};
use authrealm_tokens::{
    KeyEntry, KeySetError, KeySetFile, KeyState, SigningAlgorithm, Verifier, VerifierConfig,
};
use aws_lc_rs::signature::{self as sig};
use axum::body::Bytes;
use base64::Engine as _;
use serde::Serialize;

use authrealm_tokens::digest::sha256;

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::reload::{self, Content};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

enum KeyPair {
    Ed25519(sig::Ed25519KeyPair),
    EcdsaP256(sig::EcdsaKeyPair),
    Rsa(sig::RsaKeyPair),
}

/// The `typ` header of a signed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtType {
    /// `JWT`: the internal API's access tokens and ID tokens.
    Jwt,
    /// `at+jwt`: OAuth 2.0 access tokens (RFC 9068 §2.1).
    AccessToken,
}

/// One key ready to sign: the private key parsed once, the JWS headers
/// (`alg`, `kid`, `typ`) already encoded.
pub struct SigningKey {
    kid: String,
    alg: SigningAlgorithm,
    state: KeyState,
    activated_at: Option<i64>,
    created_at: i64,
    header_b64: String,
    at_header_b64: String,
    pair: KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn from_entry(entry: &KeyEntry) -> Result<Self, KeySetError> {
        let bad = || KeySetError::BadKey {
            kid: entry.kid.clone(),
            alg: entry.alg,
        };
        let der = entry.pkcs8_der()?;
        let pair = match entry.alg {
            SigningAlgorithm::EdDSA => KeyPair::Ed25519(
                sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|_| bad())?,
            ),
            SigningAlgorithm::ES256 => KeyPair::EcdsaP256(
                sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                    .map_err(|_| bad())?,
            ),
            SigningAlgorithm::RS256 => {
                KeyPair::Rsa(sig::RsaKeyPair::from_pkcs8(&der).map_err(|_| bad())?)
            }
        };
        let header = |typ: &str| {
            let h = serde_json::json!({ "alg": entry.alg.as_str(), "kid": entry.kid, "typ": typ });
            b64(h.to_string().as_bytes())
        };
        Ok(Self {
            kid: entry.kid.clone(),
            alg: entry.alg,
            state: entry.state,
            activated_at: entry.activated_at,
            created_at: entry.created_at,
            header_b64: header("JWT"),
            at_header_b64: header("at+jwt"),
            pair,
        })
    }

    /// The key id put in the `kid` header.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signature algorithm.
    #[must_use]
    pub fn alg(&self) -> SigningAlgorithm {
        self.alg
    }

    /// Signs `claims` as a compact JWS (`header.payload.signature`) with
    /// `typ: JWT`.
    ///
    /// # Errors
    /// [`Error::Sign`]-like failures: serialisation or the crypto library refusing.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String> {
        self.sign_typed(JwtType::Jwt, claims)
    }

    /// Signs `claims` as a compact JWS with the given `typ` header.
    ///
    /// # Errors
    /// As [`SigningKey::sign`].
    pub fn sign_typed<T: Serialize>(&self, typ: JwtType, claims: &T) -> Result<String> {
        let payload = serde_json::to_vec(claims)
            .map_err(|e| Error::Sign(jsonwebtoken::errors::Error::from(e)))?;
        let header = match typ {
            JwtType::Jwt => &self.header_b64,
            JwtType::AccessToken => &self.at_header_b64,
        };
        let mut out = String::with_capacity(header.len() + payload.len() * 4 / 3 + 400);
        out.push_str(header);
        out.push('.');
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
        let signature: Vec<u8> = match &self.pair {
            KeyPair::Ed25519(kp) => kp.sign(out.as_bytes()).as_ref().to_vec(),
            KeyPair::EcdsaP256(kp) => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                kp.sign(&rng, out.as_bytes())
                    .map_err(|_| Error::Random)?
                    .as_ref()
                    .to_vec()
            }
            KeyPair::Rsa(kp) => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let mut sig_bytes = vec![0u8; kp.public_modulus_len()];
                kp.sign(&sig::RSA_PKCS1_SHA256, &rng, out.as_bytes(), &mut sig_bytes)
                    .map_err(|_| Error::Random)?;
                sig_bytes
            }
        };
        out.push('.');
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&signature, &mut out);
        Ok(out)
    }
}

/// One loaded key set: signers for every key, the access-token and ID-token
/// keys, the JWKS as served, and a verifier for introspection. Immutable;
/// replaced whole.
pub struct KeySnapshot {
    keys: HashMap<String, Arc<SigningKey>>,
    active: Arc<SigningKey>,
    id_token: Arc<SigningKey>,
    jwks_json: Bytes,
    verifier: Verifier,
    digest: [u8; 32],
    ephemeral: bool,
}

impl std::fmt::Debug for KeySnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySnapshot")
            .field("active", &self.active.kid)
            .field("id_token", &self.id_token.kid)
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .field("ephemeral", &self.ephemeral)
            .finish_non_exhaustive()
    }
}

impl KeySnapshot {
    /// Builds a snapshot from a validated key-set file.
    ///
    /// # Errors
    /// [`KeySetError`] when the set is invalid or a key does not parse.
    pub fn from_set(
        set: &KeySetFile,
        verify: VerifierConfig,
        digest: [u8; 32],
        ephemeral: bool,
    ) -> Result<Self, KeySetError> {
        set.validate()?;
        let mut keys = HashMap::with_capacity(set.keys.len());
        for entry in &set.keys {
            keys.insert(entry.kid.clone(), Arc::new(SigningKey::from_entry(entry)?));
        }
        let signer = |entry: Option<&KeyEntry>| {
            entry
                .and_then(|k| keys.get(&k.kid))
                .cloned()
                .ok_or(KeySetError::NoActiveKey)
        };
        let active = signer(set.access_token_key())?;
        let id_token = signer(set.id_token_key())?;
        let jwks = set.jwks()?;
        let jwks_json = Bytes::from(serde_json::to_vec(&jwks).map_err(KeySetError::Json)?);
        let (verifier, skipped) = Verifier::new(&jwks, verify);
        if let Some(first) = skipped.into_iter().next() {
            let (kid, alg) = match first {
                JwkError::Mismatch { kid, alg } => (kid, alg),
                JwkError::Invalid { kid, .. } => {
                    let alg = keys.get(&kid).map_or(active.alg, |k| k.alg);
                    (kid, alg)
                }
            };
            return Err(KeySetError::BadKey { kid, alg });
        }
        Ok(Self {
            keys,
            active,
            id_token,
            jwks_json,
            verifier,
            digest,
            ephemeral,
        })
    }

    /// Parses the bytes of a `keyset.json`.
    ///
    /// # Errors
    /// [`KeySetError`] naming what is wrong; nothing is partially accepted.
    pub fn from_bytes(bytes: &[u8], verify: VerifierConfig) -> Result<Self, KeySetError> {
        let set = KeySetFile::parse(bytes)?;
        Self::from_set(&set, verify, sha256(bytes), false)
    }

    /// Freshly generated keys for a run without a key directory: one of
    /// `alg`, which signs access tokens, and (unless `alg` is RS256) an
    /// RS256 key for ID tokens, as the operator's RS256 track would.
    ///
    /// # Errors
    /// When key generation fails.
    pub fn ephemeral(
        alg: SigningAlgorithm,
        now: i64,
        verify: VerifierConfig,
    ) -> Result<Self, KeySetError> {
        let kid = || -> Result<String, KeySetError> {
            let id = authrealm_tokens::random_token(6).map_err(|_| KeySetError::Generate)?;
            Ok(format!("ephemeral-{id}"))
        };
        let mut keys = vec![KeyEntry::generate(alg, kid()?, KeyState::Active, now)?];
        if alg != SigningAlgorithm::RS256 {
            keys.push(KeyEntry::generate(
                SigningAlgorithm::RS256,
                kid()?,
                KeyState::Active,
                now,
            )?);
        }
        let set = KeySetFile {
            version: FORMAT_VERSION,
            access_token_alg: Some(alg),
            keys,
        };
        Self::from_set(&set, verify, [0u8; 32], true)
    }

    /// The key that signs access tokens.
    #[must_use]
    pub fn active(&self) -> &Arc<SigningKey> {
        &self.active
    }

    /// The key that signs ID tokens: the active RS256 key when the set has
    /// one, else the access-token key.
    #[must_use]
    pub fn id_token_key(&self) -> &Arc<SigningKey> {
        &self.id_token
    }

    /// A key of the set by id (any state).
    #[must_use]
    pub fn by_kid(&self, kid: &str) -> Option<&Arc<SigningKey>> {
        self.keys.get(kid)
    }

    /// The algorithms of the set's active keys, each once (what discovery
    /// advertises: keys that only wait or retire sign nothing new).
    #[must_use]
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut algs: Vec<&'static str> = self
            .keys
            .values()
            .filter(|k| k.state == KeyState::Active)
            .map(|k| k.alg.as_str())
            .collect();
        algs.sort_unstable();
        algs.dedup();
        algs
    }

    /// The public JWKS document, serialised once.
    #[must_use]
    pub fn jwks_json(&self) -> &Bytes {
        &self.jwks_json
    }

    /// A verifier over this set's public keys.
    #[must_use]
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// When the active key started signing (or was created).
    #[must_use]
    pub fn active_since(&self) -> i64 {
        self.active.activated_at.unwrap_or(self.active.created_at)
    }

    /// Whether this is a generated key of a local run.
    #[must_use]
    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }
}

/// The current key snapshot, swapped atomically on reload. Readers take an
/// `Arc` clone and keep using it for the rest of their request.
#[derive(Debug)]
pub struct KeyRing {
    current: RwLock<Arc<KeySnapshot>>,
}

impl KeyRing {
    /// A ring holding `snapshot`.
    #[must_use]
    pub fn new(snapshot: KeySnapshot) -> Self {
        Self {
            current: RwLock::new(Arc::new(snapshot)),
        }
    }

    /// The current snapshot.
    #[must_use]
    pub fn snapshot(&self) -> Arc<KeySnapshot> {
        let guard = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(&guard)
    }

    /// Replaces the current snapshot.
    pub fn replace(&self, snapshot: KeySnapshot) {
        let mut guard = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = Arc::new(snapshot);
    }
}

/// Path of the key-set file in a key directory. In a mounted Secret this is
/// a symlink through `..data`, so reading it always sees one whole version.
#[must_use]
pub fn keyset_path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Loads the key set at start; failure stops the service with a clear error.
///
/// # Errors
/// [`Error::KeyRead`] or [`Error::KeySet`].
pub fn load_dir(dir: &Path, verify: VerifierConfig) -> Result<KeySnapshot> {
    let path = keyset_path(dir);
    let bytes = std::fs::read(&path).map_err(|source| Error::KeyRead {
        path: path.display().to_string(),
        source,
    })?;
    KeySnapshot::from_bytes(&bytes, verify).map_err(Error::KeySet)
}

/// Polls the key directory every `interval` and swaps in a changed, valid
/// key set. A refused or unreadable set is logged once per distinct
/// content, counted as a failed reload, and the previous set stays in use.
pub async fn watch_dir(
    ring: Arc<KeyRing>,
    dir: PathBuf,
    interval: Duration,
    verify: VerifierConfig,
    metrics: Arc<Metrics>,
) {
    let path = keyset_path(&dir);
    let shown = path.display().to_string();
    let initial = Some(ring.snapshot().digest);
    reload::poll(path, interval, initial, move |content| {
        let current = ring.snapshot();
        let bytes = match content {
            Content::Bytes(b) => b,
            Content::Missing => {
                metrics.key_reload_failed.inc();
                tracing::error!(path = %shown, "the key set is gone; keeping the current keys");
                return;
            }
            Content::Unreadable(e) => {
                metrics.key_reload_failed.inc();
                tracing::error!(path = %shown, error = %e,
                    "cannot read the key set; keeping the current keys");
                return;
            }
        };
        if current.digest == sha256(&bytes) {
            return;
        }
        match KeySnapshot::from_bytes(&bytes, verify.clone()) {
            Ok(next) => {
                let active = next.active().kid.clone();
                let id_token = next.id_token_key().kid.clone();
                let kids: Vec<String> = next.keys.keys().cloned().collect();
                ring.replace(next);
                metrics.key_reload_ok.inc();
                tracing::info!(path = %shown, active_kid = %active, id_token_kid = %id_token,
                    kids = ?kids, previous_active_kid = %current.active().kid, "key set reloaded");
            }
            Err(e) => {
                metrics.key_reload_failed.inc();
                tracing::error!(path = %shown, error = %e,
                    active_kid = %current.active().kid,
                    "new key set refused; keeping the current keys");
            }
        }
    })
    .await;
}
