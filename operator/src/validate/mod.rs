//! Operator-side validation of an `AuthRealm`: what the CRD schema and its
//! CEL rules cannot say (or what a cluster without them lets through). The
//! result is a [`ValidRealm`] holding everything the build step needs, with
//! every duration parsed and every default applied, or an [`InvalidSpec`]
//! naming the offending field. The build step reads only the [`ValidRealm`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use authrealm_tokens::duration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};

use crate::children::{Component, service_url};
use crate::crd::{
    AuthRealm, AuthRealmSpec, MAX_NAME_LEN, ManagedRedis, MonitoringSpec, PeerSpec, PullPolicy,
    ROTATE_ANNOTATION, ResourcesSpec, SecretKeyRef, ServiceSpec,
};
use crate::keys::KeyPolicy;

/// How long a change to a mounted Secret may take to reach a pod (kubelet
/// sync period plus its cache) and be reloaded. A retired key stays published
/// this much longer, because MA may go on signing with it until it sees the
/// new key set.
pub const SECRET_PROPAGATION: Duration = Duration::from_secs(120);

/// A spec the operator refuses, with the field that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSpec {
    /// Path of the field, e.g. `spec.signingKeys.prePublish`.
    pub field: String,
    /// What is wrong with it and how to fix it.
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> InvalidSpec {
    InvalidSpec {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The spec's settings in parsed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmConfig {
    /// The `iss` claim.
    pub issuer: String,
    /// The `aud` claim.
    pub audience: String,
    /// Access-token lifetime.
    pub access_token_ttl: Duration,
    /// Refresh-token lifetime.
    pub refresh_token_ttl: Duration,
    /// JWKS cache lifetime.
    pub jwks_max_age: Duration,
    /// Tolerated clock difference.
    pub clock_skew: Duration,
    /// Key schedule.
    pub key_policy: KeyPolicy,
    /// The lifetimes as the spec writes them, passed on to the services.
    pub text: TokenText,
}

/// The token settings as written in the spec (already checked to parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenText {
    /// `tokens.accessTokenTtl`.
    pub access_token_ttl: String,
    /// `tokens.refreshTokenTtl`.
    pub refresh_token_ttl: String,
    /// `tokens.jwksMaxAge`.
    pub jwks_max_age: String,
    /// `tokens.clockSkew`.
    pub clock_skew: String,
}

/// What a realm gets where its spec says nothing and the operator decides:
/// the images of the operator's own release (given by the chart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// MA image for realms that do not pin one.
    pub auth_service_image: String,
    /// OP image for realms that do not pin one.
    pub main_project_image: String,
    /// The operator's own namespace: its pods fetch MA's JWKS before a key
    /// signs, so MA's NetworkPolicy admits them on the public port.
    pub operator_namespace: Option<String>,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            auth_service_image: crate::crd::DEFAULT_AUTH_SERVICE_IMAGE.to_owned(),
            main_project_image: crate::crd::DEFAULT_MAIN_PROJECT_IMAGE.to_owned(),
            operator_namespace: None,
        }
    }
}

/// One of the two services, as the build step needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Container image: the spec's, or the operator's default.
    pub image: String,
    /// The spec names the image (an operator upgrade does not move it).
    pub pinned: bool,
    /// Pull policy, when set.
    pub image_pull_policy: Option<PullPolicy>,
    /// Pods (1–100).
    pub replicas: i32,
    /// Requests and limits (quantities checked).
    pub resources: ResourcesSpec,
}

impl Workload {
    fn from_spec(s: &ServiceSpec, default_image: &str) -> Self {
        Self {
            image: s.image.clone().unwrap_or_else(|| default_image.to_owned()),
            pinned: s.image.is_some(),
            image_pull_policy: s.image_pull_policy,
            replicas: s.replicas,
            resources: s.resources.clone(),
        }
    }
}

/// Where the main project keeps its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A Postgres URL in a Secret.
    Postgres(SecretKeyRef),
    /// Embedded SQLite, on a PVC when named, else an emptyDir.
    Embedded {
        /// The PersistentVolumeClaim holding the file.
        claim_name: Option<String>,
    },
}

/// The realm's Redis.
#[derive(Debug, Clone, PartialEq)]
pub enum Redis {
    /// Run by the operator.
    Managed(ManagedRedis),
    /// A URL in a Secret.
    External(SecretKeyRef),
}

/// A realm that passed validation: everything the dereference and build
/// steps need, and nothing they would have to look up in the raw spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRealm {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// The owner reference every child carries (absent only in tests of realms without a uid).
    pub owner: Option<OwnerReference>,
    /// Tokens and keys in parsed form.
    pub config: RealmConfig,
    /// MA.
    pub auth_service: Workload,
    /// OP.
    pub main_project: Workload,
    /// OP's database.
    pub database: Database,
    /// The shared Redis.
    pub redis: Redis,
    /// Key ids to remove at once.
    pub revoked_key_ids: BTreeSet<String>,
    /// The value of the rotate-keys annotation, if set.
    pub rotate_request: Option<String>,
    /// The extra peers of MA's NetworkPolicy; `None` when the policies are off.
    pub network_peers: Option<Vec<PeerSpec>>,
    /// The operator's namespace (its pods may reach MA's public port).
    pub operator_namespace: Option<String>,
    /// The PodMonitor settings, when the realm asks for one.
    pub monitoring: Option<MonitoringSpec>,
    /// Where its `AuthClient`s may live, and OP's public URL.
    pub clients: ClientsPolicy,
    /// The Ingress in front of the public ports, when the realm asks for one.
    pub ingress: Option<ValidIngress>,
    /// From the last status: per key id, since when every auth-service
    /// replica has served it (Unix seconds).
    pub served_since: BTreeMap<String, i64>,
}

impl ValidRealm {
    /// The Secret references the realm names, with the spec field naming each
    /// and the condition it concerns: the database, then the external Redis.
    #[must_use]
    pub fn referenced_secrets(&self) -> Vec<(&'static str, &SecretKeyRef, &'static str)> {
        let mut out = Vec::new();
        if let Database::Postgres(r) = &self.database {
            out.push((
                "spec.database.postgres",
                r,
                crate::status::MAIN_PROJECT_READY,
            ));
        }
        if let Redis::External(r) = &self.redis {
            out.push(("spec.redis.external", r, crate::status::REDIS_READY));
        }
        out
    }

    /// The operator runs Redis for this realm.
    #[must_use]
    pub fn managed_redis(&self) -> bool {
        matches!(self.redis, Redis::Managed(_))
    }
}

fn parse_duration(field: &str, value: &str, min: Duration) -> Result<Duration, InvalidSpec> {
    let d = duration::parse(value).map_err(|e| invalid(field, e.to_string()))?;
    if d < min {
        return Err(invalid(
            field,
            format!(
                "{value:?} is too short: at least {} is required",
                duration::format(min)
            ),
        ));
    }
    Ok(d)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Checks a realm as the API server sent it; `defaults` fill what it leaves to the operator.
///
/// # Errors
/// The first problem found, naming its field.
pub fn validate(realm: &AuthRealm, defaults: &Defaults) -> Result<ValidRealm, InvalidSpec> {
    let mut valid = validate_spec(
        &realm.name_any(),
        realm.namespace().as_deref().unwrap_or("default"),
        &realm.spec,
    )?;
    valid.auth_service =
        Workload::from_spec(&realm.spec.auth_service, &defaults.auth_service_image);
    valid.main_project =
        Workload::from_spec(&realm.spec.main_project, &defaults.main_project_image);
    valid.owner = realm.controller_owner_ref(&());
    valid.rotate_request = realm.annotations().get(ROTATE_ANNOTATION).cloned();
    valid
        .operator_namespace
        .clone_from(&defaults.operator_namespace);
    valid.served_since = realm
        .status
        .iter()
        .flat_map(|s| &s.keys)
        .filter_map(|k| {
            let t = k.served_everywhere_since.as_deref()?;
            let t = t.parse::<jiff::Timestamp>().ok()?.as_second();
            Some((k.kid.clone(), t))
        })
        .collect();
    Ok(valid)
}

/// Checks a realm's name and spec (no owner, no annotations).
///
/// # Errors
/// The first problem found, naming its field.
pub fn validate_spec(
    name: &str,
    namespace: &str,
    spec: &AuthRealmSpec,
) -> Result<ValidRealm, InvalidSpec> {
    let auth_service_url = &service_url(name, namespace, Component::AuthService);
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(
            "metadata.name",
            format!(
                "must be at most {MAX_NAME_LEN} characters (child object names are derived from it)"
            ),
        ));
    }
    let t = &spec.tokens;
    let access_token_ttl = parse_duration(
        "spec.tokens.accessTokenTtl",
        &t.access_token_ttl,
        Duration::from_secs(1),
    )?;
    let refresh_token_ttl = parse_duration(
        "spec.tokens.refreshTokenTtl",
        &t.refresh_token_ttl,
        Duration::from_secs(1),
    )?;
    let jwks_max_age = parse_duration("spec.tokens.jwksMaxAge", &t.jwks_max_age, Duration::ZERO)?;
    let clock_skew = parse_duration("spec.tokens.clockSkew", &t.clock_skew, Duration::ZERO)?;
    if refresh_token_ttl < access_token_ttl {
        return Err(invalid(
            "spec.tokens.refreshTokenTtl",
            format!(
                "{:?} is shorter than accessTokenTtl {:?}: a refresh token must outlive the access token it renews",
                t.refresh_token_ttl, t.access_token_ttl
            ),
        ));
    }
    let ingress = clients::ingress(spec.ingress.as_ref())?;
    let public_origin = ingress.as_ref().map(|i| i.origin.as_str());
    let issuer = match &t.issuer {
        Some(i) if i.trim().is_empty() => {
            return Err(invalid("spec.tokens.issuer", "must not be empty when set"));
        }
        Some(i) => i.clone(),
        None => public_origin.unwrap_or(auth_service_url).to_owned(),
    };
    let audience = match &t.audience {
        Some(a) if a.trim().is_empty() => {
            return Err(invalid(
                "spec.tokens.audience",
                "must not be empty when set",
            ));
        }
        Some(a) => a.clone(),
        None => name.to_owned(),
    };

    for (field, svc) in [
        ("spec.authService", &spec.auth_service),
        ("spec.mainProject", &spec.main_project),
    ] {
        if svc.image.as_deref().is_some_and(|i| i.trim().is_empty()) {
            return Err(invalid(&format!("{field}.image"), "must not be empty"));
        }
        if !(1..=100).contains(&svc.replicas) {
            return Err(invalid(
                &format!("{field}.replicas"),
                format!("{} is out of range: use 1 to 100", svc.replicas),
            ));
        }
        check_resources(&format!("{field}.resources"), &svc.resources)?;
    }

    let db = &spec.database;
    if db.postgres.is_some() && db.embedded.is_some() {
        return Err(invalid(
            "spec.database",
            "set either postgres or embedded, not both",
        ));
    }
    if let Some(r) = &db.postgres {
        check_secret_ref("spec.database.postgres", &r.name, &r.key)?;
    }
    if db.postgres.is_none() && spec.main_project.replicas > 1 {
        return Err(invalid(
            "spec.mainProject.replicas",
            format!(
                "{} replicas need a shared database: the embedded SQLite database allows one main-project pod; set spec.database.postgres or use 1 replica",
                spec.main_project.replicas
            ),
        ));
    }

    let redis = &spec.redis;
    if redis.managed.is_some() && redis.external.is_some() {
        return Err(invalid(
            "spec.redis",
            "set either managed or external, not both",
        ));
    }
    if let Some(r) = &redis.external {
        check_secret_ref("spec.redis.external", &r.name, &r.key)?;
    }
    if let Some(m) = &redis.managed {
        if m.image.trim().is_empty() {
            return Err(invalid("spec.redis.managed.image", "must not be empty"));
        }
        check_resources("spec.redis.managed.resources", &m.resources)?;
        let size = &m.storage.size;
        if !is_quantity(size) || size.starts_with('0') && !size.starts_with("0.") {
            return Err(invalid(
                "spec.redis.managed.storage.size",
                format!("{size:?} is not a size such as 1Gi or 500Mi"),
            ));
        }
    }

    let k = &spec.signing_keys;
    let rotation_interval = parse_duration(
        "spec.signingKeys.rotationInterval",
        &k.rotation_interval,
        Duration::from_secs(60),
    )?;
    let pre_publish = parse_duration(
        "spec.signingKeys.prePublish",
        &k.pre_publish,
        Duration::ZERO,
    )?;
    if pre_publish < jwks_max_age + SECRET_PROPAGATION {
        return Err(invalid(
            "spec.signingKeys.prePublish",
            format!(
                "{:?} is too short: verifiers cache the JWKS for jwksMaxAge {:?} and a Secret change takes up to {} to reach the pods, so use at least {}",
                k.pre_publish,
                t.jwks_max_age,
                duration::format(SECRET_PROPAGATION),
                duration::format(jwks_max_age + SECRET_PROPAGATION)
            ),
        ));
    }
    if pre_publish >= rotation_interval {
        return Err(invalid(
            "spec.signingKeys.prePublish",
            format!(
                "{:?} must be shorter than rotationInterval {:?}",
                k.pre_publish, k.rotation_interval
            ),
        ));
    }
    for (i, kid) in k.revoked_key_ids.iter().enumerate() {
        if kid.trim().is_empty() {
            return Err(invalid(
                &format!("spec.signingKeys.revokedKeyIds[{i}]"),
                "must not be empty",
            ));
        }
    }

    for (i, peer) in spec
        .network_policy
        .extra_auth_service_peers
        .iter()
        .enumerate()
    {
        if peer.pod_labels.is_none() && peer.namespace_labels.is_none() {
            return Err(invalid(
                &format!("spec.networkPolicy.extraAuthServicePeers[{i}]"),
                "needs podLabels, namespaceLabels or both",
            ));
        }
    }

    let config = RealmConfig {
        issuer,
        audience,
        access_token_ttl,
        refresh_token_ttl,
        jwks_max_age,
        clock_skew,
        key_policy: KeyPolicy {
            algorithm: k.algorithm.into(),
            rotation_interval: secs(rotation_interval),
            pre_publish: secs(pre_publish),
            retire_after: secs(access_token_ttl + clock_skew + SECRET_PROPAGATION),
        },
        text: TokenText {
            access_token_ttl: t.access_token_ttl.clone(),
            refresh_token_ttl: t.refresh_token_ttl.clone(),
            jwks_max_age: t.jwks_max_age.clone(),
            clock_skew: t.clock_skew.clone(),
        },
    };
    Ok(ValidRealm {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        owner: None,
        config,
        auth_service: Workload::from_spec(
            &spec.auth_service,
            crate::crd::DEFAULT_AUTH_SERVICE_IMAGE,
        ),
        main_project: Workload::from_spec(
            &spec.main_project,
            crate::crd::DEFAULT_MAIN_PROJECT_IMAGE,
        ),
        database: match &db.postgres {
            Some(r) => Database::Postgres(r.clone()),
            None => Database::Embedded {
                claim_name: db.embedded.as_ref().and_then(|e| e.claim_name.clone()),
            },
        },
        redis: match &redis.external {
            Some(r) => Redis::External(r.clone()),
            None => Redis::Managed(redis.managed.clone().unwrap_or_default()),
        },
        revoked_key_ids: k.revoked_key_ids.iter().cloned().collect(),
        rotate_request: None,
        served_since: BTreeMap::new(),
        operator_namespace: None,
        monitoring: spec.monitoring.pod_monitor.then(|| spec.monitoring.clone()),
        clients: clients::policy(name, namespace, &spec.clients, public_origin)?,
        ingress,
        network_peers: spec
            .network_policy
            .enabled
            .then(|| spec.network_policy.extra_auth_service_peers.clone()),
    })
}

fn check_secret_ref(field: &str, name: &str, key: &str) -> Result<(), InvalidSpec> {
    if name.trim().is_empty() {
        return Err(invalid(&format!("{field}.name"), "must name a Secret"));
    }
    if key.trim().is_empty() {
        return Err(invalid(
            &format!("{field}.key"),
            "must name a key of the Secret",
        ));
    }
    Ok(())
}

const RESOURCE_NAMES: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];
const QUANTITY_SUFFIXES: [&str; 14] = [
    "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
];

/// A plain Kubernetes quantity: digits, an optional fraction, an optional suffix.
fn is_quantity(q: &str) -> bool {
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let mut parts = number.split('.');
    let whole_ok = parts
        .next()
        .is_some_and(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()));
    let frac_ok = parts
        .next()
        .is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    whole_ok && frac_ok && parts.next().is_none() && QUANTITY_SUFFIXES.contains(&suffix)
}

fn check_resources(field: &str, r: &ResourcesSpec) -> Result<(), InvalidSpec> {
    for (kind, map) in [("requests", &r.requests), ("limits", &r.limits)] {
        for (name, value) in map {
            let f = format!("{field}.{kind}.{name}");
            if !RESOURCE_NAMES.contains(&name.as_str()) {
                return Err(invalid(
                    &f,
                    "unknown resource: use cpu, memory or ephemeral-storage",
                ));
            }
            if !is_quantity(value) {
                return Err(invalid(
                    &f,
                    format!("{value:?} is not a quantity such as 100m, 0.5, 128Mi or 1Gi"),
                ));
            }
        }
    }
    Ok(())
}

pub mod clients;
pub use clients::{ClientsPolicy, ValidIngress};

#[cfg(test)]
mod tests;
