//! The realm's status: what one reconcile came to ([`Outcome`]: applied, or
//! blocked with a reason), turned into conditions, the key list and the URLs
//! in one place ([`build`]). Pure functions of their inputs.

use std::collections::BTreeMap;

use authrealm_tokens::KeyState;
use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::controller::Action;

use crate::children::names::{JWKS_PATH, forward_auth_url, jwks_url};
use crate::children::{Component, Names, service_url};
use crate::crd::{AuthRealm, AuthRealmStatus, Condition, ImagesStatus, KeyStatus};
use crate::keys::{KeyMeta, Step};
use crate::metrics::result;
use crate::upgrade::{self, Standing};
use crate::validate::{InvalidSpec, ValidRealm};

/// Longest wait between two reconciles of a healthy realm (drift repair).
pub const MAX_REQUEUE: std::time::Duration = std::time::Duration::from_secs(3600);
/// Wait before looking again at a realm blocked on a missing Secret (the
/// Secret watch usually triggers sooner).
pub const BLOCKED_REQUEUE: std::time::Duration = std::time::Duration::from_secs(300);

/// Why a realm cannot be applied now (reported in status, not an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The condition reason, e.g. `SecretNotFound`.
    pub reason: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
    /// The condition it concerns besides `Ready`, if any.
    pub part: Option<&'static str>,
}

impl From<InvalidSpec> for Blocked {
    fn from(e: InvalidSpec) -> Self {
        Self {
            reason: "InvalidSpec",
            message: e.to_string(),
            part: None,
        }
    }
}

/// What was applied for a realm.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The key set after this reconcile's step.
    pub keys: Step,
    /// The Deployments as the API server answered the apply, by name.
    pub deployments: BTreeMap<String, Deployment>,
    /// The names of the realm's children.
    pub names: Names,
    /// The realm's external Redis Secret and key, when it has one.
    pub external_redis: Option<(String, String)>,
    /// The `iss` claim.
    pub issuer: String,
    /// Where verifiers fetch the JWKS: under the Ingress's public URL when
    /// the realm has one, else MA's in-cluster URL.
    pub jwks_url: String,
    /// The `aud` claim.
    pub audience: String,
    /// The images the Deployments were given.
    pub images: ImagesStatus,
    /// Where the realm stands with the operator's images.
    pub standing: Standing,
    /// Per key id, how many MA replicas serve it (`served/replicas`), and
    /// since when every one has (the next key).
    pub propagation: BTreeMap<String, (String, Option<i64>)>,
}

/// The JWKS URL the status reports: under the Ingress's public URL when the
/// realm has one (where verifiers outside the cluster reach it), else MA's
/// in-cluster URL.
#[must_use]
pub fn published_jwks_url(realm: &ValidRealm) -> String {
    realm.ingress.as_ref().map_or_else(
        || jwks_url(&realm.name, &realm.namespace),
        |i| format!("{}{JWKS_PATH}", i.origin),
    )
}

/// What one reconcile came to.
// One per reconcile, built once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Nothing applied: the spec or a Secret needs a change.
    Blocked(Blocked),
    /// Every child applied.
    Applied(Applied),
}

impl Outcome {
    /// Everything was applied for `realm`.
    #[must_use]
    pub fn applied(
        realm: &ValidRealm,
        keys: Step,
        propagation: BTreeMap<String, (String, Option<i64>)>,
        deployments: BTreeMap<String, Deployment>,
        standing: Standing,
    ) -> Self {
        let external_redis = match &realm.redis {
            crate::validate::Redis::External(r) => Some((r.name.clone(), r.key.clone())),
            crate::validate::Redis::Managed(_) => None,
        };
        Self::Applied(Applied {
            keys,
            deployments,
            names: Names::new(&realm.name),
            external_redis,
            issuer: realm.config.issuer.clone(),
            jwks_url: published_jwks_url(realm),
            audience: realm.config.audience.clone(),
            images: ImagesStatus {
                auth_service: realm.auth_service.image.clone(),
                main_project: realm.main_project.image.clone(),
                follows_operator: !realm.auth_service.pinned && !realm.main_project.pinned,
            },
            propagation,
            standing,
        })
    }

    /// The metrics label of this outcome.
    #[must_use]
    pub fn result(&self) -> &'static str {
        match self {
            Self::Blocked(b) if b.reason == "InvalidSpec" => result::INVALID_SPEC,
            Self::Blocked(_) => result::BLOCKED,
            Self::Applied(_) => result::APPLIED,
        }
    }

    /// When to look at the realm again: after a spec change (invalid spec),
    /// a while (other blocks), or at the next key event (at most an hour).
    #[must_use]
    pub fn requeue(&self, now: i64) -> Action {
        match self {
            Self::Blocked(b) if b.reason == "InvalidSpec" => Action::await_change(),
            Self::Blocked(_) => Action::requeue(BLOCKED_REQUEUE),
            Self::Applied(a) => {
                let wait = a
                    .keys
                    .next_event
                    .map_or(MAX_REQUEUE, |t| {
                        std::time::Duration::from_secs(
                            u64::try_from(t.saturating_sub(now)).unwrap_or(0),
                        )
                    })
                    .clamp(std::time::Duration::from_secs(1), MAX_REQUEUE);
                Action::requeue(wait)
            }
        }
    }
}

/// The realm's new status after `outcome` at `now`. A blocked realm keeps
/// everything it had and gets `Ready=False` (and the part concerned) with
/// the reason; an applied one gets every condition, the keys and the URLs.
#[must_use]
pub fn build(realm: &AuthRealm, outcome: &Outcome, now: i64) -> AuthRealmStatus {
    let old = realm.status.clone().unwrap_or_default();
    let generation = realm.metadata.generation;
    let verdicts = match outcome {
        Outcome::Blocked(b) => {
            let mut v = vec![Verdict::new(
                READY,
                Some(false),
                b.reason,
                b.message.clone(),
            )];
            if let Some(part) = b.part {
                v.push(Verdict::new(part, Some(false), b.reason, b.message.clone()));
            }
            v
        }
        Outcome::Applied(a) => applied_verdicts(a),
    };
    let conditions = merge_conditions(&old.conditions, &verdicts, &rfc3339(now), generation);
    let Outcome::Applied(a) = outcome else {
        return AuthRealmStatus {
            observed_generation: generation,
            conditions,
            ..old
        };
    };
    let name = realm.metadata.name.clone().unwrap_or_default();
    let ns = realm.metadata.namespace.clone().unwrap_or_default();
    AuthRealmStatus {
        observed_generation: generation,
        conditions,
        active_key_id: a
            .keys
            .keys
            .iter()
            .find(|k| k.state == KeyState::Active)
            .map(|k| k.kid.clone()),
        keys: key_statuses(&a.keys.keys, &a.propagation),
        next_rotation_time: a.keys.next_rotation.map(rfc3339),
        auth_service_url: Some(service_url(&name, &ns, Component::AuthService)),
        main_project_url: Some(service_url(&name, &ns, Component::MainProject)),
        discovery_url: Some(format!(
            "{}/.well-known/openid-configuration",
            a.issuer.trim_end_matches('/')
        )),
        jwks_url: Some(a.jwks_url.clone()),
        forward_auth_url: Some(forward_auth_url(&name, &ns)),
        issuer: Some(a.issuer.clone()),
        audience: Some(a.audience.clone()),
        images: Some(a.images.clone()),
    }
}

fn applied_verdicts(a: &Applied) -> Vec<Verdict> {
    let find = |state| a.keys.keys.iter().find(|k| k.state == state);
    let (active, next) = (find(KeyState::Active), find(KeyState::Next));
    let next_kid = next.map_or("-", |k| k.kid.as_str());
    let served = a
        .propagation
        .get(next_kid)
        .map_or("0/0", |(l, _)| l.as_str());
    let active_kid = active.map_or("-", |k| k.kid.as_str());
    let at = a.keys.next_rotation.map(rfc3339).unwrap_or_default();
    let keys = if a.keys.held {
        Verdict::new(
            KEYS_READY,
            Some(true),
            "ActivationHeld",
            format!(
                "active key {active_kid} signs; next key {next_kid} was due at {at} but is served by {served} auth-service replicas: it activates once every replica has served it for jwksMaxAge"
            ),
        )
    } else {
        Verdict::new(
            KEYS_READY,
            Some(true),
            "KeysPublished",
            format!(
                "active key {active_kid} signs; next key {next_kid} (served by {served} replicas) activates at {at}"
            ),
        )
    };
    let workload = |c| a.deployments.get(&a.names.workload(c));
    let redis = match &a.external_redis {
        Some((name, key)) => Verdict::new(
            REDIS_READY,
            Some(true),
            "External",
            format!("Redis URL from Secret {name} key {key}"),
        ),
        None => deployment_verdict(REDIS_READY, workload(Component::Redis)),
    };
    let parts = vec![
        keys,
        redis,
        deployment_verdict(AUTH_SERVICE_READY, workload(Component::AuthService)),
        deployment_verdict(MAIN_PROJECT_READY, workload(Component::MainProject)),
    ];
    let mut verdicts = vec![
        ready_verdict(&parts),
        progressing_verdict(&parts),
        upgrade::verdict(&a.standing, &a.images),
    ];
    verdicts.extend(parts);
    verdicts
}

/// `Progressing`: True while a workload rolls out or scales (the realm may
/// still be `Ready`: that says it serves), False once every one is settled.
#[must_use]
pub fn progressing_verdict(parts: &[Verdict]) -> Verdict {
    let moving: Vec<String> = parts
        .iter()
        .filter(|v| v.reason == ROLLING_OUT || v.reason == "Progressing")
        .map(|v| format!("{}: {}", v.type_, v.message))
        .collect();
    if moving.is_empty() {
        Verdict::new(
            PROGRESSING,
            Some(false),
            "Complete",
            "every workload runs its current template with all its replicas",
        )
    } else {
        Verdict::new(PROGRESSING, Some(true), ROLLING_OUT, moving.join("; "))
    }
}

/// Condition types, in the order they are reported.
pub const READY: &str = "Ready";
/// The key Secret holds a valid set with one active key.
pub const KEYS_READY: &str = "KeysReady";
/// Redis is available (managed) or its URL Secret exists (external).
pub const REDIS_READY: &str = "RedisReady";
/// The auth-service Deployment is available.
pub const AUTH_SERVICE_READY: &str = "AuthServiceReady";
/// The main-project Deployment is available.
pub const MAIN_PROJECT_READY: &str = "MainProjectReady";
/// The realm runs the images it should (not part of `Ready`): False while
/// it waits for, or goes through, an upgrade to the operator's images.
pub const IMAGES_CURRENT: &str = "ImagesCurrent";
/// A rollout or scale is in progress (not part of `Ready`).
pub const PROGRESSING: &str = "Progressing";
/// Reason of a part that serves while its Deployment rolls out or scales.
pub const ROLLING_OUT: &str = "RollingOut";

/// The parts whose readiness makes the realm `Ready`.
pub const PARTS: [&str; 4] = [
    KEYS_READY,
    REDIS_READY,
    AUTH_SERVICE_READY,
    MAIN_PROJECT_READY,
];

/// One condition's verdict before times are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Condition type.
    pub type_: &'static str,
    /// `Some(true)` = True, `Some(false)` = False, `None` = Unknown.
    pub ok: Option<bool>,
    /// CamelCase reason.
    pub reason: String,
    /// Explanation.
    pub message: String,
}

impl Verdict {
    /// A verdict.
    #[must_use]
    pub fn new(
        type_: &'static str,
        ok: Option<bool>,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            ok,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// Availability of a Deployment from the API server's answer to the apply.
/// Serving (the Deployment is `Available` with at least one pod) is True;
/// a rollout or scale still in progress is True with reason `RollingOut`,
/// not an outage.
#[must_use]
pub fn deployment_verdict(type_: &'static str, d: Option<&Deployment>) -> Verdict {
    let Some(d) = d else {
        return Verdict::new(
            type_,
            None,
            "NotApplied",
            "the Deployment was not applied yet",
        );
    };
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let available = status.available_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let counts = format!("{available}/{want} pods available, {updated} updated");
    let settled = available >= want
        && updated >= want
        && status.replicas.unwrap_or(0) <= want
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    let condition = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Available");
    match condition {
        Some(c) if c.status == "True" && available > 0 => {
            if settled {
                Verdict::new(type_, Some(true), "Available", counts)
            } else {
                Verdict::new(
                    type_,
                    Some(true),
                    ROLLING_OUT,
                    format!("{counts}: serving while the rollout completes"),
                )
            }
        }
        Some(c) => Verdict::new(
            type_,
            Some(false),
            "Unavailable",
            format!("{counts}: {}", c.message.unwrap_or_default()),
        ),
        None => Verdict::new(type_, Some(false), "Progressing", counts),
    }
}

/// The `Ready` verdict: True when every part is, else the first part that is not.
#[must_use]
pub fn ready_verdict(parts: &[Verdict]) -> Verdict {
    match parts.iter().find(|v| v.ok != Some(true)) {
        None => Verdict::new(
            READY,
            Some(true),
            "Ready",
            "keys, Redis, auth-service and main-project are ready",
        ),
        Some(v) => Verdict::new(
            READY,
            Some(false),
            &v.reason,
            format!("{}: {}", v.type_, v.message),
        ),
    }
}

/// Merges verdicts into the existing conditions: a condition whose status
/// did not change keeps its `lastTransitionTime`; types not given are kept.
#[must_use]
pub fn merge_conditions(
    existing: &[Condition],
    verdicts: &[Verdict],
    now_rfc3339: &str,
    generation: Option<i64>,
) -> Vec<Condition> {
    let order = [
        READY,
        KEYS_READY,
        REDIS_READY,
        AUTH_SERVICE_READY,
        MAIN_PROJECT_READY,
        PROGRESSING,
        IMAGES_CURRENT,
    ];
    let mut out: Vec<Condition> = Vec::new();
    for t in order {
        let old = existing.iter().find(|c| c.type_ == t);
        let Some(v) = verdicts.iter().find(|v| v.type_ == t) else {
            if let Some(o) = old {
                out.push(o.clone());
            }
            continue;
        };
        let status = match v.ok {
            Some(true) => "True",
            Some(false) => "False",
            None => "Unknown",
        };
        let last_transition_time = match old {
            Some(o) if o.status == status => o.last_transition_time.clone(),
            _ => now_rfc3339.to_owned(),
        };
        out.push(Condition {
            type_: t.to_owned(),
            status: status.to_owned(),
            reason: v.reason.clone(),
            message: v.message.clone(),
            last_transition_time,
            observed_generation: generation,
        });
    }
    out
}

/// RFC 3339 text of a Unix time.
#[must_use]
pub fn rfc3339(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// The key list for status (never the private parts), with how far each has
/// reached the auth-service replicas.
#[must_use]
pub fn key_statuses(
    keys: &[KeyMeta],
    propagation: &BTreeMap<String, (String, Option<i64>)>,
) -> Vec<KeyStatus> {
    let mut keys: Vec<&KeyMeta> = keys.iter().collect();
    keys.sort_by_key(|k| (k.created_at, k.kid.clone()));
    keys.into_iter()
        .map(|k| KeyStatus {
            kid: k.kid.clone(),
            algorithm: k.alg.as_str().to_owned(),
            state: match k.state {
                authrealm_tokens::KeyState::Next => "next",
                authrealm_tokens::KeyState::Active => "active",
                authrealm_tokens::KeyState::Retiring => "retiring",
            }
            .to_owned(),
            created_at: rfc3339(k.created_at),
            activated_at: k.activated_at.map(rfc3339),
            retired_at: k.retired_at.map(rfc3339),
            remove_after: k.remove_after.map(rfc3339),
            served_by: propagation.get(&k.kid).map(|(label, _)| label.clone()),
            served_everywhere_since: propagation
                .get(&k.kid)
                .and_then(|(_, since)| since.map(rfc3339)),
        })
        .collect()
}

/// The condition of a type in a status, if any.
#[must_use]
pub fn condition<'a>(status: Option<&'a AuthRealmStatus>, type_: &str) -> Option<&'a Condition> {
    status?.conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests;
