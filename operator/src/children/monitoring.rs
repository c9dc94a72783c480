//! Per-realm monitoring: a Prometheus Operator PodMonitor over the realm's
//! pods (MA and OP on their metrics ports, the managed Redis through a
//! `redis_exporter` sidecar), and that sidecar.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerPort, EnvVar};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::env::secret_env;
use super::pod::{resources, restricted_container_security};
use super::{Meta, REDIS_PASSWORD_KEY};
use crate::crd::{MonitoringSpec, ResourcesSpec, SecretKeyRef};

/// The redis_exporter's metrics port.
pub const REDIS_EXPORTER_PORT: i32 = 9121;

/// The part of the Prometheus Operator's `PodMonitor` the operator writes.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "PodMonitor",
    namespaced,
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct PodMonitorSpec {
    /// The pods to scrape.
    pub selector: LabelSelector,
    /// How to scrape them.
    pub pod_metrics_endpoints: Vec<PodMetricsEndpoint>,
}

/// One scrape endpoint of a PodMonitor.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PodMetricsEndpoint {
    /// Container port name.
    pub port: String,
    /// HTTP path.
    pub path: String,
    /// Scrape interval.
    pub interval: String,
}

/// The realm's PodMonitor: every pod of the realm with a `metrics` port.
#[must_use]
pub fn pod_monitor(m: &Meta<'_>, spec: &MonitoringSpec) -> PodMonitor {
    let mut meta = m.object(m.realm.name.clone(), "monitoring");
    if let Some(l) = meta.labels.as_mut() {
        l.extend(spec.labels.clone());
    }
    PodMonitor {
        metadata: meta,
        spec: PodMonitorSpec {
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([
                    ("app.kubernetes.io/name".to_owned(), "authrealm".to_owned()),
                    (
                        "app.kubernetes.io/instance".to_owned(),
                        m.realm.name.clone(),
                    ),
                ])),
                ..LabelSelector::default()
            },
            pod_metrics_endpoints: vec![PodMetricsEndpoint {
                port: "metrics".to_owned(),
                path: "/metrics".to_owned(),
                interval: spec.interval.clone(),
            }],
        },
    }
}

/// The `redis_exporter` sidecar of the managed Redis, on port `metrics`.
#[must_use]
pub fn redis_exporter(m: &Meta<'_>, spec: &MonitoringSpec) -> Container {
    let password = SecretKeyRef {
        name: m.names.redis_secret(),
        key: REDIS_PASSWORD_KEY.to_owned(),
    };
    Container {
        name: "redis-exporter".to_owned(),
        image: Some(spec.redis_exporter_image.clone()),
        env: Some(vec![
            EnvVar {
                name: "REDIS_ADDR".to_owned(),
                value: Some("redis://127.0.0.1:6379".to_owned()),
                ..EnvVar::default()
            },
            secret_env("REDIS_PASSWORD", &password),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("metrics".to_owned()),
            container_port: REDIS_EXPORTER_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        resources: Some(resources(&ResourcesSpec {
            requests: BTreeMap::from([
                ("cpu".to_owned(), "10m".to_owned()),
                ("memory".to_owned(), "16Mi".to_owned()),
            ]),
            limits: BTreeMap::from([("memory".to_owned(), "64Mi".to_owned())]),
        })),
        security_context: Some(restricted_container_security()),
        ..Container::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{built, deployment, pod};
    use super::super::{Child, Kind};
    use crate::crd::AuthRealmSpec;
    use crate::validate::InvalidSpec;

    #[test]
    fn a_pod_monitor_scrapes_every_metrics_port_of_the_realm() -> Result<(), InvalidSpec> {
        // Off by default: nothing to scrape through the Prometheus Operator, and pruned.
        let off = built(AuthRealmSpec::default())?;
        assert!(off.absent.contains(&(Kind::PodMonitor, "demo".into())));
        let mut spec = AuthRealmSpec::default();
        spec.monitoring.pod_monitor = true;
        spec.monitoring
            .labels
            .insert("release".into(), "prom".into());
        let b = built(spec)?;
        let pm = b.children.iter().find_map(|c| match c {
            Child::PodMonitor(p) => Some(p.clone()),
            _ => None,
        });
        let pm = pm.ok_or_else(|| InvalidSpec {
            field: "podMonitor".into(),
            message: "missing".into(),
        })?;
        let labels = pm.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels["release"], "prom");
        let sel = pm.spec.selector.match_labels.clone().unwrap_or_default();
        assert_eq!(sel["app.kubernetes.io/instance"], "demo");
        assert_eq!(pm.spec.pod_metrics_endpoints[0].port, "metrics");
        // Every selected workload has a port named metrics: MA, OP, and Redis's exporter.
        for name in ["demo-auth-service", "demo-main-project", "demo-redis"] {
            let (_, p) = deployment(&b, name)
                .and_then(pod)
                .ok_or_else(|| InvalidSpec {
                    field: name.into(),
                    message: "missing".into(),
                })?;
            let has = p.containers.iter().any(|c| {
                c.ports
                    .iter()
                    .flatten()
                    .any(|port| port.name.as_deref() == Some("metrics"))
            });
            assert!(has, "{name} has no metrics port");
        }
        Ok(())
    }
}
