//! How an operator upgrade reaches the cluster.
//!
//! - The CRD: Helm installs the files in a chart's `crds/` once and never
//!   upgrades them, so the operator applies its own CRD at start
//!   ([`apply_crd`], server-side apply with the operator's field manager).
//! - The realms: a realm that pins no image runs the operator's own release
//!   ([`crate::validate::Defaults`]). When that changes, realms move to it
//!   one at a time ([`Rollouts`]): a realm starts only when no other is
//!   rolling, holds the turn until its Deployments run the new images with
//!   every replica, and a rollout that fails (progress deadline exceeded)
//!   stops the others until it is fixed. Each realm says where it stands in
//!   its `ImagesCurrent` condition.

use std::collections::BTreeMap;
use std::sync::Mutex;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, CustomResourceExt, ResourceExt};

use crate::apply::FIELD_MANAGER;
use crate::children::{Component, Names};
use crate::crd::{AuthRealm, ImagesStatus};
use crate::status::{IMAGES_CURRENT, Verdict};
use crate::validate::ValidRealm;

/// Whose turn it is to move to the operator's images.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Turn {
    /// `namespace/name` of the realm rolling.
    realm: String,
    /// Why its rollout failed, once it has.
    failed: Option<String>,
    /// When that realm was last reconciled (Unix seconds).
    seen: i64,
}

/// A turn whose realm has not been reconciled for this long (every realm is
/// at least hourly) belongs to a realm that is gone: another may take it.
pub const TURN_TIMEOUT: i64 = 2 * 3600;

/// The one-at-a-time gate of image upgrades, shared by every reconcile.
#[derive(Debug, Default)]
pub struct Rollouts {
    turn: Mutex<Option<Turn>>,
}

/// Where one realm stands with the operator's images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// It runs what it should (pinned images, or the operator's already).
    Current,
    /// It is moving to the operator's images now (its turn).
    Upgrading,
    /// Another realm is rolling; this one keeps its images meanwhile.
    Waiting(String),
    /// A realm's rollout failed: upgrades stop until it is fixed.
    Stopped(String, String),
}

impl Rollouts {
    /// Asks for `realm`'s turn at `now`.
    fn ask(&self, realm: &str, now: i64) -> Standing {
        let Ok(mut turn) = self.turn.lock() else {
            return Standing::Waiting("(lock poisoned)".into());
        };
        match turn.as_mut() {
            Some(t) if t.realm == realm => {
                t.seen = now;
                Standing::Upgrading
            }
            None => {
                *turn = Some(Turn {
                    realm: realm.to_owned(),
                    failed: None,
                    seen: now,
                });
                Standing::Upgrading
            }
            Some(t) if now.saturating_sub(t.seen) > TURN_TIMEOUT => {
                *t = Turn {
                    realm: realm.to_owned(),
                    failed: None,
                    seen: now,
                };
                Standing::Upgrading
            }
            Some(Turn {
                realm: other,
                failed: Some(why),
                ..
            }) => Standing::Stopped(other.clone(), why.clone()),
            Some(t) => Standing::Waiting(t.realm.clone()),
        }
    }

    /// Ends `realm`'s turn (its rollout completed, or it no longer needs one).
    fn done(&self, realm: &str) {
        if let Ok(mut turn) = self.turn.lock()
            && turn.as_ref().is_some_and(|t| t.realm == realm)
        {
            *turn = None;
        }
    }

    /// Records that `realm`'s rollout failed: the others stop.
    fn failed(&self, realm: &str, why: String) {
        if let Ok(mut turn) = self.turn.lock()
            && let Some(t) = turn.as_mut()
            && t.realm == realm
        {
            t.failed = Some(why);
        }
    }
}

fn key(realm: &ValidRealm) -> String {
    format!("{}/{}", realm.namespace, realm.name)
}

/// Decides the images `realm` gets at `now`. `previous` is what its last
/// status says it runs. A realm with nothing to move (new, pinned, or
/// already on the operator's images) never waits.
pub fn plan(
    realm: &mut ValidRealm,
    previous: Option<&ImagesStatus>,
    rollouts: &Rollouts,
    now: i64,
) -> Standing {
    let Some(prev) = previous else {
        return Standing::Current;
    };
    let moves = (!realm.auth_service.pinned && realm.auth_service.image != prev.auth_service)
        || (!realm.main_project.pinned && realm.main_project.image != prev.main_project);
    if !moves {
        rollouts.done(&key(realm));
        return Standing::Current;
    }
    let standing = rollouts.ask(&key(realm), now);
    if standing != Standing::Upgrading {
        if !realm.auth_service.pinned {
            realm.auth_service.image.clone_from(&prev.auth_service);
        }
        if !realm.main_project.pinned {
            realm.main_project.image.clone_from(&prev.main_project);
        }
    }
    standing
}

/// After the apply: ends the turn once both Deployments run their new
/// template with every replica, or stops the others when one failed.
pub fn observe(
    realm: &ValidRealm,
    standing: &Standing,
    deployments: &BTreeMap<String, Deployment>,
    rollouts: &Rollouts,
) -> Standing {
    if *standing != Standing::Upgrading {
        return standing.clone();
    }
    let names = Names::new(&realm.name);
    let mut settled = true;
    for comp in [Component::AuthService, Component::MainProject] {
        let Some(d) = deployments.get(&names.workload(comp)) else {
            settled = false;
            continue;
        };
        let status = d.status.clone().unwrap_or_default();
        let stuck = status
            .conditions
            .iter()
            .flatten()
            .find(|cond| cond.type_ == "Progressing" && cond.status == "False");
        if let Some(cond) = stuck {
            let why = format!(
                "{}: {}",
                names.workload(comp),
                cond.message
                    .clone()
                    .unwrap_or_else(|| cond.reason.clone().unwrap_or_default())
            );
            rollouts.failed(&key(realm), why.clone());
            return Standing::Stopped(key(realm), why);
        }
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        settled &= status.updated_replicas.unwrap_or(0) >= want
            && status.available_replicas.unwrap_or(0) >= want
            && status.replicas.unwrap_or(0) <= want
            && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    }
    if settled {
        rollouts.done(&key(realm));
        Standing::Current
    } else {
        Standing::Upgrading
    }
}

/// The `ImagesCurrent` condition of a standing.
#[must_use]
pub fn verdict(standing: &Standing, images: &ImagesStatus) -> Verdict {
    let running = format!(
        "auth-service {}, main-project {}",
        images.auth_service, images.main_project
    );
    match standing {
        Standing::Current => Verdict::new(IMAGES_CURRENT, Some(true), "Current", running),
        Standing::Upgrading => Verdict::new(
            IMAGES_CURRENT,
            Some(false),
            "Upgrading",
            format!("rolling to the operator's images: {running}"),
        ),
        Standing::Waiting(other) => Verdict::new(
            IMAGES_CURRENT,
            Some(false),
            "UpgradeWaiting",
            format!(
                "keeps {running} until realm {other} has finished its upgrade (one realm at a time)"
            ),
        ),
        Standing::Stopped(other, why) => Verdict::new(
            IMAGES_CURRENT,
            Some(false),
            "UpgradeStopped",
            format!(
                "upgrades stopped: the rollout of realm {other} failed ({why}); keeps {running}"
            ),
        ),
    }
}

/// Applies the `AuthRealm` CRD this operator was built with.
///
/// # Errors
/// The API call failing (for example without `patch` on
/// `customresourcedefinitions`; the chart grants it on this one CRD).
pub async fn apply_crd(client: Client) -> Result<CustomResourceDefinition, kube::Error> {
    apply_definition(client, AuthRealm::crd()).await
}

/// Applies the `AuthClient` CRD this operator was built with, like [`apply_crd`].
///
/// # Errors
/// The API call failing.
pub async fn apply_client_crd(client: Client) -> Result<CustomResourceDefinition, kube::Error> {
    apply_definition(client, crate::crd::AuthClient::crd()).await
}

async fn apply_definition(
    client: Client,
    crd: CustomResourceDefinition,
) -> Result<CustomResourceDefinition, kube::Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&crd.name_any(), &params, &Patch::Apply(&crd))
        .await
}

#[cfg(test)]
mod tests {
    use http::{Method, Request, Response};
    use kube::client::Body;

    use super::*;

    type TestError = Box<dyn std::error::Error + Send + Sync>;

    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};

    use crate::crd::AuthRealmSpec;
    use crate::validate::validate_spec;

    fn realm(name: &str) -> Result<ValidRealm, TestError> {
        let mut r = validate_spec(name, "ns", &AuthRealmSpec::default())?;
        r.auth_service.image = "ma:2".into();
        r.main_project.image = "op:2".into();
        Ok(r)
    }

    fn on(version: &str) -> ImagesStatus {
        ImagesStatus {
            auth_service: format!("ma:{version}"),
            main_project: format!("op:{version}"),
            follows_operator: true,
        }
    }

    fn deployments(name: &str, updated: i32, stuck: bool) -> BTreeMap<String, Deployment> {
        let d = || Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(2),
                ..DeploymentSpec::default()
            }),
            status: Some(DeploymentStatus {
                replicas: Some(2),
                updated_replicas: Some(updated),
                available_replicas: Some(2),
                conditions: stuck.then(|| {
                    vec![DeploymentCondition {
                        type_: "Progressing".into(),
                        status: "False".into(),
                        reason: Some("ProgressDeadlineExceeded".into()),
                        message: Some("ReplicaSet has timed out progressing.".into()),
                        ..DeploymentCondition::default()
                    }]
                }),
                ..DeploymentStatus::default()
            }),
            ..Deployment::default()
        };
        let names = Names::new(name);
        [Component::AuthService, Component::MainProject]
            .into_iter()
            .map(|c| (names.workload(c), d()))
            .collect()
    }

    #[test]
    fn realms_move_to_the_operators_images_one_at_a_time() -> Result<(), TestError> {
        let gate = Rollouts::default();
        let (mut a, mut b) = (realm("a")?, realm("b")?);
        // a takes the turn and gets the new images; b keeps the old ones and waits.
        assert_eq!(plan(&mut a, Some(&on("1")), &gate, 0), Standing::Upgrading);
        assert_eq!(a.auth_service.image, "ma:2");
        assert_eq!(
            plan(&mut b, Some(&on("1")), &gate, 0),
            Standing::Waiting("ns/a".into())
        );
        assert_eq!(
            (b.auth_service.image.as_str(), b.main_project.image.as_str()),
            ("ma:1", "op:1")
        );
        let waiting = verdict(&Standing::Waiting("ns/a".into()), &on("1"));
        assert_eq!(
            (waiting.ok, waiting.reason.as_str()),
            (Some(false), "UpgradeWaiting")
        );
        // a half rolled: still its turn; fully rolled: the turn passes to b.
        assert_eq!(
            observe(&a, &Standing::Upgrading, &deployments("a", 1, false), &gate),
            Standing::Upgrading
        );
        assert_eq!(
            observe(&a, &Standing::Upgrading, &deployments("a", 2, false), &gate),
            Standing::Current
        );
        let mut b = realm("b")?;
        assert_eq!(plan(&mut b, Some(&on("1")), &gate, 0), Standing::Upgrading);
        // A new realm, or one already on the operator's images, never waits.
        let mut c = realm("c")?;
        assert_eq!(plan(&mut c, None, &gate, 0), Standing::Current);
        assert_eq!(plan(&mut c, Some(&on("2")), &gate, 0), Standing::Current);
        // A pinned realm is never moved.
        let mut pinned = realm("d")?;
        pinned.auth_service.pinned = true;
        pinned.main_project.pinned = true;
        assert_eq!(
            plan(&mut pinned, Some(&on("1")), &gate, 0),
            Standing::Current
        );
        Ok(())
    }

    #[test]
    fn a_failed_rollout_stops_the_others() -> Result<(), TestError> {
        let gate = Rollouts::default();
        let mut a = realm("a")?;
        assert_eq!(plan(&mut a, Some(&on("1")), &gate, 0), Standing::Upgrading);
        let stopped = observe(&a, &Standing::Upgrading, &deployments("a", 1, true), &gate);
        assert!(
            matches!(&stopped, Standing::Stopped(r, why) if r == "ns/a" && why.contains("timed out"))
        );
        let mut b = realm("b")?;
        let s = plan(&mut b, Some(&on("1")), &gate, 0);
        assert!(
            matches!(&s, Standing::Stopped(r, _) if r == "ns/a"),
            "{s:?}"
        );
        assert_eq!(b.auth_service.image, "ma:1");
        assert_eq!(verdict(&s, &on("1")).reason, "UpgradeStopped");
        // A turn whose realm is no longer reconciled (deleted) lapses.
        let other = Rollouts::default();
        let mut gone = realm("gone")?;
        assert_eq!(
            plan(&mut gone, Some(&on("1")), &other, 0),
            Standing::Upgrading
        );
        let mut next = realm("next")?;
        assert!(matches!(
            plan(&mut next, Some(&on("1")), &other, TURN_TIMEOUT),
            Standing::Waiting(_)
        ));
        let mut next = realm("next")?;
        assert_eq!(
            plan(&mut next, Some(&on("1")), &other, TURN_TIMEOUT + 1),
            Standing::Upgrading
        );
        // Fixed (the rollout completes): the others go on.
        assert_eq!(
            observe(&a, &Standing::Upgrading, &deployments("a", 2, false), &gate),
            Standing::Current
        );
        let mut b = realm("b")?;
        assert_eq!(plan(&mut b, Some(&on("1")), &gate, 0), Standing::Upgrading);
        Ok(())
    }

    #[tokio::test]
    async fn the_operator_applies_the_crd_it_was_built_with() -> Result<(), TestError> {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let server = async move {
            let (req, send) = handle.next_request().await.ok_or("no request")?;
            let (parts, body) = req.into_parts();
            let bytes = body.collect_bytes().await?;
            send.send_response(Response::builder().body(Body::from(bytes.to_vec()))?);
            Ok::<_, TestError>((parts, bytes))
        };
        let (applied, seen) = tokio::join!(apply_crd(client), server);
        let (parts, bytes) = seen?;
        assert_eq!(parts.method, Method::PATCH);
        assert_eq!(
            parts.uri.path(),
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/authrealms.authrealm.io"
        );
        let query = parts.uri.query().unwrap_or_default();
        assert!(query.contains("fieldManager=authrealm-operator") && query.contains("force=true"));
        let body: CustomResourceDefinition = serde_json::from_slice(&bytes)?;
        assert_eq!(body, AuthRealm::crd());
        assert_eq!(applied?.name_any(), "authrealms.authrealm.io");
        Ok(())
    }
}
