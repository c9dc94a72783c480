//! The reconciler: validate → dereference Secrets → advance keys → build
//! (pure, [`crate::children`]) → server-side apply with one field manager →
//! prune → status → events. Also the error policy (backoff per realm).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authrealm_tokens::keyset::{FILE_NAME, KeySetFile};
use authrealm_tokens::{KeyState, ServiceCredential};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{info, instrument, warn};

use crate::children::{
    self, CREDENTIAL_KEY, Child, Component, Inputs, Kind, Names, REDIS_PASSWORD_KEY,
    ROTATE_HANDLED_ANNOTATION,
};
use crate::crd::{AuthRealm, AuthRealmStatus, ROTATE_ANNOTATION, SecretKeyRef};
use crate::keys::{self, KeyEvent, KeyMeta};
use crate::metrics::{Metrics, result};
use crate::status::{self, Verdict};
use crate::validate::{InvalidSpec, validate};

/// The one field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "authrealm-operator";

/// Longest wait between two reconciles of a healthy realm (drift repair).
pub const MAX_REQUEUE: Duration = Duration::from_secs(3600);
/// Wait before looking again at a realm blocked on a missing Secret (the
/// Secret watch usually triggers sooner).
pub const BLOCKED_REQUEUE: Duration = Duration::from_secs(300);

/// The operator's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[source] kube::Error),
    /// Key generation or the key-set invariants failed.
    #[error("signing keys: {0}")]
    Keys(#[source] authrealm_tokens::KeySetError),
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
    /// An object could not be serialised for the API.
    #[error("cannot serialise {kind}: {source}")]
    Serialize {
        /// What was being serialised.
        kind: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The realm has no namespace (it is a namespaced resource; the API never sends this).
    #[error("the AuthRealm has no namespace")]
    NoNamespace,
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Self::Kube(e)
    }
}

/// Unix seconds; a parameter so tests pin time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What every reconcile shares.
pub struct Context {
    /// Kubernetes client (the real API server, or a mock in tests).
    pub client: Client,
    /// Publishes Events on realms.
    pub recorder: Recorder,
    /// Operator metrics.
    pub metrics: Metrics,
    /// The clock.
    pub clock: Clock,
    /// Consecutive failures per realm (`namespace/name`), for backoff.
    pub failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context with the system clock.
    #[must_use]
    pub fn new(client: Client, recorder: Recorder, metrics: Metrics) -> Self {
        Self::with_clock(
            client,
            recorder,
            metrics,
            Arc::new(authrealm_tokens::unix_now),
        )
    }

    /// A context with a given clock.
    #[must_use]
    pub fn with_clock(client: Client, recorder: Recorder, metrics: Metrics, clock: Clock) -> Self {
        Self {
            client,
            recorder,
            metrics,
            clock,
            failures: Mutex::new(HashMap::new()),
        }
    }
}

fn realm_key(realm: &AuthRealm) -> String {
    format!(
        "{}/{}",
        realm.namespace().unwrap_or_default(),
        realm.name_any()
    )
}

/// Reconciles one realm. Errors are retried by [`error_policy`].
///
/// # Errors
/// API failures and key-generation failures. A bad spec or a missing Secret is
/// not an error: it is reported in status and waits for a change.
#[instrument(skip_all, fields(realm = %realm_key(&realm)))]
pub async fn reconcile(realm: Arc<AuthRealm>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let outcome = reconcile_inner(&realm, &ctx).await;
    let label = match &outcome {
        Ok((label, _)) => label,
        Err(_) => result::ERROR,
    };
    ctx.metrics.observe(label, started.elapsed().as_secs_f64());
    if outcome.is_ok()
        && let Ok(mut f) = ctx.failures.lock()
    {
        f.remove(&realm_key(&realm));
    }
    outcome.map(|(_, action)| action)
}

/// Requeues a failed realm with exponential backoff (5 s doubling to 5 min),
/// independently of every other realm.
pub fn error_policy(realm: Arc<AuthRealm>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = realm_key(&realm);
    let n = ctx
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        })
        .unwrap_or(1);
    let delay = backoff(n);
    warn!(realm = %key, error = %error, retry_in = ?delay, "reconcile failed");
    let recorder = ctx.recorder.clone();
    let reference = realm.object_ref(&());
    let note = error.to_string();
    tokio::spawn(async move {
        let ev = Event {
            type_: EventType::Warning,
            reason: "ReconcileFailed".into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&ev, &reference).await {
            warn!(error = %e, "cannot publish event");
        }
    });
    Action::requeue(delay)
}

/// Delay after the `n`th consecutive failure.
#[must_use]
pub fn backoff(n: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << n.saturating_sub(1).min(10));
    Duration::from_secs(secs.min(300))
}

/// Why a realm cannot be applied now (reported in status, not an error).
struct Blocked {
    reason: &'static str,
    message: String,
    /// The condition it concerns besides `Ready`, if any.
    part: Option<&'static str>,
}

async fn reconcile_inner(
    realm: &AuthRealm,
    ctx: &Context,
) -> Result<(&'static str, Action), Error> {
    let ns = realm.namespace().ok_or(Error::NoNamespace)?;
    let name = realm.name_any();
    let names = Names::new(&name);
    let now = (ctx.clock)();
    let auth_url = children::service_url(&name, &ns, Component::AuthService);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);

    // 1. Validate.
    let config = match validate(&name, &auth_url, &realm.spec) {
        Ok(c) => c,
        Err(InvalidSpec { field, message }) => {
            let b = Blocked {
                reason: "InvalidSpec",
                message: format!("{field}: {message}"),
                part: None,
            };
            report_blocked(realm, ctx, &b, now).await?;
            return Ok((result::INVALID_SPEC, Action::await_change()));
        }
    };

    // 2. Dereference the Secrets the spec names; never invent a value.
    let mut referenced: BTreeMap<&str, String> = BTreeMap::new();
    let refs = [
        (
            "spec.database.postgres",
            realm.spec.database.postgres.as_ref(),
            status::MAIN_PROJECT_READY,
        ),
        (
            "spec.redis.external",
            realm.spec.redis.external.as_ref(),
            status::REDIS_READY,
        ),
    ];
    for (field, r, part) in refs {
        let Some(r) = r else { continue };
        match referenced_value(&secrets, r).await? {
            Ok(v) => {
                referenced.insert(field, children::sha256_hex(&[&v]));
            }
            Err((reason, message)) => {
                let b = Blocked {
                    reason,
                    message: format!("{message} ({field})"),
                    part: Some(part),
                };
                report_blocked(realm, ctx, &b, now).await?;
                return Ok((result::BLOCKED, Action::requeue(BLOCKED_REQUEUE)));
            }
        }
    }
    let database_checksum = referenced
        .remove("spec.database.postgres")
        .unwrap_or_default();
    let redis_checksum = referenced.remove("spec.redis.external").unwrap_or_default();

    // 3. The current key set and what the rotate annotation asked for.
    let key_secret = secrets.get_opt(&names.keys()).await?;
    let (current, handled) = match &key_secret {
        None => (None, None),
        Some(s) => {
            let handled = s.annotations().get(ROTATE_HANDLED_ANNOTATION).cloned();
            let bytes = s.data.as_ref().and_then(|d| d.get(FILE_NAME));
            match bytes.map(|b| KeySetFile::parse(&b.0)) {
                Some(Ok(f)) => (
                    Some((f, bytes.map(|b| b.0.clone()).unwrap_or_default())),
                    handled,
                ),
                unusable => {
                    let message = match unusable {
                        Some(Err(e)) => format!(
                            "Secret {} holds an invalid key set ({e}); the operator never overwrites it: fix it or delete it to start a new key set",
                            names.keys()
                        ),
                        _ => format!(
                            "Secret {} has no {FILE_NAME}: delete it to start a new key set",
                            names.keys()
                        ),
                    };
                    let b = Blocked {
                        reason: "KeySetInvalid",
                        message,
                        part: Some(status::KEYS_READY),
                    };
                    report_blocked(realm, ctx, &b, now).await?;
                    return Ok((result::BLOCKED, Action::requeue(BLOCKED_REQUEUE)));
                }
            }
        }
    };
    let requested = realm.annotations().get(ROTATE_ANNOTATION).cloned();
    let rotate_requested = requested.is_some() && requested != handled;
    let revoked: BTreeSet<String> = realm
        .spec
        .signing_keys
        .revoked_key_ids
        .iter()
        .cloned()
        .collect();
    let metas: Vec<KeyMeta> = current
        .as_ref()
        .map(|(f, _)| f.keys.iter().map(KeyMeta::from).collect())
        .unwrap_or_default();
    let kid_base = new_kid_base(now)?;
    let mut counter = 0u32;
    let mut new_kid = || {
        counter += 1;
        format!("{kid_base}{counter}")
    };
    let step = keys::step(
        &metas,
        &config.key_policy,
        &revoked,
        rotate_requested,
        now,
        &mut new_kid,
    );
    let handled_out = if rotate_requested && step.rotated {
        requested.clone()
    } else {
        handled.clone()
    };
    let keyset_json = match &current {
        Some((_, bytes)) if step.keys == metas => bytes.clone(),
        _ => {
            let file = keys::materialize(current.as_ref().map(|(f, _)| f), &step.keys)
                .map_err(Error::Keys)?;
            file.to_json().map_err(Error::Keys)?
        }
    };

    // 4. Generated-once secrets: reuse what exists, generate only when absent.
    let credential = match generated_value(&secrets, &names.credential(), CREDENTIAL_KEY).await? {
        Generated::Existing(v) if ServiceCredential::new(&v).is_ok() => v,
        Generated::Existing(_) => {
            let b = Blocked {
                reason: "SecretInvalid",
                message: format!(
                    "Secret {} has no usable {CREDENTIAL_KEY} (16 characters at least); the operator never replaces it: delete it to generate a new one",
                    names.credential()
                ),
                part: None,
            };
            report_blocked(realm, ctx, &b, now).await?;
            return Ok((result::BLOCKED, Action::requeue(BLOCKED_REQUEUE)));
        }
        Generated::Absent => ServiceCredential::generate()
            .map_err(|_| Error::Random)?
            .expose()
            .to_owned(),
    };
    let managed_redis = realm.spec.redis.external.is_none();
    let redis_password = if managed_redis {
        match generated_value(&secrets, &names.redis_secret(), REDIS_PASSWORD_KEY).await? {
            Generated::Existing(v) if !v.is_empty() => Some(v),
            Generated::Existing(_) => {
                let b = Blocked {
                    reason: "SecretInvalid",
                    message: format!(
                        "Secret {} has no {REDIS_PASSWORD_KEY}; delete it to generate a new one",
                        names.redis_secret()
                    ),
                    part: Some(status::REDIS_READY),
                };
                report_blocked(realm, ctx, &b, now).await?;
                return Ok((result::BLOCKED, Action::requeue(BLOCKED_REQUEUE)));
            }
            Generated::Absent => {
                Some(authrealm_tokens::random_token(32).map_err(|_| Error::Random)?)
            }
        }
    } else {
        None
    };

    // 5. Build (pure) and apply.
    let built = children::build(
        realm,
        Inputs {
            config: &config,
            keyset_json: &keyset_json,
            rotate_handled: handled_out.as_deref(),
            credential: &credential,
            redis_password: redis_password.as_deref(),
            database_checksum: &database_checksum,
            redis_checksum: &redis_checksum,
        },
    );
    let mut deployments: BTreeMap<String, Deployment> = BTreeMap::new();
    for child in &built.children {
        let c = ctx.client.clone();
        match child {
            Child::ServiceAccount(o) => drop(apply(c, &ns, o).await?),
            Child::ConfigMap(o) => drop(apply(c, &ns, o).await?),
            Child::Secret(o) => drop(apply(c, &ns, o).await?),
            Child::Service(o) => drop(apply(c, &ns, o).await?),
            Child::Deployment(o) => {
                let d = apply(c, &ns, o).await?;
                deployments.insert(d.name_any(), d);
            }
            Child::PodDisruptionBudget(o) => drop(apply(c, &ns, o).await?),
            Child::NetworkPolicy(o) => drop(apply(c, &ns, o).await?),
        }
    }
    for (kind, child_name) in &built.absent {
        prune(ctx.client.clone(), &ns, *kind, child_name).await?;
    }

    // 6. Status.
    let active = step.keys.iter().find(|k| k.state == KeyState::Active);
    let next = step.keys.iter().find(|k| k.state == KeyState::Next);
    let keys_verdict = Verdict::new(
        status::KEYS_READY,
        Some(true),
        "KeysPublished",
        format!(
            "active key {} signs; next key {} activates at {}",
            active.map_or("-", |k| k.kid.as_str()),
            next.map_or("-", |k| k.kid.as_str()),
            step.next_rotation.map(status::rfc3339).unwrap_or_default()
        ),
    );
    let redis_verdict = match &realm.spec.redis.external {
        Some(r) => Verdict::new(
            status::REDIS_READY,
            Some(true),
            "External",
            format!("Redis URL from Secret {} key {}", r.name, r.key),
        ),
        None => status::deployment_verdict(
            status::REDIS_READY,
            deployments.get(&names.workload(Component::Redis)),
        ),
    };
    let parts = vec![
        keys_verdict,
        redis_verdict,
        status::deployment_verdict(
            status::AUTH_SERVICE_READY,
            deployments.get(&names.workload(Component::AuthService)),
        ),
        status::deployment_verdict(
            status::MAIN_PROJECT_READY,
            deployments.get(&names.workload(Component::MainProject)),
        ),
    ];
    let mut verdicts = vec![status::ready_verdict(&parts)];
    verdicts.extend(parts);
    let old = realm.status.clone().unwrap_or_default();
    let new_status = AuthRealmStatus {
        observed_generation: realm.metadata.generation,
        conditions: status::merge_conditions(
            &old.conditions,
            &verdicts,
            &status::rfc3339(now),
            realm.metadata.generation,
        ),
        active_key_id: active.map(|k| k.kid.clone()),
        keys: status::key_statuses(&step.keys),
        next_rotation_time: step.next_rotation.map(status::rfc3339),
        auth_service_url: Some(auth_url),
        main_project_url: Some(children::service_url(&name, &ns, Component::MainProject)),
    };
    // An event when the realm becomes ready, or stops being ready; not for
    // the rollout of a new realm.
    let was_ready = status::condition(Some(&old), status::READY).map(|c| c.status.as_str());
    let is_ready = status::condition(Some(&new_status), status::READY).map(|c| c.status.as_str());
    let ready_changed =
        was_ready != is_ready && (is_ready == Some("True") || was_ready == Some("True"));
    if realm.status.as_ref() != Some(&new_status) {
        patch_status(ctx, realm, &ns, &new_status).await?;
    }

    // 7. Events.
    for (type_, reason, note) in key_event_notes(&step.events) {
        publish(ctx, realm, type_, reason, note).await;
    }
    if ready_changed && let Some(c) = status::condition(Some(&new_status), status::READY) {
        let type_ = if c.status == "True" {
            EventType::Normal
        } else {
            EventType::Warning
        };
        publish(ctx, realm, type_, &c.reason.clone(), c.message.clone()).await;
    }
    if !step.events.is_empty() {
        info!(events = ?step.events, "signing keys changed");
    }

    // 8. Come back at the next key event (or to repair drift).
    let wait = step
        .next_event
        .map_or(MAX_REQUEUE, |t| {
            Duration::from_secs(u64::try_from(t.saturating_sub(now)).unwrap_or(0))
        })
        .clamp(Duration::from_secs(1), MAX_REQUEUE);
    Ok((result::APPLIED, Action::requeue(wait)))
}

/// A random, date-prefixed base for new key ids, e.g. `20260124-Xk3...`.
fn new_kid_base(now: i64) -> Result<String, Error> {
    let date = jiff::Timestamp::from_second(now)
        .map(|t| t.strftime("%Y%m%d").to_string())
        .unwrap_or_default();
    let random = authrealm_tokens::random_token(9).map_err(|_| Error::Random)?;
    Ok(format!("{date}-{random}-"))
}

/// The value of a referenced Secret key, or why it is not there.
async fn referenced_value(
    secrets: &Api<Secret>,
    r: &SecretKeyRef,
) -> Result<Result<Vec<u8>, (&'static str, String)>, Error> {
    let Some(s) = secrets.get_opt(&r.name).await? else {
        return Ok(Err((
            "SecretNotFound",
            format!("Secret {:?} was not found", r.name),
        )));
    };
    let value = s
        .data
        .as_ref()
        .and_then(|d| d.get(&r.key))
        .map(|b| b.0.clone())
        .or_else(|| {
            s.string_data
                .as_ref()
                .and_then(|d| d.get(&r.key))
                .map(|v| v.clone().into_bytes())
        });
    Ok(match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err((
            "SecretKeyNotFound",
            format!("Secret {:?} has no key {:?}", r.name, r.key),
        )),
    })
}

enum Generated {
    Existing(String),
    Absent,
}

async fn generated_value(secrets: &Api<Secret>, name: &str, key: &str) -> Result<Generated, Error> {
    Ok(match secrets.get_opt(name).await? {
        None => Generated::Absent,
        Some(s) => Generated::Existing(
            s.data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .unwrap_or_default(),
        ),
    })
}

/// Server-side apply of one child with the operator's field manager.
async fn apply<K>(client: Client, ns: &str, obj: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client, ns);
    let mut body = serde_json::to_value(obj).map_err(|source| Error::Serialize {
        kind: "child",
        source,
    })?;
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api
        .patch(&obj.name_any(), &params, &Patch::Apply(body))
        .await?)
}

/// Deletes an optional child the spec no longer asks for; absent is fine.
async fn prune(client: Client, ns: &str, kind: Kind, name: &str) -> Result<(), Error> {
    let res = match kind {
        Kind::Deployment => delete::<Deployment>(client, ns, name).await,
        Kind::Service => delete::<Service>(client, ns, name).await,
        Kind::Secret => delete::<Secret>(client, ns, name).await,
        Kind::ServiceAccount => delete::<ServiceAccount>(client, ns, name).await,
        Kind::PodDisruptionBudget => delete::<PodDisruptionBudget>(client, ns, name).await,
        Kind::NetworkPolicy => delete::<NetworkPolicy>(client, ns, name).await,
    };
    match res {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes one namespaced object in the background (its dependents follow).
async fn delete<K>(client: Client, ns: &str, name: &str) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned,
{
    Api::<K>::namespaced(client, ns)
        .delete(name, &DeleteParams::background())
        .await
        .map(drop)
}

async fn patch_status(
    ctx: &Context,
    realm: &AuthRealm,
    ns: &str,
    status: &AuthRealmStatus,
) -> Result<(), Error> {
    let api: Api<AuthRealm> = Api::namespaced(ctx.client.clone(), ns);
    let body = serde_json::json!({
        "apiVersion": AuthRealm::api_version(&()),
        "kind": AuthRealm::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&realm.name_any(), &params, &Patch::Apply(body))
        .await?;
    Ok(())
}

/// Reports a realm that cannot be applied: `Ready=False` (and the concerned
/// part) with the reason; everything else in status is kept.
async fn report_blocked(
    realm: &AuthRealm,
    ctx: &Context,
    b: &Blocked,
    now: i64,
) -> Result<(), Error> {
    let ns = realm.namespace().ok_or(Error::NoNamespace)?;
    let old = realm.status.clone().unwrap_or_default();
    let mut verdicts = vec![Verdict::new(
        status::READY,
        Some(false),
        b.reason,
        b.message.clone(),
    )];
    if let Some(part) = b.part {
        verdicts.push(Verdict::new(part, Some(false), b.reason, b.message.clone()));
    }
    let new_status = AuthRealmStatus {
        observed_generation: realm.metadata.generation,
        conditions: status::merge_conditions(
            &old.conditions,
            &verdicts,
            &status::rfc3339(now),
            realm.metadata.generation,
        ),
        ..old.clone()
    };
    if realm.status.as_ref() == Some(&new_status) {
        return Ok(());
    }
    warn!(reason = b.reason, message = %b.message, "realm blocked");
    patch_status(ctx, realm, &ns, &new_status).await?;
    let old_ready = status::condition(Some(&old), status::READY);
    if old_ready.map(|c| (c.status.as_str(), c.reason.as_str())) != Some(("False", b.reason)) {
        publish(ctx, realm, EventType::Warning, b.reason, b.message.clone()).await;
    }
    Ok(())
}

/// Event type, reason and note for the key changes of one step: one Event
/// per reason (the recorder folds same-reason events into a series and would
/// drop the later notes), notes joined in order.
fn key_event_notes(events: &[KeyEvent]) -> Vec<(EventType, &'static str, String)> {
    let mut out: Vec<(EventType, &'static str, String)> = Vec::new();
    for (type_, reason, note) in events.iter().map(key_event_note) {
        match out.iter_mut().find(|(_, r, _)| *r == reason) {
            Some((_, _, n)) => {
                n.push_str("; ");
                n.push_str(&note);
            }
            None => out.push((type_, reason, note)),
        }
    }
    out
}

fn key_event_note(e: &KeyEvent) -> (EventType, &'static str, String) {
    match e {
        KeyEvent::Created { kid, state } => (
            EventType::Normal,
            "KeyCreated",
            format!("generated signing key {kid} as {state:?}"),
        ),
        KeyEvent::Activated { kid, early: false } => (
            EventType::Normal,
            "KeyRotated",
            format!("signing key {kid} is now active"),
        ),
        KeyEvent::Activated { kid, early: true } => (
            EventType::Warning,
            "KeyActivatedEarly",
            format!(
                "signing key {kid} became active before it was published for prePublish: verifiers that cached the JWKS refetch it on the unknown kid"
            ),
        ),
        KeyEvent::Retired { kid, remove_after } => (
            EventType::Normal,
            "KeyRetiring",
            format!(
                "signing key {kid} stopped signing; it stays published until {}",
                status::rfc3339(*remove_after)
            ),
        ),
        KeyEvent::Removed { kid } => (
            EventType::Normal,
            "KeyRemoved",
            format!("retired signing key {kid} removed: every token it signed has expired"),
        ),
        KeyEvent::Revoked { kid, state } => (
            EventType::Warning,
            "KeyRevoked",
            format!(
                "signing key {kid} ({state:?}) revoked and removed: tokens it signed no longer verify"
            ),
        ),
        KeyEvent::Replaced { kid } => (
            EventType::Normal,
            "KeyReplaced",
            format!("waiting key {kid} replaced by one of the new algorithm"),
        ),
    }
}

async fn publish(ctx: &Context, realm: &AuthRealm, type_: EventType, reason: &str, note: String) {
    let ev = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &realm.object_ref(&())).await {
        warn!(error = %e, reason, "cannot publish event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(40));
        assert_eq!(backoff(7), Duration::from_secs(300));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }
}
