//! A confidential client's secret: generated once, kept while its Secret
//! exists, replaced on a new `authrealm.io/rotate-secret` value with the old
//! one's hash kept until the overlap window ends. Pure: the caller reads the
//! Secret and supplies fresh randomness.

use authrealm_tokens::clients::{SecretHash, hash_secret};
use k8s_openapi::api::core::v1::Secret;

use super::validate::Refused;
use super::{
    CLIENT_SECRET_KEY, MIN_SECRET_LEN, PREVIOUS_HASH_ANNOTATION, PREVIOUS_NOT_AFTER_ANNOTATION,
    ROTATE_HANDLED_ANNOTATION,
};

/// What an existing client Secret holds.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Stored {
    /// The current secret, if the key is there.
    pub secret: Option<String>,
    /// The rotate request already served.
    pub handled: Option<String>,
    /// The previous secret's hash and end, after a rotation.
    pub previous: Option<SecretHash>,
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stored")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("handled", &self.handled)
            .field("previous", &self.previous)
            .finish()
    }
}

impl Stored {
    /// Reads a client Secret as the API server returned it.
    #[must_use]
    pub fn read(s: &Secret) -> Self {
        let ann = s.metadata.annotations.clone().unwrap_or_default();
        let secret = s
            .data
            .as_ref()
            .and_then(|d| d.get(CLIENT_SECRET_KEY))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned());
        let previous = match (
            ann.get(PREVIOUS_HASH_ANNOTATION),
            ann.get(PREVIOUS_NOT_AFTER_ANNOTATION)
                .and_then(|t| t.parse::<i64>().ok()),
        ) {
            (Some(h), Some(t)) => Some(SecretHash {
                sha256: h.clone(),
                not_after: Some(t),
            }),
            _ => None,
        };
        Self {
            secret,
            handled: ann.get(ROTATE_HANDLED_ANNOTATION).cloned(),
            previous,
        }
    }
}

/// The secret material to write, and what the registry gets.
#[derive(Clone, PartialEq, Eq)]
pub struct Material {
    /// The current secret.
    pub secret: String,
    /// The rotate request served (recorded on the Secret).
    pub handled: Option<String>,
    /// The previous secret's hash while its window is open.
    pub previous: Option<SecretHash>,
    /// Whether this step generated a new secret.
    pub generated: bool,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("secret", &"<redacted>")
            .field("handled", &self.handled)
            .field("previous", &self.previous)
            .field("generated", &self.generated)
            .finish()
    }
}

impl Material {
    /// The hashes MA accepts: the current secret without end, the previous
    /// one until its window closes.
    #[must_use]
    pub fn hashes(&self) -> Vec<SecretHash> {
        let mut h = vec![SecretHash {
            sha256: hash_secret(&self.secret),
            not_after: None,
        }];
        h.extend(self.previous.clone());
        h
    }
}

/// Decides the secret of a client whose Secret holds `stored` (`None`: no
/// Secret yet), given the rotate request, the overlap window and `now`.
/// `fresh` is called only when a new secret is needed.
///
/// # Errors
/// `fresh`'s error. A Secret without a usable secret is `Ok(Err(Refused))`:
/// the operator never overwrites it.
pub fn plan<E>(
    secret_name: &str,
    stored: Option<Stored>,
    request: Option<&str>,
    overlap_secs: i64,
    now: i64,
    fresh: impl FnOnce() -> Result<String, E>,
) -> Result<Result<Material, Refused>, E> {
    let Some(stored) = stored else {
        return Ok(Ok(Material {
            secret: fresh()?,
            handled: request.map(str::to_owned),
            previous: None,
            generated: true,
        }));
    };
    let Some(current) = stored.secret.filter(|s| s.len() >= MIN_SECRET_LEN) else {
        return Ok(Err(Refused {
            reason: "SecretInvalid",
            message: format!(
                "Secret {secret_name} has no usable {CLIENT_SECRET_KEY} ({MIN_SECRET_LEN} characters at least); the operator never replaces it: delete the Secret to generate a new one"
            ),
        }));
    };
    if let Some(r) = request
        && stored.handled.as_deref() != Some(r)
    {
        return Ok(Ok(Material {
            previous: Some(SecretHash {
                sha256: hash_secret(&current),
                not_after: Some(now.saturating_add(overlap_secs)),
            }),
            secret: fresh()?,
            handled: Some(r.to_owned()),
            generated: true,
        }));
    }
    Ok(Ok(Material {
        secret: current,
        handled: stored.handled,
        previous: stored
            .previous
            .filter(|p| p.not_after.is_some_and(|t| now <= t)),
        generated: false,
    }))
}
