//! The `AuthRealm` custom resource (`authrealm.io/v1alpha1`): spec, status and
//! their defaults. Doc comments here become the CRD's descriptions, i.e. what
//! `kubectl explain authrealm.spec...` prints.

use std::collections::BTreeMap;

use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Annotation on an `AuthRealm`: setting it to a new value rotates the signing
/// key now (the new key still waits until it has been published for `prePublish`).
pub const ROTATE_ANNOTATION: &str = "authrealm.io/rotate-keys";

/// The auth-service (MA) image of this operator's release: what a realm
/// runs when it does not pin `authService.image` (the chart passes the same
/// through `--auth-service-image`).
pub const DEFAULT_AUTH_SERVICE_IMAGE: &str =
    concat!("authrealm/auth-service:", env!("CARGO_PKG_VERSION"));
/// The main-project (OP) image of this operator's release.
pub const DEFAULT_MAIN_PROJECT_IMAGE: &str =
    concat!("authrealm/main-project:", env!("CARGO_PKG_VERSION"));
/// Default image of the managed Redis.
pub const DEFAULT_REDIS_IMAGE: &str = "redis:7.4-alpine";

/// Longest realm name: child names append at most 20 characters
/// (`-main-project-config`) and must stay within a 63-character DNS label.
pub const MAX_NAME_LEN: usize = 40;

/// One authentication realm: the auth service (MA) that signs tokens, the main
/// project (OP) that logs users in and verifies tokens, their Redis and
/// database wiring, and the signing keys the operator generates and rotates.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "authrealm.io",
    version = "v1alpha1",
    kind = "AuthRealm",
    namespaced,
    shortname = "realm",
    status = "AuthRealmStatus",
    derive = "PartialEq",
    doc = "An authentication realm: auth-service, main-project, their Redis and database wiring, and rotating signing keys.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the realm is fully reconciled and both services are available"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = "1"
    ),
    printcolumn(
        name = "Active Key",
        type_ = "string",
        json_path = ".status.activeKeyId",
        description = "Key id (kid) that signs new tokens"
    ),
    printcolumn(
        name = "Next Rotation",
        type_ = "string",
        json_path = ".status.nextRotationTime",
        description = "When the next key starts signing (RFC 3339; a date column would print <invalid> for a future time)",
        priority = "1"
    ),
    printcolumn(
        name = "Issuer",
        type_ = "string",
        json_path = ".status.issuer",
        description = "The iss claim of the realm's tokens",
        priority = "1"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 40").message("metadata.name must be at most 40 characters (child object names are derived from it)")
)]
#[serde(rename_all = "camelCase")]
pub struct AuthRealmSpec {
    /// Token contents shared by both services: issuer, audience and lifetimes.
    #[serde(default)]
    pub tokens: TokensSpec,
    /// The auth service (MA): signs tokens, serves the JWKS, rotates refresh tokens.
    #[serde(default = "ServiceSpec::auth_service")]
    pub auth_service: ServiceSpec,
    /// The main project (OP): registration, login and the protected API.
    #[serde(default = "ServiceSpec::main_project")]
    pub main_project: ServiceSpec,
    /// Where the main project keeps its users: Postgres (recommended) or embedded SQLite.
    #[serde(default)]
    pub database: DatabaseSpec,
    /// The Redis both services share (revocation list, refresh-token families, rate limits).
    #[serde(default)]
    pub redis: RedisSpec,
    /// How signing keys are generated and rotated.
    #[serde(default)]
    pub signing_keys: SigningKeysSpec,
    /// Which pods may reach the auth service's port.
    #[serde(default)]
    pub network_policy: NetworkPolicySpec,
    /// Prometheus Operator scraping of the realm's pods.
    #[serde(default)]
    pub monitoring: MonitoringSpec,
    /// Where the realm's `AuthClient`s may live, and OP's public URL for the code flow.
    #[serde(default)]
    pub clients: ClientsSpec,
    /// An Ingress `<realm>` for one host routing MA's and OP's public endpoints
    /// (discovery, JWKS, `/oauth2/*`, `/api/*`; never an internal or metrics
    /// port). Unless set, `tokens.issuer` and `clients.publicUrl` become
    /// `https://<host>` (`http://` without `tlsSecretName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
}

/// Per-realm monitoring with the Prometheus Operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// Create a PodMonitor `<realm>` (needs the `monitoring.coreos.com/v1`
    /// CRDs) that scrapes `/metrics` of MA and OP on their metrics ports, and
    /// of a `redis_exporter` sidecar the managed Redis then gets.
    #[serde(default)]
    pub pod_monitor: bool,
    /// Labels of the PodMonitor, e.g. the ones your Prometheus selects by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Scrape interval, e.g. `30s`.
    #[serde(default = "default_scrape_interval")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+[smh])+$"))]
    pub interval: String,
    /// Image of the Redis metrics exporter sidecar.
    #[serde(default = "default_redis_exporter_image")]
    #[schemars(length(min = 1, max = 512))]
    pub redis_exporter_image: String,
}

impl Default for MonitoringSpec {
    fn default() -> Self {
        Self {
            pod_monitor: false,
            labels: BTreeMap::new(),
            interval: default_scrape_interval(),
            redis_exporter_image: default_redis_exporter_image(),
        }
    }
}

fn default_scrape_interval() -> String {
    "30s".to_owned()
}

/// Default image of the Redis metrics exporter sidecar.
pub const DEFAULT_REDIS_EXPORTER_IMAGE: &str = "oliver006/redis_exporter:v1.67.0";

fn default_redis_exporter_image() -> String {
    DEFAULT_REDIS_EXPORTER_IMAGE.to_owned()
}

impl Default for AuthRealmSpec {
    /// The spec of `spec: {}`: every default applied.
    fn default() -> Self {
        Self {
            tokens: TokensSpec::default(),
            auth_service: ServiceSpec::auth_service(),
            main_project: ServiceSpec::main_project(),
            database: DatabaseSpec::default(),
            redis: RedisSpec::default(),
            signing_keys: SigningKeysSpec::default(),
            network_policy: NetworkPolicySpec::default(),
            monitoring: MonitoringSpec::default(),
            clients: ClientsSpec::default(),
            ingress: None,
        }
    }
}

/// Issuer, audience and lifetimes of the tokens the realm issues.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TokensSpec {
    /// The `iss` claim. Defaults to the public URL of `ingress` when it is
    /// set (`https://<host>`), else to the in-cluster URL of the auth service
    /// (`http://<realm>-auth-service.<namespace>.svc:8081`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub issuer: Option<String>,
    /// The `aud` claim. Defaults to the realm's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub audience: Option<String>,
    /// Lifetime of an access token, e.g. `5m`. Units: s, m, h, d.
    #[serde(default = "default_access_ttl")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub access_token_ttl: String,
    /// How long an unused refresh token stays valid, e.g. `30d`.
    #[serde(default = "default_refresh_ttl")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub refresh_token_ttl: String,
    /// How long verifiers may cache the JWKS (MA's `Cache-Control: max-age`),
    /// e.g. `5m`. `signingKeys.prePublish` must be at least this plus two minutes.
    #[serde(default = "default_jwks_max_age")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub jwks_max_age: String,
    /// Clock difference the verifiers tolerate on `exp`/`nbf`, e.g. `60s`. A
    /// retired key stays published for the access-token lifetime plus this
    /// plus two minutes for the Secret to reach the pods.
    #[serde(default = "default_clock_skew")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub clock_skew: String,
}

impl Default for TokensSpec {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: None,
            access_token_ttl: default_access_ttl(),
            refresh_token_ttl: default_refresh_ttl(),
            jwks_max_age: default_jwks_max_age(),
            clock_skew: default_clock_skew(),
        }
    }
}

fn default_access_ttl() -> String {
    "5m".to_owned()
}
fn default_jwks_max_age() -> String {
    "5m".to_owned()
}
fn default_refresh_ttl() -> String {
    "30d".to_owned()
}
fn default_clock_skew() -> String {
    "60s".to_owned()
}

/// One of the realm's two services.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Container image, e.g. `registry.example/authrealm/auth-service:0.1.0`.
    /// Leave it unset to run the version the operator ships with: upgrading
    /// the operator then rolls this realm to the new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// Image pull policy. Defaults to the Kubernetes default for the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// Number of pods. With more than one, a PodDisruptionBudget keeps one available.
    /// The embedded SQLite database allows only one main-project pod.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 100))]
    pub replicas: i32,
    /// CPU and memory requests and limits of the container.
    #[serde(default)]
    pub resources: ResourcesSpec,
}

impl ServiceSpec {
    /// Defaults of the auth service.
    #[must_use]
    pub fn auth_service() -> Self {
        Self {
            image: None,
            image_pull_policy: None,
            replicas: 1,
            resources: ResourcesSpec::default(),
        }
    }

    /// Defaults of the main project.
    #[must_use]
    pub fn main_project() -> Self {
        Self::auth_service()
    }
}

fn one() -> i32 {
    1
}

/// Kubernetes image pull policy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull on every pod start.
    Always,
    /// Pull only when the image is not on the node.
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// Container resources as Kubernetes quantities (`cpu: 100m`, `memory: 128Mi`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesSpec {
    /// Requested resources (scheduling). Defaults: `cpu: 50m`, `memory: 64Mi`.
    #[serde(default = "default_requests")]
    pub requests: BTreeMap<String, String>,
    /// Hard limits. Default: `memory: 256Mi` (no CPU limit, to avoid throttling).
    #[serde(default = "default_limits")]
    pub limits: BTreeMap<String, String>,
}

impl Default for ResourcesSpec {
    fn default() -> Self {
        Self {
            requests: default_requests(),
            limits: default_limits(),
        }
    }
}

fn default_requests() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cpu".to_owned(), "50m".to_owned()),
        ("memory".to_owned(), "64Mi".to_owned()),
    ])
}
fn default_limits() -> BTreeMap<String, String> {
    BTreeMap::from([("memory".to_owned(), "256Mi".to_owned())])
}

/// A key of a Secret in the realm's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret (same namespace as the realm).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret whose value is the URL.
    #[serde(default = "default_url_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_url_key() -> String {
    "url".to_owned()
}

/// The main project's database. Set `postgres` for anything beyond a trial;
/// without it, an embedded SQLite file is used (one main-project pod only).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.postgres) && has(self.embedded))").message("database: set either postgres or embedded, not both"))]
pub struct DatabaseSpec {
    /// Secret key holding a Postgres URL (`postgres://user:pass@host:5432/db`).
    /// Passed to the main project as `AUTHREALM_DATABASE_URL`; never copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<SecretKeyRef>,
    /// Embedded SQLite (the default when `postgres` is not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded: Option<EmbeddedDatabase>,
}

/// Embedded SQLite storage for a single-pod trial.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedDatabase {
    /// An existing PersistentVolumeClaim to keep the SQLite file on. Without
    /// it the file lives in an `emptyDir` and is lost when the pod is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub claim_name: Option<String>,
}

/// Redis for the revocation list, refresh-token families and rate limits:
/// `managed` (the default, when neither is set) or `external`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.managed) && has(self.external))").message("redis: set either managed or external, not both"))]
pub struct RedisSpec {
    /// The operator runs one Redis pod for the realm (password generated once
    /// into a Secret). Its data survives container restarts, not pod deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedRedis>,
    /// Secret key holding the URL of a Redis you run (`redis://:pass@host:6379/0`
    /// or `rediss://...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<SecretKeyRef>,
}

/// Settings of the operator-managed Redis.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedRedis {
    /// Redis image.
    #[serde(default = "default_redis_image")]
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// CPU and memory of the Redis container.
    #[serde(default)]
    pub resources: ResourcesSpec,
    /// Where Redis keeps its append-only file (revocations, refresh-token
    /// families). Default: a PersistentVolumeClaim of 1Gi, so the data
    /// outlives the pod.
    #[serde(default)]
    pub storage: RedisStorage,
}

impl Default for ManagedRedis {
    fn default() -> Self {
        Self {
            image: default_redis_image(),
            resources: ResourcesSpec::default(),
            storage: RedisStorage::default(),
        }
    }
}

/// The managed Redis's volume.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RedisStorage {
    /// `PersistentVolumeClaim` (the default: the operator creates
    /// `<realm>-redis-data`, deleted with the realm), or `EmptyDir` for a
    /// trial only: the data is lost whenever the Redis pod is replaced, and
    /// with it every revocation and refresh-token family (users log in again,
    /// and a revoked token that has not expired is accepted again unless
    /// the services still hold it).
    #[serde(default, rename = "type")]
    pub type_: StorageType,
    /// Size of the claim, e.g. `1Gi` (it can grow later, never shrink).
    #[serde(default = "default_redis_size")]
    #[schemars(length(min = 1, max = 32))]
    pub size: String,
    /// Storage class of the claim; unset = the cluster's default class.
    /// Fixed once the claim exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
}

impl Default for RedisStorage {
    fn default() -> Self {
        Self {
            type_: StorageType::default(),
            size: default_redis_size(),
            storage_class_name: None,
        }
    }
}

fn default_redis_size() -> String {
    "1Gi".to_owned()
}

/// Kind of volume for the managed Redis.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StorageType {
    /// A PersistentVolumeClaim that outlives the pod.
    #[default]
    PersistentVolumeClaim,
    /// An emptyDir: lost with the pod (trials only).
    EmptyDir,
}

fn default_redis_image() -> String {
    DEFAULT_REDIS_IMAGE.to_owned()
}

/// Signing-key generation and rotation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(self.prePublish.matches('^([0-9]+[smh])+$') && self.rotationInterval.matches('^([0-9]+[smh])+$')) || duration(self.prePublish) < duration(self.rotationInterval)").message("signingKeys.prePublish must be shorter than signingKeys.rotationInterval"))]
pub struct SigningKeysSpec {
    /// Signature algorithm of new keys: `EdDSA` (Ed25519, default), `ES256` or `RS256`.
    /// Changing it takes effect at the next rotation.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// How long a key signs before the next one takes over, e.g. `30d`.
    #[serde(default = "default_rotation_interval")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub rotation_interval: String,
    /// How long a new key is published in the JWKS (state `next`) before it
    /// signs, e.g. `1h`. Must cover the verifiers' JWKS cache lifetime plus
    /// the time a Secret change takes to reach the pods (about a minute).
    #[serde(default = "default_pre_publish")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub pre_publish: String,
    /// Key ids to remove at once (emergency). Tokens they signed stop
    /// verifying; a revoked id is never used again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub revoked_key_ids: Vec<String>,
}

impl Default for SigningKeysSpec {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::default(),
            rotation_interval: default_rotation_interval(),
            pre_publish: default_pre_publish(),
            revoked_key_ids: Vec::new(),
        }
    }
}

fn default_rotation_interval() -> String {
    "30d".to_owned()
}
fn default_pre_publish() -> String {
    "1h".to_owned()
}

/// Signature algorithm of the realm's keys.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// Ed25519.
    #[default]
    EdDSA,
    /// ECDSA P-256 / SHA-256.
    ES256,
    /// RSA 2048 PKCS#1 v1.5 / SHA-256.
    RS256,
}

impl From<Algorithm> for authrealm_tokens::SigningAlgorithm {
    fn from(a: Algorithm) -> Self {
        match a {
            Algorithm::EdDSA => Self::EdDSA,
            Algorithm::ES256 => Self::ES256,
            Algorithm::RS256 => Self::RS256,
        }
    }
}

/// The NetworkPolicy in front of the auth service.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Create the NetworkPolicy that lets only main-project pods (and
    /// `extraAuthServicePeers`) reach the auth service's port 8081.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// More sources allowed to reach port 8081, e.g. an API gateway that
    /// fetches the JWKS or Prometheus scraping `/metrics`. NetworkPolicy works
    /// per port, so these can reach `/v1` too; it still requires the service credential.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_auth_service_peers: Vec<PeerSpec>,
}

impl Default for NetworkPolicySpec {
    fn default() -> Self {
        Self {
            enabled: true,
            extra_auth_service_peers: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// Pods selected by labels; both selectors set means pods matching
/// `podLabels` in namespaces matching `namespaceLabels`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.podLabels) || has(self.namespaceLabels)").message("a peer needs podLabels, namespaceLabels or both"))]
pub struct PeerSpec {
    /// Labels of the allowed pods (in the realm's namespace unless `namespaceLabels` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_labels: Option<BTreeMap<String, String>>,
    /// Labels of the namespaces whose pods are allowed (`{}` = every namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_labels: Option<BTreeMap<String, String>>,
}

mod client;
mod ingress;
mod status;
pub use client::{
    AuthClient, AuthClientSpec, AuthClientStatus, ClientGrant, ClientKind, ClientsSpec,
    ROTATE_SECRET_ANNOTATION, RealmRef, client_crd_yaml,
};
pub use ingress::IngressSpec;
pub use status::{AuthRealmStatus, Condition, ImagesStatus, KeyStatus};

/// The CRD as YAML, exactly as `crds/authrealm.yaml` holds it.
///
/// # Errors
/// Only if YAML serialisation fails.
pub fn crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let body = serde_saphyr::to_string(&AuthRealm::crd())?;
    Ok(format!(
        "# Generated by `cargo run -p operator --bin crdgen`; do not edit.\n{body}"
    ))
}

#[cfg(test)]
mod tests;
