//! The workloads of a realm: MA and OP Deployments with their Services and
//! disruption budgets, and the managed Redis.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, KeyToPath, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Service, ServicePort,
    ServiceSpec as K8sServiceSpec, Volume, VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::env::{
    CLIENTS_DIR, CREDENTIAL_DIR, CREDENTIAL_KEY, KEYS_DIR, SESSION_COOKIE_KEY_KEY, SQLITE_DIR,
    secret_env, secret_envs,
};
use super::names::{Component, selector, selector_labels};
use super::pod::{
    APP_UID, REDIS_UID, deployment, empty_dir, http_probe, mount, pod_spec, recreate, resources,
    restricted_container_security, secret_volume, tcp_probe,
};
use super::{CONFIG_CHECKSUM_ANNOTATION, Meta, REDIS_PASSWORD_KEY, SECRETS_CHECKSUM_ANNOTATION};
use crate::crd::{ManagedRedis, RedisStorage, SecretKeyRef, StorageType};
use crate::validate::{Database, Workload};

fn container_ports(c: Component) -> Vec<ContainerPort> {
    c.ports()
        .iter()
        .map(|(name, port)| ContainerPort {
            name: Some((*name).to_owned()),
            container_port: *port,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        })
        .collect()
}

/// The ClusterIP Service of a component.
#[must_use]
pub fn service(m: &Meta<'_>, c: Component) -> Service {
    Service {
        metadata: m.object(m.names.workload(c), c.as_str()),
        spec: Some(K8sServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector_labels(&m.realm.name, c.as_str())),
            ports: Some(
                c.ports()
                    .iter()
                    .map(|(name, port)| ServicePort {
                        name: Some((*name).to_owned()),
                        port: *port,
                        target_port: Some(IntOrString::String((*name).to_owned())),
                        protocol: Some("TCP".to_owned()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..K8sServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The port of a component's `/metrics`, `/healthz` and `/readyz`.
#[must_use]
pub fn metrics_port(c: Component) -> i32 {
    c.ports()
        .iter()
        .find(|(name, _)| *name == "metrics")
        .map_or(c.port(), |(_, p)| *p)
}

/// A budget keeping all but one pod of a component up during voluntary disruptions.
#[must_use]
pub fn disruption_budget(m: &Meta<'_>, c: Component) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: m.object(m.names.workload(c), c.as_str()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(selector(&m.realm.name, c)),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

/// The checksums that roll a workload's pods when what they read at start changes.
#[derive(Debug, Clone, Copy)]
pub struct Checksums<'a> {
    /// Of the component's ConfigMap.
    pub config: &'a str,
    /// Of the Secret values the pod reads at start.
    pub secrets: &'a str,
}

/// The Deployment of MA or OP.
#[must_use]
pub fn app_deployment(m: &Meta<'_>, c: Component, w: &Workload, sums: Checksums<'_>) -> Deployment {
    // The credential Secret's keys this pod reads: both the service
    // credential; OP also its session-cookie key (MA never sees it).
    let mut credential_keys = vec![CREDENTIAL_KEY];
    if c == Component::MainProject {
        credential_keys.push(SESSION_COOKIE_KEY_KEY);
    }
    let mut volumes = vec![
        empty_dir("tmp", "64Mi"),
        secret_volume(
            "credential",
            m.names.credential(),
            Some(
                credential_keys
                    .into_iter()
                    .map(|k| KeyToPath {
                        key: k.to_owned(),
                        path: k.to_owned(),
                        ..KeyToPath::default()
                    })
                    .collect(),
            ),
        ),
    ];
    let mut mounts = vec![
        mount("tmp", "/tmp", false),
        mount("credential", CREDENTIAL_DIR, true),
    ];
    let mut strategy = None;
    match (c, &m.realm.database) {
        (Component::AuthService, _) => {
            // The whole Secret as a directory (no subPath), so the kubelet
            // swaps in new key sets and MA reloads them without a restart.
            volumes.push(secret_volume("signing-keys", m.names.keys(), None));
            mounts.push(mount("signing-keys", KEYS_DIR, true));
            // The client registry, written by the clients controller; optional
            // so MA starts before it exists (no file: no OAuth clients).
            let mut clients = secret_volume("oauth-clients", m.names.clients(), None);
            if let Some(s) = clients.secret.as_mut() {
                s.optional = Some(true);
            }
            volumes.push(clients);
            mounts.push(mount("oauth-clients", CLIENTS_DIR, true));
        }
        (_, Database::Embedded { claim_name }) => {
            volumes.push(match claim_name {
                Some(claim_name) => Volume {
                    name: "data".to_owned(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: claim_name.clone(),
                        read_only: Some(false),
                    }),
                    ..Volume::default()
                },
                None => empty_dir("data", "1Gi"),
            });
            mounts.push(mount("data", SQLITE_DIR, false));
            // One writer on the file: never run the old and new pod together.
            strategy = Some(recreate());
        }
        (_, Database::Postgres(_)) => {}
    }
    let pod_annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), metrics_port(c).to_string()),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
        (
            CONFIG_CHECKSUM_ANNOTATION.to_owned(),
            sums.config.to_owned(),
        ),
        (
            SECRETS_CHECKSUM_ANNOTATION.to_owned(),
            sums.secrets.to_owned(),
        ),
    ]);
    let container = Container {
        name: c.as_str().to_owned(),
        image: Some(w.image.clone()),
        image_pull_policy: w.image_pull_policy.map(|p| p.as_str().to_owned()),
        ports: Some(container_ports(c)),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: m.names.config(c),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        env: Some(secret_envs(m, c)),
        resources: Some(resources(&w.resources)),
        readiness_probe: Some(http_probe("/readyz", "metrics", 5, 3)),
        liveness_probe: Some(http_probe("/healthz", "metrics", 10, 3)),
        startup_probe: Some(http_probe("/healthz", "metrics", 2, 30)),
        security_context: Some(restricted_container_security()),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let mut pod = pod_spec(m, c, APP_UID);
    pod.containers = vec![container];
    pod.volumes = Some(volumes);
    deployment(m, c, w.replicas, strategy, pod_annotations, pod)
}

/// The managed Redis's claim (ReadWriteOnce: one Redis pod, `Recreate`).
#[must_use]
pub fn redis_claim(m: &Meta<'_>, storage: &RedisStorage) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: m.object(m.names.redis_data(), Component::Redis.as_str()),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(storage.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// The managed Redis: one pod, password from its Secret, append-only file
/// on (fsync every second) in `/data`, on its claim or an emptyDir.
#[must_use]
pub fn redis_deployment(m: &Meta<'_>, managed: &ManagedRedis, password_sum: &str) -> Deployment {
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
                "--appendfsync",
                "everysec",
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
                name: m.names.redis_secret(),
                key: REDIS_PASSWORD_KEY.to_owned(),
            },
        )]),
        ports: Some(container_ports(Component::Redis)),
        resources: Some(resources(&managed.resources)),
        readiness_probe: Some(tcp_probe("redis", 5)),
        liveness_probe: Some(tcp_probe("redis", 10)),
        security_context: Some(restricted_container_security()),
        volume_mounts: Some(vec![mount("data", "/data", false)]),
        ..Container::default()
    };
    let mut pod = pod_spec(m, Component::Redis, REDIS_UID);
    pod.containers = vec![container];
    if let Some(spec) = &m.realm.monitoring {
        pod.containers
            .push(super::monitoring::redis_exporter(m, spec));
    }
    pod.volumes = Some(vec![match managed.storage.type_ {
        StorageType::PersistentVolumeClaim => Volume {
            name: "data".to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: m.names.redis_data(),
                read_only: Some(false),
            }),
            ..Volume::default()
        },
        StorageType::EmptyDir => empty_dir("data", &managed.storage.size),
    }]);
    deployment(
        m,
        Component::Redis,
        1,
        Some(recreate()),
        BTreeMap::from([(
            SECRETS_CHECKSUM_ANNOTATION.to_owned(),
            password_sum.to_owned(),
        )]),
        pod,
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::{INPUTS, built, changed, deployment, names_of, pod, realm};
    use super::super::{Built, CONFIG_CHECKSUM_ANNOTATION, Inputs, Kind, build};
    use crate::crd::{AuthRealmSpec, SecretKeyRef};
    use crate::validate::{Defaults, InvalidSpec, validate};

    fn template_ann(b: &Built, name: &str) -> std::collections::BTreeMap<String, String> {
        deployment(b, name)
            .and_then(pod)
            .and_then(|(t, _)| t.metadata.as_ref()?.annotations.clone())
            .unwrap_or_default()
    }

    /// The keys of the credential Secret each pod mounts.
    fn credential_items(b: &Built, name: &str) -> Vec<String> {
        deployment(b, name)
            .and_then(pod)
            .and_then(|(_, p)| p.volumes.as_ref())
            .and_then(|v| v.iter().find(|v| v.name == "credential"))
            .and_then(|v| v.secret.as_ref()?.items.as_ref())
            .map(|items| items.iter().map(|i| i.key.clone()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn op_alone_mounts_the_shared_session_cookie_key() -> Result<(), InvalidSpec> {
        let b = built(AuthRealmSpec::default())?;
        assert_eq!(
            credential_items(&b, "demo-main-project"),
            ["credential", "session-cookie-key"]
        );
        assert_eq!(credential_items(&b, "demo-auth-service"), ["credential"]);

        // A new key rolls OP (its sessions and forms change), never MA.
        let valid = validate(&realm(AuthRealmSpec::default()), &Defaults::default())?;
        let other = build(
            &valid,
            Inputs {
                session_cookie_key: "another-session-cookie-key-0123456789abcdef",
                ..INPUTS
            },
        );
        assert_ne!(
            template_ann(&other, "demo-main-project")[super::super::SECRETS_CHECKSUM_ANNOTATION],
            template_ann(&b, "demo-main-project")[super::super::SECRETS_CHECKSUM_ANNOTATION]
        );
        assert_eq!(
            template_ann(&other, "demo-auth-service"),
            template_ann(&b, "demo-auth-service")
        );
        Ok(())
    }

    #[test]
    fn spec_changes_change_only_what_they_should() -> Result<(), InvalidSpec> {
        let base = built(AuthRealmSpec::default())?;

        // A token setting: MA's config checksum changes (MA rolls), OP's does not.
        let mut spec = AuthRealmSpec::default();
        spec.tokens.access_token_ttl = "10m".into();
        let ttl = built(spec)?;
        assert_ne!(
            template_ann(&ttl, "demo-auth-service")[CONFIG_CHECKSUM_ANNOTATION],
            template_ann(&base, "demo-auth-service")[CONFIG_CHECKSUM_ANNOTATION]
        );
        assert_eq!(
            template_ann(&ttl, "demo-main-project"),
            template_ann(&base, "demo-main-project")
        );

        // A new key set changes the Secret only: no pod template changes (MA reloads it).
        let valid = validate(&realm(AuthRealmSpec::default()), &Defaults::default())?;
        let rotated = build(
            &valid,
            Inputs {
                keyset_json: b"{\"version\":1,\"keys\":[\"other\"]}",
                rotate_handled: Some("now"),
                ..INPUTS
            },
        );
        assert_eq!(changed(&rotated, &base), ["demo-signing-keys"]);

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
        let prod = built(spec)?;
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
                (
                    authrealm_runtime::env::REDIS_URL.into(),
                    "cache".into(),
                    "url".into()
                ),
                (
                    authrealm_runtime::env::op::DATABASE_URL.into(),
                    "db".into(),
                    "dsn".into()
                ),
            ]
        );
        assert!(
            p.volumes
                .clone()
                .unwrap_or_default()
                .iter()
                .all(|v| v.name != "data")
        );
        let replicas =
            deployment(&prod, "demo-main-project").and_then(|d| d.spec.as_ref()?.replicas);
        assert_eq!(replicas, Some(3));
        assert!(t.metadata.is_some());
        Ok(())
    }

    #[test]
    fn the_managed_redis_keeps_its_append_only_file_on_a_claim() -> Result<(), InvalidSpec> {
        let volume_of = |b: &Built| {
            deployment(b, "demo-redis")
                .and_then(pod)
                .and_then(|(_, p)| p.volumes.clone())
                .unwrap_or_default()
        };
        let b = built(AuthRealmSpec::default())?;
        let claim = b.children.iter().find_map(|c| match c {
            super::super::Child::PersistentVolumeClaim(p) => p.spec.clone(),
            _ => None,
        });
        let claim = claim.unwrap_or_default();
        assert_eq!(claim.access_modes, Some(vec!["ReadWriteOnce".to_owned()]));
        assert_eq!(
            claim
                .resources
                .and_then(|r| r.requests)
                .map(|r| r["storage"].0.clone()),
            Some("1Gi".to_owned())
        );
        let vols = volume_of(&b);
        assert_eq!(
            vols[0]
                .persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            Some("demo-redis-data")
        );
        let args = deployment(&b, "demo-redis")
            .and_then(pod)
            .and_then(|(_, p)| p.containers[0].args.clone())
            .unwrap_or_default();
        let joined = args.join(" ");
        assert!(
            joined.contains("--appendonly yes --appendfsync everysec"),
            "{joined}"
        );
        // The explicit trial choice: an emptyDir, and no claim (pruned if present).
        let mut spec = AuthRealmSpec::default();
        let mut managed = crate::crd::ManagedRedis::default();
        managed.storage.type_ = crate::crd::StorageType::EmptyDir;
        spec.redis.managed = Some(managed);
        let trial = built(spec)?;
        assert!(volume_of(&trial)[0].empty_dir.is_some());
        assert!(
            trial
                .absent
                .contains(&(Kind::PersistentVolumeClaim, "demo-redis-data".into()))
        );
        Ok(())
    }

    #[test]
    fn a_new_database_password_rolls_only_the_main_project() -> Result<(), InvalidSpec> {
        let mut spec = AuthRealmSpec::default();
        spec.database.postgres = Some(SecretKeyRef {
            name: "db".into(),
            key: "url".into(),
        });
        let valid = validate(&realm(spec), &Defaults::default())?;
        let with = |db: &'static str| {
            build(
                &valid,
                Inputs {
                    keyset_json: b"{}",
                    database_checksum: db,
                    ..INPUTS
                },
            )
        };
        assert_eq!(
            changed(&with("sum-2"), &with("sum-1")),
            ["demo-main-project"]
        );
        Ok(())
    }
}
