//! The build step: every child object of a realm from the validated realm
//! and the current secret material. Pure: no client calls, no clock, no
//! randomness, so it is tested on plain values.
//!
//! Rooms: [`names`] (names, ports, URLs, labels), [`env`] (the environment
//! contract with the services), [`pod`] (pod scaffolding), [`workloads`]
//! (Deployments, Services, disruption budgets), [`network`] (NetworkPolicies),
//! [`monitoring`] (the PodMonitor), [`ingress`] (the optional Ingress).
//! This file puts them together with the identities and Secrets.

pub mod env;
pub mod ingress;
pub mod monitoring;
pub mod names;
pub mod network;
pub mod pod;
pub mod workloads;

#[cfg(test)]
mod contract;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

pub use env::{CREDENTIAL_KEY, SESSION_COOKIE_KEY_KEY};
pub use names::{Component, Names, common_labels, redis_url, selector_labels, service_url};

use crate::crd::StorageType;
use crate::validate::{Redis, ValidRealm};

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

/// The secret material the build step needs besides the validated realm.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The key-set file (`keyset.json`) to write.
    pub keyset_json: &'a [u8],
    /// The rotate-keys annotation value already served, if any.
    pub rotate_handled: Option<&'a str>,
    /// The internal service credential (existing or newly generated).
    pub credential: &'a str,
    /// OP's session-cookie key (existing or newly generated).
    pub session_cookie_key: &'a str,
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
    /// A PersistentVolumeClaim.
    PersistentVolumeClaim(PersistentVolumeClaim),
    /// A Prometheus Operator PodMonitor.
    PodMonitor(monitoring::PodMonitor),
    /// The Ingress in front of the public ports.
    Ingress(Ingress),
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
    /// v1 PersistentVolumeClaim.
    PersistentVolumeClaim,
    /// monitoring.coreos.com/v1 PodMonitor.
    PodMonitor,
    /// networking.k8s.io/v1 Ingress.
    Ingress,
}

impl Child {
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
            Self::PersistentVolumeClaim(o) => o.meta(),
            Self::PodMonitor(o) => o.meta(),
            Self::Ingress(o) => o.meta(),
        }
    }

    /// The child's name.
    #[must_use]
    pub fn name(&self) -> String {
        self.meta().name.clone().unwrap_or_default()
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

/// What every child's metadata is made from: the realm and its names.
pub struct Meta<'a> {
    /// The validated realm.
    pub realm: &'a ValidRealm,
    /// Its children's names.
    pub names: Names,
}

impl Meta<'_> {
    /// Metadata of a child: name, namespace, labels, owner reference.
    #[must_use]
    pub fn object(&self, name: String, component: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.realm.namespace.clone()),
            labels: Some(common_labels(&self.realm.name, component)),
            owner_references: self.realm.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        }
    }
}

/// SHA-256 of some byte strings (each length-prefixed), lowercase hex.
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

fn secret(m: &Meta<'_>, name: String, component: &str, data: BTreeMap<&str, String>) -> Secret {
    Secret {
        metadata: m.object(name, component),
        type_: Some("Opaque".to_owned()),
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k.to_owned(), ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    }
}

fn keys_secret(m: &Meta<'_>, inputs: &Inputs<'_>) -> Secret {
    let mut s = Secret {
        metadata: m.object(m.names.keys(), "signing-keys"),
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            authrealm_tokens::keyset::FILE_NAME.to_owned(),
            ByteString(inputs.keyset_json.to_vec()),
        )])),
        ..Secret::default()
    };
    if let Some(v) = inputs.rotate_handled {
        s.metadata.annotations = Some(BTreeMap::from([(
            ROTATE_HANDLED_ANNOTATION.to_owned(),
            v.to_owned(),
        )]));
    }
    s
}

fn config_sum(c: &ConfigMap) -> String {
    sha256_hex(&[serde_json::to_string(&c.data)
        .unwrap_or_default()
        .as_bytes()])
}

impl Built {
    /// Adds `child`, or records the optional child `(kind, name)` as unwanted.
    fn want(&mut self, kind: Kind, name: String, child: Option<Child>) {
        match child {
            Some(c) => self.children.push(c),
            None => self.absent.push((kind, name)),
        }
    }
}

/// Builds every child of `realm`.
#[must_use]
pub fn build(realm: &ValidRealm, inputs: Inputs<'_>) -> Built {
    let m = Meta {
        realm,
        names: Names::new(&realm.name),
    };
    let n = &m.names;
    let managed = match &realm.redis {
        Redis::Managed(settings) => inputs.redis_password.map(|pw| (settings, pw)),
        Redis::External(_) => None,
    };
    let wanted = |c: Component| c != Component::Redis || managed.is_some();
    let all = [
        Component::AuthService,
        Component::MainProject,
        Component::Redis,
    ];
    let mut b = Built {
        children: Vec::new(),
        absent: Vec::new(),
    };

    // Identities.
    for c in all {
        let sa = ServiceAccount {
            metadata: m.object(n.workload(c), c.as_str()),
            automount_service_account_token: Some(false),
            ..ServiceAccount::default()
        };
        b.want(
            Kind::ServiceAccount,
            n.workload(c),
            wanted(c).then_some(Child::ServiceAccount(sa)),
        );
    }

    // Configuration.
    let ma_config = env::auth_service_config(&m);
    let op_config = env::main_project_config(&m);
    let (ma_config_sum, op_config_sum) = (config_sum(&ma_config), config_sum(&op_config));
    b.children.push(Child::ConfigMap(ma_config));
    b.children.push(Child::ConfigMap(op_config));

    // Secrets.
    b.children.push(Child::Secret(keys_secret(&m, &inputs)));
    let credential = BTreeMap::from([
        (CREDENTIAL_KEY, inputs.credential.to_owned()),
        (SESSION_COOKIE_KEY_KEY, inputs.session_cookie_key.to_owned()),
    ]);
    b.children.push(Child::Secret(secret(
        &m,
        n.credential(),
        "service-credential",
        credential,
    )));
    let password = managed.map(|(_, pw)| {
        let data = BTreeMap::from([
            (REDIS_PASSWORD_KEY, pw.to_owned()),
            (REDIS_URL_KEY, redis_url(&realm.name, &realm.namespace, pw)),
        ]);
        Child::Secret(secret(&m, n.redis_secret(), "redis", data))
    });
    b.want(Kind::Secret, n.redis_secret(), password);
    // The managed Redis's volume, when it is a claim.
    let claim = managed
        .filter(|(settings, _)| settings.storage.type_ == StorageType::PersistentVolumeClaim)
        .map(|(settings, _)| {
            Child::PersistentVolumeClaim(workloads::redis_claim(&m, &settings.storage))
        });
    b.want(Kind::PersistentVolumeClaim, n.redis_data(), claim);
    // What each pod receives at start from Secrets: MA the credential and
    // the Redis URL, OP also the database URL.
    let ma_secrets_sum = sha256_hex(&[
        inputs.credential.as_bytes(),
        managed.map(|(_, pw)| pw).unwrap_or_default().as_bytes(),
        inputs.redis_checksum.as_bytes(),
    ]);
    let op_secrets_sum = sha256_hex(&[
        ma_secrets_sum.as_bytes(),
        inputs.database_checksum.as_bytes(),
        inputs.session_cookie_key.as_bytes(),
    ]);

    // Services.
    for c in all {
        let svc = wanted(c).then(|| Child::Service(workloads::service(&m, c)));
        b.want(Kind::Service, n.workload(c), svc);
    }

    // Workloads.
    let apps = [
        (
            Component::AuthService,
            &realm.auth_service,
            &ma_config_sum,
            &ma_secrets_sum,
        ),
        (
            Component::MainProject,
            &realm.main_project,
            &op_config_sum,
            &op_secrets_sum,
        ),
    ];
    for (c, w, config, secrets) in apps {
        let sums = workloads::Checksums { config, secrets };
        b.children
            .push(Child::Deployment(workloads::app_deployment(&m, c, w, sums)));
    }
    let redis = managed.map(|(settings, pw)| {
        let sum = sha256_hex(&[pw.as_bytes()]);
        Child::Deployment(workloads::redis_deployment(&m, settings, &sum))
    });
    b.want(Kind::Deployment, n.workload(Component::Redis), redis);

    // Disruption budgets where there is more than one pod.
    for (c, w) in [
        (Component::AuthService, &realm.auth_service),
        (Component::MainProject, &realm.main_project),
    ] {
        let pdb = (w.replicas > 1)
            .then(|| Child::PodDisruptionBudget(workloads::disruption_budget(&m, c)));
        b.want(Kind::PodDisruptionBudget, n.workload(c), pdb);
    }

    // Network policies.
    let peers = realm.network_peers.as_deref();
    let ma_policy = peers.map(|p| Child::NetworkPolicy(network::auth_service_policy(&m, p)));
    b.want(
        Kind::NetworkPolicy,
        n.workload(Component::AuthService),
        ma_policy,
    );
    let redis_policy = peers
        .filter(|_| managed.is_some())
        .map(|_| Child::NetworkPolicy(network::redis_policy(&m)));
    b.want(
        Kind::NetworkPolicy,
        n.workload(Component::Redis),
        redis_policy,
    );

    // Monitoring.
    let pm = realm
        .monitoring
        .as_ref()
        .map(|s| Child::PodMonitor(monitoring::pod_monitor(&m, s)));
    b.want(Kind::PodMonitor, realm.name.clone(), pm);

    // The public entrance.
    let entrance = realm
        .ingress
        .as_ref()
        .map(|v| Child::Ingress(ingress::ingress(&m, v)));
    b.want(Kind::Ingress, realm.name.clone(), entrance);

    b
}

#[cfg(test)]
mod tests {
    use super::testing::{built, names_of};
    use super::*;
    use crate::crd::AuthRealmSpec;
    use crate::validate::InvalidSpec;

    #[test]
    fn the_default_realm_has_every_child_with_owner_and_labels() -> Result<(), InvalidSpec> {
        let b = built(AuthRealmSpec::default())?;
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
                "PersistentVolumeClaim/demo-redis-data",
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
    fn the_build_is_deterministic() -> Result<(), InvalidSpec> {
        assert_eq!(
            built(AuthRealmSpec::default())?,
            built(AuthRealmSpec::default())?
        );
        Ok(())
    }

    #[test]
    fn checksums_separate_their_parts() {
        assert_ne!(sha256_hex(&[b"ab", b"c"]), sha256_hex(&[b"a", b"bc"]));
        assert_eq!(sha256_hex(&[]).len(), 64);
    }
}
