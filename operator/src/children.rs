//! The build step: every child object of a realm from its spec, its parsed
//! config and the current secret material. Pure: no client calls, no clock,
//! no randomness, so it is tested on plain values.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction, KeyToPath,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, Secret, SecretKeySelector, SecretVolumeSource,
    SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec as K8sServiceSpec,
    TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec as K8sNetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use crate::crd::{AuthRealm, PeerSpec, ResourcesSpec, SecretKeyRef, ServiceSpec};
use crate::validate::RealmConfig;

/// MA's port (JWKS, discovery, internal `/v1`, health, metrics).
pub const AUTH_SERVICE_PORT: i32 = 8081;
/// OP's port.
pub const MAIN_PROJECT_PORT: i32 = 8080;
/// Redis's port.
pub const REDIS_PORT: i32 = 6379;
/// User and group the AuthRealm images run as.
pub const APP_UID: i64 = 65532;
/// User and group of the `redis` user in the official Redis images.
pub const REDIS_UID: i64 = 999;
/// Where MA reads the key set.
pub const KEYS_DIR: &str = "/etc/authrealm/keys";
/// Where both services read the internal credential.
pub const CREDENTIAL_DIR: &str = "/etc/authrealm/credential";
/// Key of the credential in its Secret (and file name in [`CREDENTIAL_DIR`]).
pub const CREDENTIAL_KEY: &str = "credential";
/// Keys of the managed Redis Secret.
pub const REDIS_PASSWORD_KEY: &str = "password";
/// Key of the managed Redis Secret holding the full URL.
pub const REDIS_URL_KEY: &str = "url";
/// Annotation on the key Secret: the last `authrealm.io/rotate-keys` value served.
pub const ROTATE_HANDLED_ANNOTATION: &str = "authrealm.io/rotate-keys-handled";
/// Pod annotation: checksum of the service's ConfigMap.
pub const CONFIG_CHECKSUM_ANNOTATION: &str = "authrealm.io/config-checksum";
/// Pod annotation: checksum of the secret values passed to the pod at start
/// (credential, Redis URL, database URL). Not the key set: MA reloads it.
pub const SECRETS_CHECKSUM_ANNOTATION: &str = "authrealm.io/secrets-checksum";
/// Where the embedded SQLite file lives in the main-project pod.
pub const SQLITE_DIR: &str = "/var/lib/authrealm";

/// The three workloads of a realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// MA.
    AuthService,
    /// OP.
    MainProject,
    /// Managed Redis.
    Redis,
}

impl Component {
    /// Label value and name suffix.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthService => "auth-service",
            Self::MainProject => "main-project",
            Self::Redis => "redis",
        }
    }
}

/// Names of a realm's children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    realm: String,
}

impl Names {
    /// Names for the realm called `realm`.
    #[must_use]
    pub fn new(realm: &str) -> Self {
        Self {
            realm: realm.to_owned(),
        }
    }
    /// Deployment, Service, ServiceAccount, PDB and NetworkPolicy of a component.
    #[must_use]
    pub fn workload(&self, c: Component) -> String {
        format!("{}-{}", self.realm, c.as_str())
    }
    /// ConfigMap of a component.
    #[must_use]
    pub fn config(&self, c: Component) -> String {
        format!("{}-{}-config", self.realm, c.as_str())
    }
    /// The signing-key Secret.
    #[must_use]
    pub fn keys(&self) -> String {
        format!("{}-signing-keys", self.realm)
    }
    /// The internal service-credential Secret.
    #[must_use]
    pub fn credential(&self) -> String {
        format!("{}-service-credential", self.realm)
    }
    /// The managed Redis password Secret.
    #[must_use]
    pub fn redis_secret(&self) -> String {
        format!("{}-redis-password", self.realm)
    }
}

/// In-cluster base URL of a component's Service.
#[must_use]
pub fn service_url(realm: &str, namespace: &str, c: Component) -> String {
    let port = match c {
        Component::AuthService => AUTH_SERVICE_PORT,
        Component::MainProject => MAIN_PROJECT_PORT,
        Component::Redis => REDIS_PORT,
    };
    format!("http://{realm}-{}.{namespace}.svc:{port}", c.as_str())
}

/// The managed Redis URL for a password.
#[must_use]
pub fn redis_url(realm: &str, namespace: &str, password: &str) -> String {
    format!(
        "redis://:{password}@{}.{namespace}.svc:{REDIS_PORT}/0",
        Names::new(realm).workload(Component::Redis)
    )
}

/// Everything the build step needs besides the realm itself.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The validated spec.
    pub config: &'a RealmConfig,
    /// The key-set file (`keyset.json`) to write.
    pub keyset_json: &'a [u8],
    /// The rotate-keys annotation value already served, if any.
    pub rotate_handled: Option<&'a str>,
    /// The internal service credential (existing or newly generated).
    pub credential: &'a str,
    /// The managed Redis password (existing or newly generated); `None` with external Redis.
    pub redis_password: Option<&'a str>,
    /// SHA-256 of the referenced Postgres URL (empty without one): a new
    /// value rolls the main-project pods.
    pub database_checksum: &'a str,
    /// SHA-256 of the referenced external Redis URL (empty without one): a
    /// new value rolls MA and OP.
    pub redis_checksum: &'a str,
}

/// A child object, ready to be applied.
// A dozen per reconcile, built once and applied: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Child {
    /// A ServiceAccount.
    ServiceAccount(ServiceAccount),
    /// A ConfigMap.
    ConfigMap(ConfigMap),
    /// A Secret.
    Secret(Secret),
    /// A Service.
    Service(Service),
    /// A Deployment.
    Deployment(Deployment),
    /// A PodDisruptionBudget.
    PodDisruptionBudget(PodDisruptionBudget),
    /// A NetworkPolicy.
    NetworkPolicy(NetworkPolicy),
}

/// Kinds of children that may have to be deleted when the spec no longer asks for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// apps/v1 Deployment.
    Deployment,
    /// v1 Service.
    Service,
    /// v1 Secret.
    Secret,
    /// v1 ServiceAccount.
    ServiceAccount,
    /// policy/v1 PodDisruptionBudget.
    PodDisruptionBudget,
    /// networking.k8s.io/v1 NetworkPolicy.
    NetworkPolicy,
}

impl Child {
    /// The child's name.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Self::ServiceAccount(o) => o.name_any(),
            Self::ConfigMap(o) => o.name_any(),
            Self::Secret(o) => o.name_any(),
            Self::Service(o) => o.name_any(),
            Self::Deployment(o) => o.name_any(),
            Self::PodDisruptionBudget(o) => o.name_any(),
            Self::NetworkPolicy(o) => o.name_any(),
        }
    }

    /// The child's metadata.
    #[must_use]
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Self::ServiceAccount(o) => o.meta(),
            Self::ConfigMap(o) => o.meta(),
            Self::Secret(o) => o.meta(),
            Self::Service(o) => o.meta(),
            Self::Deployment(o) => o.meta(),
            Self::PodDisruptionBudget(o) => o.meta(),
            Self::NetworkPolicy(o) => o.meta(),
        }
    }
}

/// The realm's children, and the optional ones its spec does not want (to delete).
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// Objects to apply, in apply order (identities and config before workloads).
    pub children: Vec<Child>,
    /// Optional children that must not exist: `(kind, name)`.
    pub absent: Vec<(Kind, String)>,
}

/// Labels every child carries.
#[must_use]
pub fn common_labels(realm: &str, component: &str) -> BTreeMap<String, String> {
    let mut l = selector_labels(realm, component);
    l.insert("app.kubernetes.io/part-of".into(), "authrealm".into());
    l.insert(
        "app.kubernetes.io/managed-by".into(),
        "authrealm-operator".into(),
    );
    l
}

/// The subset of labels used in selectors (never changes for a workload).
#[must_use]
pub fn selector_labels(realm: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "authrealm".into()),
        ("app.kubernetes.io/instance".into(), realm.to_owned()),
        ("app.kubernetes.io/component".into(), component.to_owned()),
    ])
}

/// SHA-256 of some bytes, lowercase hex.
#[must_use]
pub fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in parts {
        // Length-prefix each part so ("ab","c") and ("a","bc") differ.
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Ctx<'a> {
    realm: &'a AuthRealm,
    name: String,
    namespace: String,
    owner: Option<OwnerReference>,
    names: Names,
    inputs: Inputs<'a>,
}

impl Ctx<'_> {
    fn meta(&self, name: String, component: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(common_labels(&self.name, component)),
            owner_references: self.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        }
    }
}

/// Builds every child of `realm`.
#[must_use]
pub fn build(realm: &AuthRealm, inputs: Inputs<'_>) -> Built {
    let name = realm.name_any();
    let namespace = realm.namespace().unwrap_or_else(|| "default".to_owned());
    let cx = Ctx {
        realm,
        names: Names::new(&name),
        owner: realm.controller_owner_ref(&()),
        name,
        namespace,
        inputs,
    };
    let spec = &realm.spec;
    let managed_redis = spec.redis.external.is_none();
    let mut children = Vec::new();
    let mut absent = Vec::new();

    // Identities.
    for c in [
        Component::AuthService,
        Component::MainProject,
        Component::Redis,
    ] {
        if c == Component::Redis && !managed_redis {
            absent.push((Kind::ServiceAccount, cx.names.workload(c)));
            continue;
        }
        children.push(Child::ServiceAccount(ServiceAccount {
            metadata: cx.meta(cx.names.workload(c), c.as_str()),
            automount_service_account_token: Some(false),
            ..ServiceAccount::default()
        }));
    }

    // Configuration.
    let ma_config = auth_service_config(&cx);
    let op_config = main_project_config(&cx);
    let ma_config_sum = sha256_hex(&[serde_json::to_string(&ma_config.data)
        .unwrap_or_default()
        .as_bytes()]);
    let op_config_sum = sha256_hex(&[serde_json::to_string(&op_config.data)
        .unwrap_or_default()
        .as_bytes()]);
    children.push(Child::ConfigMap(ma_config));
    children.push(Child::ConfigMap(op_config));

    // Secrets.
    children.push(Child::Secret(keys_secret(&cx)));
    children.push(Child::Secret(secret(
        &cx,
        cx.names.credential(),
        "service-credential",
        BTreeMap::from([(CREDENTIAL_KEY, inputs.credential.to_owned())]),
    )));
    let redis_password = inputs.redis_password.filter(|_| managed_redis);
    match redis_password {
        Some(pw) => children.push(Child::Secret(secret(
            &cx,
            cx.names.redis_secret(),
            "redis",
            BTreeMap::from([
                (REDIS_PASSWORD_KEY, pw.to_owned()),
                (REDIS_URL_KEY, redis_url(&cx.name, &cx.namespace, pw)),
            ]),
        ))),
        None => absent.push((Kind::Secret, cx.names.redis_secret())),
    }
    // What each pod receives at start from Secrets: MA the credential and
    // the Redis URL, OP also the database URL.
    let ma_secrets_sum = sha256_hex(&[
        inputs.credential.as_bytes(),
        redis_password.unwrap_or_default().as_bytes(),
        inputs.redis_checksum.as_bytes(),
    ]);
    let op_secrets_sum = sha256_hex(&[
        ma_secrets_sum.as_bytes(),
        inputs.database_checksum.as_bytes(),
    ]);

    // Services.
    for (c, port) in [
        (Component::AuthService, AUTH_SERVICE_PORT),
        (Component::MainProject, MAIN_PROJECT_PORT),
        (Component::Redis, REDIS_PORT),
    ] {
        if c == Component::Redis && !managed_redis {
            absent.push((Kind::Service, cx.names.workload(c)));
            continue;
        }
        children.push(Child::Service(service(&cx, c, port)));
    }

    // Workloads.
    children.push(Child::Deployment(app_deployment(
        &cx,
        Component::AuthService,
        &spec.auth_service,
        &ma_config_sum,
        &ma_secrets_sum,
    )));
    children.push(Child::Deployment(app_deployment(
        &cx,
        Component::MainProject,
        &spec.main_project,
        &op_config_sum,
        &op_secrets_sum,
    )));
    match redis_password {
        Some(pw) => children.push(Child::Deployment(redis_deployment(&cx, pw))),
        None => absent.push((Kind::Deployment, cx.names.workload(Component::Redis))),
    }

    // Disruption budgets where there is more than one pod.
    for (c, svc) in [
        (Component::AuthService, &spec.auth_service),
        (Component::MainProject, &spec.main_project),
    ] {
        if svc.replicas > 1 {
            children.push(Child::PodDisruptionBudget(PodDisruptionBudget {
                metadata: cx.meta(cx.names.workload(c), c.as_str()),
                spec: Some(PodDisruptionBudgetSpec {
                    max_unavailable: Some(IntOrString::Int(1)),
                    selector: Some(selector(&cx.name, c)),
                    ..PodDisruptionBudgetSpec::default()
                }),
                ..PodDisruptionBudget::default()
            }));
        } else {
            absent.push((Kind::PodDisruptionBudget, cx.names.workload(c)));
        }
    }

    // Network policies.
    if spec.network_policy.enabled {
        children.push(Child::NetworkPolicy(auth_service_policy(&cx)));
    } else {
        absent.push((
            Kind::NetworkPolicy,
            cx.names.workload(Component::AuthService),
        ));
    }
    if spec.network_policy.enabled && managed_redis {
        children.push(Child::NetworkPolicy(redis_policy(&cx)));
    } else {
        absent.push((Kind::NetworkPolicy, cx.names.workload(Component::Redis)));
    }

    Built { children, absent }
}

fn selector(realm: &str, c: Component) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector_labels(realm, c.as_str())),
        ..LabelSelector::default()
    }
}

fn env_map(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn redis_prefix(cx: &Ctx<'_>) -> String {
    format!("authrealm:{}:{}", cx.namespace, cx.name)
}

fn auth_service_config(cx: &Ctx<'_>) -> ConfigMap {
    let t = &cx.realm.spec.tokens;
    let c = cx.inputs.config;
    ConfigMap {
        metadata: cx.meta(
            cx.names.config(Component::AuthService),
            Component::AuthService.as_str(),
        ),
        data: Some(env_map(&[
            ("AUTHREALM_LISTEN", format!("0.0.0.0:{AUTH_SERVICE_PORT}")),
            ("AUTHREALM_ISSUER", c.issuer.clone()),
            ("AUTHREALM_AUDIENCE", c.audience.clone()),
            ("AUTHREALM_ACCESS_TTL", t.access_token_ttl.clone()),
            ("AUTHREALM_REFRESH_TTL", t.refresh_token_ttl.clone()),
            ("AUTHREALM_JWKS_MAX_AGE", t.jwks_max_age.clone()),
            ("AUTHREALM_CLOCK_SKEW", t.clock_skew.clone()),
            ("AUTHREALM_KEYS_DIR", KEYS_DIR.to_owned()),
            (
                "AUTHREALM_SERVICE_CREDENTIAL_FILE",
                format!("{CREDENTIAL_DIR}/{CREDENTIAL_KEY}"),
            ),
            ("AUTHREALM_REDIS_PREFIX", redis_prefix(cx)),
            ("AUTHREALM_LOG_FORMAT", "json".to_owned()),
        ])),
        ..ConfigMap::default()
    }
}

fn main_project_config(cx: &Ctx<'_>) -> ConfigMap {
    let c = cx.inputs.config;
    let mut data = env_map(&[
        ("AUTHREALM_LISTEN", format!("0.0.0.0:{MAIN_PROJECT_PORT}")),
        (
            "AUTHREALM_AUTH_SERVICE_URL",
            service_url(&cx.name, &cx.namespace, Component::AuthService),
        ),
        ("AUTHREALM_ISSUER", c.issuer.clone()),
        ("AUTHREALM_AUDIENCE", c.audience.clone()),
        (
            "AUTHREALM_CLOCK_LEEWAY",
            cx.realm.spec.tokens.clock_skew.clone(),
        ),
        (
            "AUTHREALM_SERVICE_CREDENTIAL_FILE",
            format!("{CREDENTIAL_DIR}/{CREDENTIAL_KEY}"),
        ),
        ("AUTHREALM_REDIS_PREFIX", redis_prefix(cx)),
        ("AUTHREALM_LOG_FORMAT", "json".to_owned()),
    ]);
    if cx.realm.spec.database.postgres.is_none() {
        data.insert(
            "AUTHREALM_DATABASE_URL".into(),
            format!("sqlite://{SQLITE_DIR}/main-project.db?mode=rwc"),
        );
    }
    ConfigMap {
        metadata: cx.meta(
            cx.names.config(Component::MainProject),
            Component::MainProject.as_str(),
        ),
        data: Some(data),
        ..ConfigMap::default()
    }
}

fn secret(cx: &Ctx<'_>, name: String, component: &str, data: BTreeMap<&str, String>) -> Secret {
    Secret {
        metadata: cx.meta(name, component),
        type_: Some("Opaque".to_owned()),
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k.to_owned(), ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    }
}

fn keys_secret(cx: &Ctx<'_>) -> Secret {
    let mut s = Secret {
        metadata: cx.meta(cx.names.keys(), "signing-keys"),
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            authrealm_tokens::keyset::FILE_NAME.to_owned(),
            ByteString(cx.inputs.keyset_json.to_vec()),
        )])),
        ..Secret::default()
    };
    if let Some(v) = cx.inputs.rotate_handled {
        s.metadata.annotations = Some(BTreeMap::from([(
            ROTATE_HANDLED_ANNOTATION.to_owned(),
            v.to_owned(),
        )]));
    }
    s
}

fn service(cx: &Ctx<'_>, c: Component, port: i32) -> Service {
    let port_name = if c == Component::Redis {
        "redis"
    } else {
        "http"
    };
    Service {
        metadata: cx.meta(cx.names.workload(c), c.as_str()),
        spec: Some(K8sServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector_labels(&cx.name, c.as_str())),
            ports: Some(vec![ServicePort {
                name: Some(port_name.to_owned()),
                port,
                target_port: Some(IntOrString::String(port_name.to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..K8sServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn quantities(m: &BTreeMap<String, String>) -> Option<BTreeMap<String, Quantity>> {
    (!m.is_empty()).then(|| {
        m.iter()
            .map(|(k, v)| (k.clone(), Quantity(v.clone())))
            .collect()
    })
}

fn resources(r: &ResourcesSpec) -> ResourceRequirements {
    ResourceRequirements {
        requests: quantities(&r.requests),
        limits: quantities(&r.limits),
        ..ResourceRequirements::default()
    }
}

fn restricted_container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

fn pod_security(uid: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group: Some(uid),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("http".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

fn secret_env(name: &str, r: &SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn secret_volume(name: &str, secret: String, items: Option<Vec<KeyToPath>>) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret),
            items,
            default_mode: Some(0o440),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn empty_dir(name: &str, limit: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity(limit.to_owned())),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

fn app_deployment(
    cx: &Ctx<'_>,
    c: Component,
    svc: &ServiceSpec,
    config_sum: &str,
    secrets_sum: &str,
) -> Deployment {
    let spec = &cx.realm.spec;
    let port = if c == Component::AuthService {
        AUTH_SERVICE_PORT
    } else {
        MAIN_PROJECT_PORT
    };
    let redis_ref = spec.redis.external.clone().unwrap_or_else(|| SecretKeyRef {
        name: cx.names.redis_secret(),
        key: REDIS_URL_KEY.to_owned(),
    });
    let mut env = vec![secret_env("AUTHREALM_REDIS_URL", &redis_ref)];
    let mut volumes = vec![
        empty_dir("tmp", "64Mi"),
        secret_volume(
            "credential",
            cx.names.credential(),
            Some(vec![KeyToPath {
                key: CREDENTIAL_KEY.to_owned(),
                path: CREDENTIAL_KEY.to_owned(),
                ..KeyToPath::default()
            }]),
        ),
    ];
    let mut mounts = vec![
        mount("tmp", "/tmp", false),
        mount("credential", CREDENTIAL_DIR, true),
    ];
    let mut strategy = None;
    match c {
        Component::AuthService => {
            // The whole Secret as a directory (no subPath), so the kubelet
            // swaps in new key sets and MA reloads them without a restart.
            volumes.push(secret_volume("signing-keys", cx.names.keys(), None));
            mounts.push(mount("signing-keys", KEYS_DIR, true));
        }
        Component::MainProject | Component::Redis => match &spec.database.postgres {
            Some(r) => env.push(secret_env("AUTHREALM_DATABASE_URL", r)),
            None => {
                let claim = spec
                    .database
                    .embedded
                    .as_ref()
                    .and_then(|e| e.claim_name.clone());
                volumes.push(match claim {
                    Some(claim_name) => Volume {
                        name: "data".to_owned(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                            claim_name,
                            read_only: Some(false),
                        }),
                        ..Volume::default()
                    },
                    None => empty_dir("data", "1Gi"),
                });
                mounts.push(mount("data", SQLITE_DIR, false));
                // One writer on the file: never run the old and new pod together.
                strategy = Some(DeploymentStrategy {
                    type_: Some("Recreate".to_owned()),
                    ..DeploymentStrategy::default()
                });
            }
        },
    }
    let pod_annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), port.to_string()),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
        (CONFIG_CHECKSUM_ANNOTATION.to_owned(), config_sum.to_owned()),
        (
            SECRETS_CHECKSUM_ANNOTATION.to_owned(),
            secrets_sum.to_owned(),
        ),
    ]);
    let container = Container {
        name: c.as_str().to_owned(),
        image: Some(svc.image.clone()),
        image_pull_policy: svc.image_pull_policy.map(|p| p.as_str().to_owned()),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: port,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: cx.names.config(c),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        env: Some(env),
        resources: Some(resources(&svc.resources)),
        readiness_probe: Some(http_probe("/readyz", 5, 3)),
        liveness_probe: Some(http_probe("/healthz", 10, 3)),
        startup_probe: Some(http_probe("/healthz", 2, 30)),
        security_context: Some(restricted_container_security()),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    deployment(
        cx,
        c,
        svc.replicas,
        strategy,
        pod_annotations,
        PodSpec {
            service_account_name: Some(cx.names.workload(c)),
            automount_service_account_token: Some(false),
            security_context: Some(pod_security(APP_UID)),
            containers: vec![container],
            volumes: Some(volumes),
            ..PodSpec::default()
        },
    )
}

fn deployment(
    cx: &Ctx<'_>,
    c: Component,
    replicas: i32,
    strategy: Option<DeploymentStrategy>,
    annotations: BTreeMap<String, String>,
    pod: PodSpec,
) -> Deployment {
    Deployment {
        metadata: cx.meta(cx.names.workload(c), c.as_str()),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: selector(&cx.name, c),
            strategy,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(common_labels(&cx.name, c.as_str())),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn redis_deployment(cx: &Ctx<'_>, password: &str) -> Deployment {
    let managed = cx.realm.spec.redis.managed.clone().unwrap_or_default();
    let tcp_probe = |period: i32| Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String("redis".to_owned()),
            ..TCPSocketAction::default()
        }),
        period_seconds: Some(period),
        ..Probe::default()
    };
    let container = Container {
        name: "redis".to_owned(),
        image: Some(managed.image.clone()),
        // The password comes from the environment, expanded by the kubelet.
        args: Some(
            [
                "--requirepass",
                "$(REDIS_PASSWORD)",
                "--appendonly",
                "yes",
                "--dir",
                "/data",
                "--save",
                "",
            ]
            .map(str::to_owned)
            .to_vec(),
        ),
        env: Some(vec![secret_env(
            "REDIS_PASSWORD",
            &SecretKeyRef {
                name: cx.names.redis_secret(),
                key: REDIS_PASSWORD_KEY.to_owned(),
            },
        )]),
        ports: Some(vec![ContainerPort {
            name: Some("redis".to_owned()),
            container_port: REDIS_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        resources: Some(resources(&managed.resources)),
        readiness_probe: Some(tcp_probe(5)),
        liveness_probe: Some(tcp_probe(10)),
        security_context: Some(restricted_container_security()),
        volume_mounts: Some(vec![mount("data", "/data", false)]),
        ..Container::default()
    };
    deployment(
        cx,
        Component::Redis,
        1,
        Some(DeploymentStrategy {
            type_: Some("Recreate".to_owned()),
            ..DeploymentStrategy::default()
        }),
        BTreeMap::from([(
            SECRETS_CHECKSUM_ANNOTATION.to_owned(),
            sha256_hex(&[password.as_bytes()]),
        )]),
        PodSpec {
            service_account_name: Some(cx.names.workload(Component::Redis)),
            automount_service_account_token: Some(false),
            security_context: Some(pod_security(REDIS_UID)),
            containers: vec![container],
            volumes: Some(vec![empty_dir("data", "1Gi")]),
            ..PodSpec::default()
        },
    )
}

fn pods_of(realm: &str, c: Component) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(selector(realm, c)),
        ..NetworkPolicyPeer::default()
    }
}

fn peer(p: &PeerSpec) -> NetworkPolicyPeer {
    let sel = |m: &Option<BTreeMap<String, String>>| {
        m.as_ref().map(|labels| LabelSelector {
            match_labels: (!labels.is_empty()).then(|| labels.clone()),
            ..LabelSelector::default()
        })
    };
    NetworkPolicyPeer {
        pod_selector: sel(&p.pod_labels),
        namespace_selector: sel(&p.namespace_labels),
        ..NetworkPolicyPeer::default()
    }
}

fn ingress_only(
    cx: &Ctx<'_>,
    c: Component,
    from: Vec<NetworkPolicyPeer>,
    port: i32,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: cx.meta(cx.names.workload(c), c.as_str()),
        spec: Some(K8sNetworkPolicySpec {
            pod_selector: Some(selector(&cx.name, c)),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(from),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(port)),
                    protocol: Some("TCP".to_owned()),
                    ..NetworkPolicyPort::default()
                }]),
            }]),
            ..K8sNetworkPolicySpec::default()
        }),
    }
}

/// MA accepts connections on 8081 from OP pods and the listed extra peers only.
fn auth_service_policy(cx: &Ctx<'_>) -> NetworkPolicy {
    let mut from = vec![pods_of(&cx.name, Component::MainProject)];
    from.extend(
        cx.realm
            .spec
            .network_policy
            .extra_auth_service_peers
            .iter()
            .map(peer),
    );
    ingress_only(cx, Component::AuthService, from, AUTH_SERVICE_PORT)
}

/// The managed Redis accepts connections from MA and OP pods only.
fn redis_policy(cx: &Ctx<'_>) -> NetworkPolicy {
    ingress_only(
        cx,
        Component::Redis,
        vec![
            pods_of(&cx.name, Component::AuthService),
            pods_of(&cx.name, Component::MainProject),
        ],
        REDIS_PORT,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AuthRealmSpec, PeerSpec, SecretKeyRef};
    use crate::validate::{InvalidSpec, validate};

    const URL: &str = "http://demo-auth-service.team-a.svc:8081";

    fn realm(spec: AuthRealmSpec) -> AuthRealm {
        let mut r = AuthRealm::new("demo", spec);
        r.metadata.namespace = Some("team-a".into());
        r.metadata.uid = Some("uid-1".into());
        r
    }

    fn built(r: &AuthRealm) -> Result<Built, InvalidSpec> {
        let config = validate("demo", URL, &r.spec)?;
        Ok(build(
            r,
            Inputs {
                config: &config,
                keyset_json: b"{\"version\":1,\"keys\":[]}",
                rotate_handled: None,
                credential: "credential-value-0123456789",
                redis_password: Some("redis-password"),
                database_checksum: "",
                redis_checksum: "",
            },
        ))
    }

    fn deployment<'a>(b: &'a Built, name: &str) -> Option<&'a Deployment> {
        b.children.iter().find_map(|c| match c {
            Child::Deployment(d) if d.metadata.name.as_deref() == Some(name) => Some(d),
            _ => None,
        })
    }

    fn pod(d: &Deployment) -> Option<(&PodTemplateSpec, &PodSpec)> {
        let t = &d.spec.as_ref()?.template;
        Some((t, t.spec.as_ref()?))
    }

    fn names_of(b: &Built) -> Vec<String> {
        b.children
            .iter()
            .map(|c| {
                let kind = match c {
                    Child::ServiceAccount(_) => "ServiceAccount",
                    Child::ConfigMap(_) => "ConfigMap",
                    Child::Secret(_) => "Secret",
                    Child::Service(_) => "Service",
                    Child::Deployment(_) => "Deployment",
                    Child::PodDisruptionBudget(_) => "PodDisruptionBudget",
                    Child::NetworkPolicy(_) => "NetworkPolicy",
                };
                format!("{kind}/{}", c.name())
            })
            .collect()
    }

    #[test]
    fn the_default_realm_has_every_child_with_owner_and_labels() -> Result<(), InvalidSpec> {
        let r = realm(AuthRealmSpec::default());
        let b = built(&r)?;
        assert_eq!(
            names_of(&b),
            [
                "ServiceAccount/demo-auth-service",
                "ServiceAccount/demo-main-project",
                "ServiceAccount/demo-redis",
                "ConfigMap/demo-auth-service-config",
                "ConfigMap/demo-main-project-config",
                "Secret/demo-signing-keys",
                "Secret/demo-service-credential",
                "Secret/demo-redis-password",
                "Service/demo-auth-service",
                "Service/demo-main-project",
                "Service/demo-redis",
                "Deployment/demo-auth-service",
                "Deployment/demo-main-project",
                "Deployment/demo-redis",
                "NetworkPolicy/demo-auth-service",
                "NetworkPolicy/demo-redis",
            ]
        );
        // One replica each: no disruption budgets, and they are pruned if present.
        assert!(
            b.absent
                .contains(&(Kind::PodDisruptionBudget, "demo-auth-service".into()))
        );
        assert!(
            b.absent
                .contains(&(Kind::PodDisruptionBudget, "demo-main-project".into()))
        );
        for c in &b.children {
            let m = c.meta();
            let owners = m.owner_references.clone().unwrap_or_default();
            assert_eq!(owners.len(), 1, "{}", c.name());
            assert_eq!(owners[0].kind, "AuthRealm");
            assert_eq!(owners[0].uid, "uid-1");
            assert_eq!(owners[0].controller, Some(true));
            assert_eq!(m.namespace.as_deref(), Some("team-a"));
            let labels = m.labels.clone().unwrap_or_default();
            assert_eq!(labels["app.kubernetes.io/instance"], "demo", "{}", c.name());
            assert_eq!(labels["app.kubernetes.io/managed-by"], "authrealm-operator");
            assert_eq!(labels["app.kubernetes.io/part-of"], "authrealm");
        }
        Ok(())
    }

    #[test]
    fn pods_are_probed_scraped_and_locked_down() -> Result<(), InvalidSpec> {
        let b = built(&realm(AuthRealmSpec::default()))?;
        for (name, port) in [("demo-auth-service", 8081), ("demo-main-project", 8080)] {
            let (t, p) =
                deployment(&b, name)
                    .and_then(pod)
                    .ok_or_else(|| crate::validate::InvalidSpec {
                        field: name.into(),
                        message: "missing".into(),
                    })?;
            let ann = t
                .metadata
                .as_ref()
                .and_then(|m| m.annotations.clone())
                .unwrap_or_default();
            assert_eq!(ann["prometheus.io/scrape"], "true");
            assert_eq!(ann["prometheus.io/port"], port.to_string());
            assert_eq!(ann["prometheus.io/path"], "/metrics");
            let psc = p.security_context.clone().unwrap_or_default();
            assert_eq!(psc.run_as_non_root, Some(true));
            assert_eq!(psc.run_as_user, Some(65532));
            assert_eq!(p.automount_service_account_token, Some(false));
            assert_eq!(p.service_account_name.as_deref(), Some(name));
            let c = &p.containers[0];
            let sc = c.security_context.clone().unwrap_or_default();
            assert_eq!(sc.read_only_root_filesystem, Some(true));
            assert_eq!(sc.allow_privilege_escalation, Some(false));
            assert_eq!(
                sc.capabilities.and_then(|c| c.drop),
                Some(vec!["ALL".to_owned()])
            );
            let path = |p: &Option<Probe>| {
                p.as_ref()
                    .and_then(|p| p.http_get.as_ref())
                    .and_then(|h| h.path.clone())
            };
            assert_eq!(path(&c.readiness_probe).as_deref(), Some("/readyz"));
            assert_eq!(path(&c.liveness_probe).as_deref(), Some("/healthz"));
            assert_eq!(c.ports.as_ref().map(|p| p[0].container_port), Some(port));
            let env = c.env.clone().unwrap_or_default();
            let redis = env.iter().find(|e| e.name == "AUTHREALM_REDIS_URL");
            let sel = redis
                .and_then(|e| e.value_from.as_ref())
                .and_then(|v| v.secret_key_ref.as_ref());
            assert_eq!(
                sel.map(|s| (s.name.as_str(), s.key.as_str())),
                Some(("demo-redis-password", "url"))
            );
        }
        // MA mounts the whole key Secret (no subPath, so updates reach it) at the contract path.
        let (_, p) = deployment(&b, "demo-auth-service")
            .and_then(pod)
            .ok_or_else(|| InvalidSpec {
                field: "ma".into(),
                message: "missing".into(),
            })?;
        let mounts = p.containers[0].volume_mounts.clone().unwrap_or_default();
        let keys = mounts.iter().find(|m| m.mount_path == KEYS_DIR);
        assert!(keys.is_some_and(|m| m.sub_path.is_none() && m.read_only == Some(true)));
        let (_, redis) = deployment(&b, "demo-redis")
            .and_then(pod)
            .ok_or_else(|| InvalidSpec {
                field: "redis".into(),
                message: "missing".into(),
            })?;
        assert_eq!(
            redis.security_context.as_ref().and_then(|s| s.run_as_user),
            Some(999)
        );
        Ok(())
    }

    #[test]
    fn config_maps_carry_the_service_contract() -> Result<(), InvalidSpec> {
        let b = built(&realm(AuthRealmSpec::default()))?;
        let data = |name: &str| {
            b.children.iter().find_map(|c| match c {
                Child::ConfigMap(m) if m.metadata.name.as_deref() == Some(name) => m.data.clone(),
                _ => None,
            })
        };
        let ma = data("demo-auth-service-config").unwrap_or_default();
        assert_eq!(ma["AUTHREALM_LISTEN"], "0.0.0.0:8081");
        assert_eq!(ma["AUTHREALM_ISSUER"], URL);
        assert_eq!(ma["AUTHREALM_AUDIENCE"], "demo");
        assert_eq!(ma["AUTHREALM_ACCESS_TTL"], "5m");
        assert_eq!(ma["AUTHREALM_KEYS_DIR"], "/etc/authrealm/keys");
        assert_eq!(ma["AUTHREALM_REDIS_PREFIX"], "authrealm:team-a:demo");
        assert_eq!(
            ma["AUTHREALM_SERVICE_CREDENTIAL_FILE"],
            "/etc/authrealm/credential/credential"
        );
        let op = data("demo-main-project-config").unwrap_or_default();
        assert_eq!(op["AUTHREALM_AUTH_SERVICE_URL"], URL);
        assert_eq!(op["AUTHREALM_REDIS_PREFIX"], ma["AUTHREALM_REDIS_PREFIX"]);
        // MA keeps revocations for as long as OP tolerates expired tokens.
        assert_eq!(ma["AUTHREALM_CLOCK_SKEW"], "60s");
        assert_eq!(op["AUTHREALM_CLOCK_LEEWAY"], ma["AUTHREALM_CLOCK_SKEW"]);
        assert_eq!(
            op["AUTHREALM_DATABASE_URL"],
            "sqlite:///var/lib/authrealm/main-project.db?mode=rwc"
        );
        Ok(())
    }

    #[test]
    fn the_network_policy_admits_only_main_project_pods_and_listed_peers() -> Result<(), InvalidSpec>
    {
        let mut spec = AuthRealmSpec::default();
        spec.network_policy.extra_auth_service_peers = vec![PeerSpec {
            pod_labels: Some(BTreeMap::from([("app".into(), "gateway".into())])),
            namespace_labels: Some(BTreeMap::new()),
        }];
        let b = built(&realm(spec))?;
        let np = b.children.iter().find_map(|c| match c {
            Child::NetworkPolicy(n) if n.metadata.name.as_deref() == Some("demo-auth-service") => {
                n.spec.clone()
            }
            _ => None,
        });
        let np = np.unwrap_or_default();
        let ma = selector_labels("demo", "auth-service");
        assert_eq!(np.pod_selector.and_then(|s| s.match_labels), Some(ma));
        assert_eq!(np.policy_types, Some(vec!["Ingress".to_owned()]));
        let rule = np.ingress.unwrap_or_default();
        assert_eq!(rule.len(), 1);
        let from = rule[0].from.clone().unwrap_or_default();
        assert_eq!(
            from[0]
                .pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.clone()),
            Some(selector_labels("demo", "main-project"))
        );
        assert!(
            from[0].namespace_selector.is_none(),
            "OP pods of this namespace only"
        );
        // The extra peer: gateway pods in every namespace.
        assert!(
            from[1]
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.match_labels.is_none())
        );
        assert_eq!(
            rule[0].ports.clone().unwrap_or_default()[0].port,
            Some(IntOrString::Int(8081))
        );
        Ok(())
    }

    #[test]
    fn spec_changes_change_only_what_they_should() -> Result<(), InvalidSpec> {
        let base = built(&realm(AuthRealmSpec::default()))?;
        let template_ann = |b: &Built, name: &str| {
            deployment(b, name)
                .and_then(pod)
                .and_then(|(t, _)| t.metadata.as_ref()?.annotations.clone())
                .unwrap_or_default()
        };

        // A token setting: MA's config checksum changes (MA rolls), OP's does not.
        let mut spec = AuthRealmSpec::default();
        spec.tokens.access_token_ttl = "10m".into();
        let ttl = built(&realm(spec))?;
        assert_ne!(
            template_ann(&ttl, "demo-auth-service")[CONFIG_CHECKSUM_ANNOTATION],
            template_ann(&base, "demo-auth-service")[CONFIG_CHECKSUM_ANNOTATION]
        );
        assert_eq!(
            template_ann(&ttl, "demo-main-project"),
            template_ann(&base, "demo-main-project")
        );

        // A new key set changes the Secret only: no pod template changes (MA reloads it).
        let r = realm(AuthRealmSpec::default());
        let config = validate("demo", URL, &r.spec)?;
        let rotated = build(
            &r,
            Inputs {
                config: &config,
                keyset_json: b"{\"version\":1,\"keys\":[\"other\"]}",
                rotate_handled: Some("now"),
                credential: "credential-value-0123456789",
                redis_password: Some("redis-password"),
                database_checksum: "",
                redis_checksum: "",
            },
        );
        let changed: Vec<String> = rotated
            .children
            .iter()
            .zip(&base.children)
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a.name())
            .collect();
        assert_eq!(changed, ["demo-signing-keys"]);

        // Postgres and external Redis: Secret references, no managed Redis, several OP pods with a PDB.
        let mut spec = AuthRealmSpec::default();
        spec.database.postgres = Some(SecretKeyRef {
            name: "db".into(),
            key: "dsn".into(),
        });
        spec.redis.external = Some(SecretKeyRef {
            name: "cache".into(),
            key: "url".into(),
        });
        spec.main_project.replicas = 3;
        let prod = built(&realm(spec))?;
        let names = names_of(&prod);
        assert!(!names.iter().any(|n| n.contains("redis")), "{names:?}");
        assert!(names.contains(&"PodDisruptionBudget/demo-main-project".to_owned()));
        for k in [
            Kind::Deployment,
            Kind::Service,
            Kind::ServiceAccount,
            Kind::NetworkPolicy,
        ] {
            assert!(prod.absent.contains(&(k, "demo-redis".into())), "{k:?}");
        }
        assert!(
            prod.absent
                .contains(&(Kind::Secret, "demo-redis-password".into()))
        );
        let (t, p) = deployment(&prod, "demo-main-project")
            .and_then(pod)
            .ok_or_else(|| InvalidSpec {
                field: "op".into(),
                message: "missing".into(),
            })?;
        let env = p.containers[0].env.clone().unwrap_or_default();
        let refs: Vec<(String, String, String)> = env
            .iter()
            .filter_map(|e| {
                let s = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
                Some((e.name.clone(), s.name.clone(), s.key.clone()))
            })
            .collect();
        assert_eq!(
            refs,
            [
                ("AUTHREALM_REDIS_URL".into(), "cache".into(), "url".into()),
                ("AUTHREALM_DATABASE_URL".into(), "db".into(), "dsn".into()),
            ]
        );
        assert!(
            p.volumes
                .clone()
                .unwrap_or_default()
                .iter()
                .all(|v| v.name != "data")
        );
        assert_eq!(prod_replicas(&prod, "demo-main-project"), Some(3));
        assert!(t.metadata.is_some());
        Ok(())
    }

    #[test]
    fn a_new_database_password_rolls_only_the_main_project() -> Result<(), InvalidSpec> {
        let mut spec = AuthRealmSpec::default();
        spec.database.postgres = Some(SecretKeyRef {
            name: "db".into(),
            key: "url".into(),
        });
        let r = realm(spec);
        let config = validate("demo", URL, &r.spec)?;
        let with = |db: &str| {
            build(
                &r,
                Inputs {
                    config: &config,
                    keyset_json: b"{}",
                    rotate_handled: None,
                    credential: "credential-value-0123456789",
                    redis_password: Some("redis-password"),
                    database_checksum: db,
                    redis_checksum: "",
                },
            )
        };
        let (before, after) = (with("sum-1"), with("sum-2"));
        let changed: Vec<String> = after
            .children
            .iter()
            .zip(&before.children)
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a.name())
            .collect();
        assert_eq!(changed, ["demo-main-project"]);
        Ok(())
    }

    fn prod_replicas(b: &Built, name: &str) -> Option<i32> {
        deployment(b, name)?.spec.as_ref()?.replicas
    }

    #[test]
    fn the_build_is_deterministic() -> Result<(), InvalidSpec> {
        let r = realm(AuthRealmSpec::default());
        assert_eq!(built(&r)?, built(&r)?);
        Ok(())
    }
}
