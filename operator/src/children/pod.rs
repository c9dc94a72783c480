//! Pod scaffolding shared by every workload: the restricted security
//! contexts, probes, volumes and mounts, resources, and the Deployment shell
//! around a pod.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, EmptyDirVolumeSource, HTTPGetAction, KeyToPath, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretVolumeSource,
    SecurityContext, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Meta;
use super::names::{Component, common_labels, selector};
use crate::crd::ResourcesSpec;

/// User and group the AuthRealm images run as.
pub const APP_UID: i64 = 65532;
/// User and group of the `redis` user in the official Redis images.
pub const REDIS_UID: i64 = 999;

fn quantities(m: &BTreeMap<String, String>) -> Option<BTreeMap<String, Quantity>> {
    (!m.is_empty()).then(|| {
        m.iter()
            .map(|(k, v)| (k.clone(), Quantity(v.clone())))
            .collect()
    })
}

/// Requests and limits as Kubernetes quantities.
#[must_use]
pub fn resources(r: &ResourcesSpec) -> ResourceRequirements {
    ResourceRequirements {
        requests: quantities(&r.requests),
        limits: quantities(&r.limits),
        ..ResourceRequirements::default()
    }
}

/// No privilege escalation, read-only root, non-root, no capabilities.
#[must_use]
pub fn restricted_container_security() -> SecurityContext {
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

/// Non-root as `uid`, with the runtime's default seccomp profile.
#[must_use]
pub fn pod_security(uid: i64) -> PodSecurityContext {
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

/// An HTTP GET probe of `path` on the named port `port`.
#[must_use]
pub fn http_probe(path: &str, port: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(port.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// A TCP probe of the named port `port`.
#[must_use]
pub fn tcp_probe(port: &str, period: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(port.to_owned()),
            ..TCPSocketAction::default()
        }),
        period_seconds: Some(period),
        ..Probe::default()
    }
}

/// A Secret as a read-only volume (only `items` when given).
#[must_use]
pub fn secret_volume(name: &str, secret: String, items: Option<Vec<KeyToPath>>) -> Volume {
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

/// An emptyDir capped at `limit`.
#[must_use]
pub fn empty_dir(name: &str, limit: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity(limit.to_owned())),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// A volume mount.
#[must_use]
pub fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

/// The `Recreate` strategy: the old pod is gone before the new one starts
/// (one writer on a file or volume).
#[must_use]
pub fn recreate() -> DeploymentStrategy {
    DeploymentStrategy {
        type_: Some("Recreate".to_owned()),
        ..DeploymentStrategy::default()
    }
}

/// The pod-level part every workload shares: its own ServiceAccount without
/// an API token, and the restricted security context for `uid`.
#[must_use]
pub fn pod_spec(m: &Meta<'_>, c: Component, uid: i64) -> PodSpec {
    PodSpec {
        service_account_name: Some(m.names.workload(c)),
        automount_service_account_token: Some(false),
        security_context: Some(pod_security(uid)),
        ..PodSpec::default()
    }
}

/// A Deployment of `pod` for component `c`.
#[must_use]
pub fn deployment(
    m: &Meta<'_>,
    c: Component,
    replicas: i32,
    strategy: Option<DeploymentStrategy>,
    annotations: BTreeMap<String, String>,
    pod: PodSpec,
) -> Deployment {
    let realm = &m.realm.name;
    Deployment {
        metadata: m.object(m.names.workload(c), c.as_str()),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: selector(realm, c),
            strategy,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(common_labels(realm, c.as_str())),
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

#[cfg(test)]
mod tests {
    use super::super::testing::{built, deployment, pod};
    use crate::children::env::KEYS_DIR;
    use crate::crd::AuthRealmSpec;
    use crate::validate::InvalidSpec;
    use k8s_openapi::api::core::v1::Probe;

    fn missing(what: &str) -> InvalidSpec {
        InvalidSpec {
            field: what.into(),
            message: "missing".into(),
        }
    }

    #[test]
    fn pods_are_probed_scraped_and_locked_down() -> Result<(), InvalidSpec> {
        let b = built(AuthRealmSpec::default())?;
        for (name, ports, metrics) in [
            ("demo-auth-service", vec![8081, 8083, 9081], 9081),
            ("demo-main-project", vec![8080, 9080], 9080),
        ] {
            let (t, p) = deployment(&b, name)
                .and_then(pod)
                .ok_or_else(|| missing(name))?;
            let ann = t
                .metadata
                .as_ref()
                .and_then(|m| m.annotations.clone())
                .unwrap_or_default();
            assert_eq!(ann["prometheus.io/scrape"], "true");
            assert_eq!(ann["prometheus.io/port"], metrics.to_string());
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
            // Probes use the metrics port, never the public API.
            let probe_port = c
                .readiness_probe
                .as_ref()
                .and_then(|p| p.http_get.as_ref())
                .map(|h| h.port.clone());
            assert_eq!(
                probe_port,
                Some(
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                        "metrics".into()
                    )
                )
            );
            let declared: Vec<i32> = c
                .ports
                .clone()
                .unwrap_or_default()
                .iter()
                .map(|p| p.container_port)
                .collect();
            assert_eq!(declared, ports);
            let env = c.env.clone().unwrap_or_default();
            let redis = env
                .iter()
                .find(|e| e.name == authrealm_runtime::env::REDIS_URL);
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
            .ok_or_else(|| missing("ma"))?;
        let mounts = p.containers[0].volume_mounts.clone().unwrap_or_default();
        let keys = mounts.iter().find(|m| m.mount_path == KEYS_DIR);
        assert!(keys.is_some_and(|m| m.sub_path.is_none() && m.read_only == Some(true)));
        // The client registry the same way, from an optional Secret (MA starts
        // before the clients controller has written it: no file, no clients).
        let clients = mounts
            .iter()
            .find(|m| m.mount_path == crate::children::env::CLIENTS_DIR);
        assert!(clients.is_some_and(|m| m.sub_path.is_none() && m.read_only == Some(true)));
        let volume = p
            .volumes
            .iter()
            .flatten()
            .find_map(|v| v.secret.as_ref().filter(|_| v.name == "oauth-clients"));
        assert_eq!(
            volume.map(|s| (s.secret_name.as_deref(), s.optional)),
            Some((Some("demo-oauth-clients"), Some(true)))
        );
        let (_, redis) = deployment(&b, "demo-redis")
            .and_then(pod)
            .ok_or_else(|| missing("redis"))?;
        assert_eq!(
            redis.security_context.as_ref().and_then(|s| s.run_as_user),
            Some(999)
        );
        Ok(())
    }
}
