//! Test helpers of the build step: a realm, its build, and finders.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};

use super::{Built, Child, Inputs, build};
use crate::crd::{AuthRealm, AuthRealmSpec};
use crate::validate::{Defaults, InvalidSpec, validate};

/// MA's in-cluster URL for the test realm.
pub const URL: &str = "http://demo-auth-service.team-a.svc:8081";

/// The secret material of most tests.
pub const INPUTS: Inputs<'static> = Inputs {
    keyset_json: b"{\"version\":1,\"keys\":[]}",
    rotate_handled: None,
    credential: "credential-value-0123456789",
    session_cookie_key: "session-cookie-key-value-0123456789abcdef",
    redis_password: Some("redis-password"),
    database_checksum: "",
    redis_checksum: "",
};

/// The realm `demo` in `team-a` as the API server sends it.
pub fn realm(spec: AuthRealmSpec) -> AuthRealm {
    let mut r = AuthRealm::new("demo", spec);
    r.metadata.namespace = Some("team-a".into());
    r.metadata.uid = Some("uid-1".into());
    r
}

/// The children of `demo` with `spec`.
pub fn built(spec: AuthRealmSpec) -> Result<Built, InvalidSpec> {
    Ok(build(
        &validate(&realm(spec), &Defaults::default())?,
        INPUTS,
    ))
}

/// The Deployment called `name`.
pub fn deployment<'a>(b: &'a Built, name: &str) -> Option<&'a Deployment> {
    b.children.iter().find_map(|c| match c {
        Child::Deployment(d) if d.metadata.name.as_deref() == Some(name) => Some(d),
        _ => None,
    })
}

/// A Deployment's pod template and pod spec.
pub fn pod(d: &Deployment) -> Option<(&PodTemplateSpec, &PodSpec)> {
    let t = &d.spec.as_ref()?.template;
    Some((t, t.spec.as_ref()?))
}

/// The data of the ConfigMap called `name` (empty when absent).
pub fn config_data(b: &Built, name: &str) -> BTreeMap<String, String> {
    b.children
        .iter()
        .find_map(|c| match c {
            Child::ConfigMap(m) if m.metadata.name.as_deref() == Some(name) => m.data.clone(),
            _ => None,
        })
        .unwrap_or_default()
}

/// `Kind/name` of every child, in apply order.
pub fn names_of(b: &Built) -> Vec<String> {
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
                Child::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
                Child::PodMonitor(_) => "PodMonitor",
                Child::Ingress(_) => "Ingress",
            };
            format!("{kind}/{}", c.name())
        })
        .collect()
}

/// Names of the children of `after` that differ from those of `before`.
pub fn changed(after: &Built, before: &Built) -> Vec<String> {
    after
        .children
        .iter()
        .zip(&before.children)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.name())
        .collect()
}
