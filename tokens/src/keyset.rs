//! The signing-key-set file: the operator writes it into a Secret (key
//! [`FILE_NAME`]), MA reads it from the mounted directory. Private keys are
//! PKCS#8 PEM (see [`crate::keypair`]); times are Unix seconds.
//!
//! A set holds one key track per algorithm: at most one `active` key of each
//! algorithm. Access tokens are signed by the active key of
//! [`KeySetFile::access_token_alg`] (when absent: the only active key), ID
//! tokens by the active RS256 key when there is one (OpenID Connect expects
//! RS256), else by the access-token key. A file with a single active key and
//! no `accessTokenAlg` means what it always meant.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use crate::algorithm::SigningAlgorithm;
use crate::jwks::JwkSet;

/// Name of the file (and Secret key) that holds the key set.
pub const FILE_NAME: &str = "keyset.json";

/// The format version this code writes and accepts.
pub const FORMAT_VERSION: u32 = 1;

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published in the JWKS, not yet signing.
    Next,
    /// Signs new tokens (at most one active key per algorithm).
    Active,
    /// No longer signing; published until every token it signed has expired.
    Retiring,
}

/// One key of the set. Serialised only through [`KeySetFile::to_json`].
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyEntry {
    /// Key id, put in the `kid` header of every token the key signs.
    pub kid: String,
    /// Signature algorithm.
    pub alg: SigningAlgorithm,
    /// Current state.
    pub state: KeyState,
    /// PKCS#8 private key, PEM. Never printed.
    pub private_key_pem: SecretString,
    /// When the key was generated and first published.
    pub created_at: i64,
    /// When it became (or becomes) the signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<i64>,
    /// When it stopped signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
    /// When it may be removed: every token it signed has expired by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_after: Option<i64>,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("activated_at", &self.activated_at)
            .field("retired_at", &self.retired_at)
            .field("remove_after", &self.remove_after)
            .finish_non_exhaustive()
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
pub struct KeySetFile {
    /// Format version; see [`FORMAT_VERSION`].
    pub version: u32,
    /// Algorithm of the active key that signs access tokens (`accessTokenAlg`).
    /// Required when several keys are active (one per algorithm); absent, the
    /// only active key signs them.
    #[serde(default, rename = "accessTokenAlg")]
    pub access_token_alg: Option<SigningAlgorithm>,
    /// Every published key.
    pub keys: Vec<KeyEntry>,
}

/// Why a key set or key was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    /// The file is not valid JSON of the expected shape.
    #[error("key set is not valid JSON of the expected shape: {0}")]
    Json(#[source] serde_json::Error),
    /// An unknown format version.
    #[error("key set format version {0} is not supported (expected {FORMAT_VERSION})")]
    Version(u32),
    /// No key is `active`.
    #[error("key set has no active key")]
    NoActiveKey,
    /// Two keys of one algorithm are `active`.
    #[error("key set has more than one active {0:?} key (at most one active key per algorithm)")]
    TwoActive(SigningAlgorithm),
    /// Several keys are active and `accessTokenAlg` does not say which one
    /// signs access tokens.
    #[error(
        "key set has several active keys (one per algorithm) but no accessTokenAlg naming the one that signs access tokens"
    )]
    AmbiguousAccessAlg,
    /// `accessTokenAlg` names an algorithm without an active key.
    #[error("accessTokenAlg is {0:?} but no {0:?} key is active")]
    AccessAlgNotActive(SigningAlgorithm),
    /// Two keys share a `kid`.
    #[error("key id {0:?} appears more than once")]
    DuplicateKid(String),
    /// A `kid` that is empty or not printable ASCII.
    #[error("key id {0:?} is empty, longer than 64 characters or not printable ASCII")]
    BadKid(String),
    /// A private key that does not parse for its algorithm.
    #[error("key {kid}: private key is not a valid PKCS#8 {alg:?} key")]
    BadKey {
        /// Offending key id.
        kid: String,
        /// Its algorithm.
        alg: SigningAlgorithm,
    },
    /// Random source or key generation failure.
    #[error("key generation failed")]
    Generate,
}

impl KeySetFile {
    /// A set of `keys` in the current format, without `accessTokenAlg` (right
    /// for a set with one active key).
    #[must_use]
    pub fn new(keys: Vec<KeyEntry>) -> Self {
        Self {
            version: FORMAT_VERSION,
            access_token_alg: None,
            keys,
        }
    }

    /// Parses and validates a key-set file: version, unique printable kids,
    /// at most one active key per algorithm and a defined access-token key,
    /// and every private key parses for its algorithm.
    ///
    /// # Errors
    /// The first [`KeySetError`] found; nothing is partially accepted.
    pub fn parse(bytes: &[u8]) -> Result<Self, KeySetError> {
        let set: Self = serde_json::from_slice(bytes).map_err(KeySetError::Json)?;
        set.validate()?;
        Ok(set)
    }

    /// Checks the invariants [`KeySetFile::parse`] promises.
    ///
    /// # Errors
    /// The first violated invariant.
    pub fn validate(&self) -> Result<(), KeySetError> {
        if self.version != FORMAT_VERSION {
            return Err(KeySetError::Version(self.version));
        }
        let mut seen = std::collections::HashSet::new();
        for key in &self.keys {
            let kid_ok = !key.kid.is_empty()
                && key.kid.len() <= 64
                && key.kid.bytes().all(|b| b.is_ascii_graphic());
            if !kid_ok {
                return Err(KeySetError::BadKid(key.kid.clone()));
            }
            if !seen.insert(key.kid.as_str()) {
                return Err(KeySetError::DuplicateKid(key.kid.clone()));
            }
            key.public_jwk()?;
        }
        let mut algs = std::collections::HashSet::new();
        for key in self.active_keys() {
            if !algs.insert(key.alg) {
                return Err(KeySetError::TwoActive(key.alg));
            }
        }
        match (self.access_token_alg, algs.len()) {
            (_, 0) => Err(KeySetError::NoActiveKey),
            (Some(alg), _) if !algs.contains(&alg) => Err(KeySetError::AccessAlgNotActive(alg)),
            (None, n) if n > 1 => Err(KeySetError::AmbiguousAccessAlg),
            _ => Ok(()),
        }
    }

    /// Every `active` key (one per algorithm in a valid set).
    pub fn active_keys(&self) -> impl Iterator<Item = &KeyEntry> {
        self.keys.iter().filter(|k| k.state == KeyState::Active)
    }

    /// The key that signs access tokens: the active key of `accessTokenAlg`,
    /// or the only active key. Present whenever [`KeySetFile::validate`] passed.
    #[must_use]
    pub fn access_token_key(&self) -> Option<&KeyEntry> {
        match self.access_token_alg {
            Some(alg) => self.active_keys().find(|k| k.alg == alg),
            None => self.active_keys().next(),
        }
    }

    /// The key that signs ID tokens: the active RS256 key when there is one,
    /// else the access-token key.
    #[must_use]
    pub fn id_token_key(&self) -> Option<&KeyEntry> {
        self.active_keys()
            .find(|k| k.alg == SigningAlgorithm::RS256)
            .or_else(|| self.access_token_key())
    }

    /// The access-token key (the name from before the RS256 track; see
    /// [`KeySetFile::access_token_key`]).
    #[must_use]
    pub fn active(&self) -> Option<&KeyEntry> {
        self.access_token_key()
    }

    /// The public JWKS of every key in the set (next, active and retiring).
    ///
    /// # Errors
    /// When a private key does not parse.
    pub fn jwks(&self) -> Result<JwkSet, KeySetError> {
        let keys = self
            .keys
            .iter()
            .map(KeyEntry::public_jwk)
            .collect::<Result<_, _>>()?;
        Ok(JwkSet { keys })
    }

    /// Serialises the set as pretty JSON (the Secret's content).
    ///
    /// # Errors
    /// Only if serialisation fails, which it does not for these types.
    pub fn to_json(&self) -> Result<Vec<u8>, KeySetError> {
        serde_json::to_vec_pretty(&SerializeSecrets(self)).map_err(KeySetError::Json)
    }
}

/// Serialises a key set with private keys included (only for writing the file).
struct SerializeSecrets<'a>(&'a KeySetFile);

impl Serialize for SerializeSecrets<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Entry<'a> {
            kid: &'a str,
            alg: SigningAlgorithm,
            state: KeyState,
            private_key_pem: &'a str,
            created_at: i64,
            #[serde(skip_serializing_if = "Option::is_none")]
            activated_at: Option<i64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            retired_at: Option<i64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            remove_after: Option<i64>,
        }
        #[derive(Serialize)]
        struct File<'a> {
            version: u32,
            #[serde(rename = "accessTokenAlg", skip_serializing_if = "Option::is_none")]
            access_token_alg: Option<SigningAlgorithm>,
            keys: Vec<Entry<'a>>,
        }
        File {
            version: self.0.version,
            access_token_alg: self.0.access_token_alg,
            keys: self
                .0
                .keys
                .iter()
                .map(|k| Entry {
                    kid: &k.kid,
                    alg: k.alg,
                    state: k.state,
                    private_key_pem: k.private_key_pem.expose_secret(),
                    created_at: k.created_at,
                    activated_at: k.activated_at,
                    retired_at: k.retired_at,
                    remove_after: k.remove_after,
                })
                .collect(),
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(keys: Vec<KeyEntry>) -> KeySetFile {
        KeySetFile::new(keys)
    }

    #[test]
    fn generated_sets_round_trip_for_every_algorithm() -> Result<(), KeySetError> {
        for alg in [
            SigningAlgorithm::EdDSA,
            SigningAlgorithm::ES256,
            SigningAlgorithm::RS256,
        ] {
            let set = set_of(vec![
                KeyEntry::generate(alg, "a".into(), KeyState::Active, 100)?,
                KeyEntry::generate(alg, "n".into(), KeyState::Next, 100)?,
            ]);
            let bytes = set.to_json()?;
            let back = KeySetFile::parse(&bytes)?;
            assert_eq!(back.active().map(|k| k.kid.as_str()), Some("a"));
            assert_eq!(back.jwks()?, set.jwks()?);
            assert_eq!(back.jwks()?.keys.len(), 2);
            back.active().map(KeyEntry::encoding_key).transpose()?;
        }
        Ok(())
    }

    #[test]
    fn invalid_sets_are_refused_with_the_reason() -> Result<(), KeySetError> {
        let a = || KeyEntry::generate(SigningAlgorithm::EdDSA, "a".into(), KeyState::Active, 1);
        let two_active = set_of(vec![
            a()?,
            KeyEntry::generate(SigningAlgorithm::EdDSA, "b".into(), KeyState::Active, 1)?,
        ]);
        assert!(matches!(
            KeySetFile::parse(&two_active.to_json()?),
            Err(KeySetError::TwoActive(SigningAlgorithm::EdDSA))
        ));
        assert!(matches!(
            KeySetFile::parse(&set_of(vec![]).to_json()?),
            Err(KeySetError::NoActiveKey)
        ));
        let dup = set_of(vec![
            a()?,
            KeyEntry::generate(SigningAlgorithm::EdDSA, "a".into(), KeyState::Next, 1)?,
        ]);
        assert!(matches!(
            KeySetFile::parse(&dup.to_json()?),
            Err(KeySetError::DuplicateKid(_))
        ));
        let mut wrong_alg = a()?;
        wrong_alg.alg = SigningAlgorithm::ES256;
        assert!(matches!(
            KeySetFile::parse(&set_of(vec![wrong_alg]).to_json()?),
            Err(KeySetError::BadKey { .. })
        ));
        let mut bad_kid = a()?;
        bad_kid.kid = "has space".into();
        assert!(matches!(
            KeySetFile::parse(&set_of(vec![bad_kid]).to_json()?),
            Err(KeySetError::BadKid(_))
        ));
        let mut v2 = set_of(vec![a()?]);
        v2.version = 2;
        assert!(matches!(
            KeySetFile::parse(&v2.to_json()?),
            Err(KeySetError::Version(2))
        ));
        assert!(matches!(
            KeySetFile::parse(b"{\"version\":1,\"keys\":[{\"kid\":"),
            Err(KeySetError::Json(_))
        ));
        Ok(())
    }

    #[test]
    fn an_rs256_track_beside_the_realm_algorithm() -> Result<(), KeySetError> {
        let gen_key = |alg, kid: &str, state| KeyEntry::generate(alg, kid.into(), state, 1);
        let ed = gen_key(SigningAlgorithm::EdDSA, "ed", KeyState::Active)?;
        let ed_next = gen_key(SigningAlgorithm::EdDSA, "ed-next", KeyState::Next)?;
        let rs = gen_key(SigningAlgorithm::RS256, "rs", KeyState::Active)?;
        let mut both = set_of(vec![ed.clone(), ed_next, rs.clone()]);
        // Two active keys and nothing saying which signs access tokens: refused.
        assert!(matches!(
            KeySetFile::parse(&both.to_json()?),
            Err(KeySetError::AmbiguousAccessAlg)
        ));
        both.access_token_alg = Some(SigningAlgorithm::EdDSA);
        let json = both.to_json()?;
        assert!(String::from_utf8_lossy(&json).contains("\"accessTokenAlg\": \"EdDSA\""));
        let back = KeySetFile::parse(&json)?;
        assert_eq!(back.access_token_key().map(|k| k.kid.as_str()), Some("ed"));
        assert_eq!(back.active().map(|k| k.kid.as_str()), Some("ed"));
        assert_eq!(back.id_token_key().map(|k| k.kid.as_str()), Some("rs"));
        assert_eq!(back.jwks()?.keys.len(), 3);
        // The RS256 track may sign access tokens too.
        both.access_token_alg = Some(SigningAlgorithm::RS256);
        let rs_only = KeySetFile::parse(&both.to_json()?)?;
        assert_eq!(
            rs_only.access_token_key().map(|k| k.kid.as_str()),
            Some("rs")
        );
        // accessTokenAlg naming an algorithm without an active key: refused.
        let mut missing = set_of(vec![ed.clone()]);
        missing.access_token_alg = Some(SigningAlgorithm::ES256);
        assert!(matches!(
            KeySetFile::parse(&missing.to_json()?),
            Err(KeySetError::AccessAlgNotActive(SigningAlgorithm::ES256))
        ));
        // Two active keys of one algorithm, even with accessTokenAlg: refused.
        let mut two = set_of(vec![
            ed.clone(),
            rs,
            gen_key(SigningAlgorithm::RS256, "rs2", KeyState::Active)?,
        ]);
        two.access_token_alg = Some(SigningAlgorithm::EdDSA);
        assert!(matches!(
            KeySetFile::parse(&two.to_json()?),
            Err(KeySetError::TwoActive(SigningAlgorithm::RS256))
        ));
        // A file written before the RS256 track (one active key, no
        // accessTokenAlg) means what it meant: that key signs everything.
        let old = KeySetFile::parse(&set_of(vec![ed]).to_json()?)?;
        assert!(old.access_token_alg.is_none());
        assert_eq!(old.access_token_key().map(|k| k.kid.as_str()), Some("ed"));
        assert_eq!(old.id_token_key().map(|k| k.kid.as_str()), Some("ed"));
        Ok(())
    }

    #[test]
    fn debug_output_never_contains_the_private_key() -> Result<(), KeySetError> {
        let k = KeyEntry::generate(SigningAlgorithm::EdDSA, "a".into(), KeyState::Active, 1)?;
        let shown = format!("{k:?} {:?}", set_of(vec![k.clone()]));
        assert!(!shown.contains("PRIVATE KEY"));
        assert!(
            !shown.contains(
                k.private_key_pem
                    .expose_secret()
                    .lines()
                    .nth(1)
                    .unwrap_or("x")
            )
        );
        Ok(())
    }
}
