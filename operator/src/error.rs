//! The operator's one error type: what makes a reconcile fail and be retried
//! with backoff. A bad spec or a missing Secret is not an error: it is a
//! [`crate::dereference::Blocked`] reported in status.

/// The operator's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[source] kube::Error),
    /// Key generation or the key-set invariants failed.
    #[error("signing keys: {0}")]
    Keys(#[source] authrealm_tokens::KeySetError),
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
    /// An object could not be serialised for the API.
    #[error("cannot serialise {kind}: {source}")]
    Serialize {
        /// What was being serialised.
        kind: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The client registry could not be built (names the client, never a secret).
    #[error("client registry: {0}")]
    Registry(String),
    /// The realm has no namespace (it is a namespaced resource; the API never sends this).
    #[error("the AuthRealm has no namespace")]
    NoNamespace,
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Self::Kube(e)
    }
}
