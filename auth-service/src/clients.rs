//! The OAuth client registry as MA holds it: `clients.json` from the
//! mounted directory (`AUTHREALM_CLIENTS_DIR`, the operator's Secret),
//! loaded at start and polled like the key set. A changed valid file is
//! swapped in atomically; a refused or unreadable one keeps the last good
//! registry, is counted and logged (with the client's id and the rule it
//! breaks — the file holds no secret). No directory, or no file in it, means
//! no clients: every OAuth request is refused, nothing else changes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use authrealm_tokens::clients::{ClientEntry, ClientRegistryFile, FILE_NAME, FORMAT_VERSION};
use authrealm_tokens::digest::sha256;

use crate::metrics::Metrics;
use crate::reload::{self, Content};

/// One loaded registry, indexed by client id. Immutable; replaced whole.
#[derive(Debug, Default)]
pub struct Registry {
    clients: HashMap<String, ClientEntry>,
    /// Every scope some client may be granted, sorted, each once.
    scopes: Vec<String>,
    /// SHA-256 of the file it came from (`None`: no file).
    digest: Option<[u8; 32]>,
}

impl Registry {
    /// A registry of the clients of a validated file.
    #[must_use]
    pub fn from_file(file: ClientRegistryFile, digest: Option<[u8; 32]>) -> Self {
        let mut scopes: Vec<String> = file
            .clients
            .iter()
            .flat_map(|c| c.scopes.iter().cloned())
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        let clients = file
            .clients
            .into_iter()
            .map(|c| (c.client_id.clone(), c))
            .collect();
        Self {
            clients,
            scopes,
            digest,
        }
    }

    /// Parses the bytes of a `clients.json`.
    ///
    /// # Errors
    /// The first rule the file breaks; nothing is partially accepted.
    pub fn from_bytes(
        bytes: &[u8],
    ) -> Result<Self, authrealm_tokens::clients::ClientRegistryError> {
        let file = ClientRegistryFile::parse(bytes)?;
        Ok(Self::from_file(file, Some(sha256(bytes))))
    }

    /// The client with this id.
    #[must_use]
    pub fn get(&self, client_id: &str) -> Option<&ClientEntry> {
        self.clients.get(client_id)
    }

    /// How many clients there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether there is no client.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Every scope some client may be granted.
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether some client may use `grant`.
    #[must_use]
    pub fn any_allows(&self, grant: authrealm_tokens::clients::GrantType) -> bool {
        self.clients.values().any(|c| c.allows(grant))
    }
}

/// The current registry, swapped atomically on reload. Readers take an
/// `Arc` clone and keep it for the rest of their request.
#[derive(Debug, Default)]
pub struct ClientRing {
    current: RwLock<Arc<Registry>>,
}

impl ClientRing {
    /// A ring holding `registry`.
    #[must_use]
    pub fn new(registry: Registry) -> Self {
        Self {
            current: RwLock::new(Arc::new(registry)),
        }
    }

    /// The current registry.
    #[must_use]
    pub fn snapshot(&self) -> Arc<Registry> {
        let guard = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(&guard)
    }

    /// Replaces the current registry.
    pub fn replace(&self, registry: Registry) {
        let mut guard = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = Arc::new(registry);
    }
}

/// Path of the registry file in a clients directory.
#[must_use]
pub fn registry_path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// An empty registry (no file).
#[must_use]
pub fn empty() -> Registry {
    Registry::from_file(
        ClientRegistryFile {
            version: FORMAT_VERSION,
            clients: Vec::new(),
        },
        None,
    )
}

/// Loads the registry at start. A missing directory or file is no clients;
/// a file that cannot be read or is refused is logged and counted, and the
/// service starts with no clients (it picks the file up once it is fixed):
/// a broken registry must not take the realm's login down with it.
#[must_use]
pub fn load_dir(dir: &Path, metrics: &Metrics) -> Registry {
    let path = registry_path(dir);
    match std::fs::read(&path) {
        Ok(bytes) => match Registry::from_bytes(&bytes) {
            Ok(r) => {
                metrics.client_reload_ok.inc();
                tracing::info!(path = %path.display(), clients = r.len(), "client registry loaded");
                r
            }
            Err(e) => {
                metrics.client_reload_failed.inc();
                tracing::error!(path = %path.display(), error = %e,
                    "client registry refused; starting with no OAuth clients");
                Registry {
                    digest: Some(sha256(&bytes)),
                    ..empty()
                }
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(path = %path.display(), "no client registry: no OAuth clients");
            empty()
        }
        Err(e) => {
            metrics.client_reload_failed.inc();
            tracing::error!(path = %path.display(), error = %e,
                "cannot read the client registry; starting with no OAuth clients");
            empty()
        }
    }
}

/// Polls the clients directory every `interval`: a changed valid file is
/// swapped in; a file that disappears leaves no clients (the operator
/// deleted the registry); a refused or unreadable one keeps the last good
/// registry and is counted.
pub async fn watch_dir(
    ring: Arc<ClientRing>,
    dir: PathBuf,
    interval: Duration,
    metrics: Arc<Metrics>,
) {
    let path = registry_path(&dir);
    let shown = path.display().to_string();
    let initial = ring.snapshot().digest;
    reload::poll(path, interval, initial, move |content| {
        let previous = ring.snapshot().len();
        match content {
            Content::Bytes(bytes) => match Registry::from_bytes(&bytes) {
                Ok(next) => {
                    let clients = next.len();
                    ring.replace(next);
                    metrics.client_reload_ok.inc();
                    tracing::info!(path = %shown, clients, previous, "client registry reloaded");
                }
                Err(e) => {
                    metrics.client_reload_failed.inc();
                    tracing::error!(path = %shown, error = %e, clients = previous,
                        "new client registry refused; keeping the current clients");
                }
            },
            Content::Missing => {
                ring.replace(empty());
                metrics.client_reload_ok.inc();
                tracing::warn!(path = %shown, previous, "client registry removed: no OAuth clients");
            }
            Content::Unreadable(e) => {
                metrics.client_reload_failed.inc();
                tracing::error!(path = %shown, error = %e, clients = previous,
                    "cannot read the client registry; keeping the current clients");
            }
        }
    })
    .await;
}
