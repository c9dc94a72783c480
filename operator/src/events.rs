//! Kubernetes Events on realms: what each key change and each readiness
//! change says, and the [`Publisher`] that writes them.
//!
//! kube's own `Recorder` folds every event with the same type, reason and
//! action into one series and keeps the first note, so the second rotation's
//! `KeyCreated` would still name the first key. The publisher here folds only
//! events that are the same to the letter (note included): each rotation,
//! activation, retirement and revocation is an Event of its own with its key
//! id, and a repeated identical event still becomes a series.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use tracing::warn;

use crate::crd::{AuthRealm, AuthRealmStatus};
use crate::keys::KeyEvent;
use crate::status::{self, Outcome};

/// How long an identical event is folded into the previous one's series.
const FOLD_WINDOW_SECS: i64 = 6 * 60;

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Something worth knowing.
    Normal,
    /// Something that needs attention.
    Warning,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// One event to publish on a realm.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Note {
    /// Normal or Warning.
    pub kind: Kind,
    /// CamelCase reason, e.g. `KeyRotated`.
    pub reason: String,
    /// What happened, for people (names the key where there is one).
    pub note: String,
}

impl Note {
    /// An event.
    #[must_use]
    pub fn new(kind: Kind, reason: &str, note: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.to_owned(),
            note: note.into(),
        }
    }
}

/// One event per key change, in order, each naming its key.
#[must_use]
pub fn key_notes(events: &[KeyEvent]) -> Vec<Note> {
    events.iter().map(key_note).collect()
}

/// Everything to publish after a reconcile that moved the status from `old`
/// to `new`: a blocked realm's reason (once), the key changes, and the
/// realm becoming ready or no longer ready (not the rollout of a new realm).
#[must_use]
pub fn notes(old: Option<&AuthRealmStatus>, new: &AuthRealmStatus, outcome: &Outcome) -> Vec<Note> {
    let old_ready = status::condition(old, status::READY);
    let new_ready = status::condition(Some(new), status::READY);
    match outcome {
        Outcome::Blocked(b) => {
            let unchanged = old == Some(new);
            let reported = old_ready.map(|c| (c.status.as_str(), c.reason.as_str()))
                == Some(("False", b.reason));
            if unchanged || reported {
                Vec::new()
            } else {
                vec![Note::new(Kind::Warning, b.reason, b.message.clone())]
            }
        }
        Outcome::Applied(a) => {
            let mut out = key_notes(&a.keys.events);
            let was = old_ready.map(|c| c.status.as_str());
            let is = new_ready.map(|c| c.status.as_str());
            if was != is
                && (is == Some("True") || was == Some("True"))
                && let Some(c) = new_ready
            {
                let kind = if c.status == "True" {
                    Kind::Normal
                } else {
                    Kind::Warning
                };
                out.push(Note::new(kind, &c.reason, c.message.clone()));
            }
            out
        }
    }
}

fn key_note(e: &KeyEvent) -> Note {
    match e {
        KeyEvent::Created { kid, state } => Note::new(
            Kind::Normal,
            "KeyCreated",
            format!("generated signing key {kid} as {state:?}"),
        ),
        KeyEvent::Activated { kid, early: false } => Note::new(
            Kind::Normal,
            "KeyRotated",
            format!("signing key {kid} is now active"),
        ),
        KeyEvent::Activated { kid, early: true } => Note::new(
            Kind::Warning,
            "KeyActivatedEarly",
            format!(
                "signing key {kid} became active before it was published for prePublish: verifiers that cached the JWKS refetch it on the unknown kid"
            ),
        ),
        KeyEvent::Retired { kid, remove_after } => Note::new(
            Kind::Normal,
            "KeyRetiring",
            format!(
                "signing key {kid} stopped signing; it stays published until {}",
                status::rfc3339(*remove_after)
            ),
        ),
        KeyEvent::Removed { kid } => Note::new(
            Kind::Normal,
            "KeyRemoved",
            format!("retired signing key {kid} removed: every token it signed has expired"),
        ),
        KeyEvent::Revoked { kid, state } => Note::new(
            Kind::Warning,
            "KeyRevoked",
            format!(
                "signing key {kid} ({state:?}) revoked and removed: tokens it signed no longer verify"
            ),
        ),
        KeyEvent::Replaced { kid } => Note::new(
            Kind::Normal,
            "KeyReplaced",
            format!("waiting key {kid} replaced by one of the new algorithm"),
        ),
    }
}

/// What was last written for one distinct event: its object name, how
/// often it happened, and when first and last.
#[derive(Debug, Clone)]
struct Written {
    name: String,
    count: i32,
    last: i64,
}

/// Writes `events.k8s.io/v1` Events about realms, folding only identical ones.
pub struct Publisher {
    client: Client,
    controller: String,
    instance: String,
    written: Mutex<HashMap<(String, Note), Written>>,
    sequence: Mutex<u64>,
}

impl Publisher {
    /// A publisher reporting as `controller` (the field manager) from `instance` (the pod).
    #[must_use]
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Self {
            client,
            controller: controller.to_owned(),
            instance: instance.to_owned(),
            written: Mutex::new(HashMap::new()),
            sequence: Mutex::new(0),
        }
    }

    /// Publishes `note` about `realm` at `now` (Unix seconds); failures are
    /// logged, never returned: an event is worth less than the reconcile.
    pub async fn publish(&self, realm: &AuthRealm, note: &Note, now: i64) {
        let regarding = realm.object_ref(&());
        let ns = regarding.namespace.clone().unwrap_or_default();
        let key = (
            format!("{ns}/{}", regarding.name.clone().unwrap_or_default()),
            note.clone(),
        );
        let previous = self.written.lock().ok().and_then(|mut w| {
            w.retain(|_, v| now - v.last < FOLD_WINDOW_SECS);
            w.get(&key).cloned()
        });
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &ns);
        let at =
            MicroTime(jiff::Timestamp::from_second(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH));
        let result = match previous {
            Some(p) => {
                let count = p.count.saturating_add(1);
                let patch = serde_json::json!({
                    "series": EventSeries { count, last_observed_time: at },
                });
                let done = api
                    .patch(&p.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
                done.map(|_| Written {
                    name: p.name,
                    count,
                    last: now,
                })
            }
            None => {
                let name = self.new_name(&regarding, now);
                let event = self.event(&name, regarding, note, at);
                api.create(&PostParams::default(), &event)
                    .await
                    .map(|_| Written {
                        name,
                        count: 1,
                        last: now,
                    })
            }
        };
        match result {
            Ok(w) => {
                if let Ok(mut map) = self.written.lock() {
                    map.insert(key, w);
                }
            }
            Err(e) => warn!(error = %e, reason = %note.reason, "cannot publish event"),
        }
    }

    fn new_name(&self, regarding: &ObjectReference, now: i64) -> String {
        let n = self
            .sequence
            .lock()
            .map(|mut s| {
                *s = s.wrapping_add(1);
                *s
            })
            .unwrap_or(0);
        format!(
            "{}.{now:x}{n:04x}",
            regarding.name.as_deref().unwrap_or("realm")
        )
    }

    fn event(
        &self,
        name: &str,
        regarding: ObjectReference,
        note: &Note,
        at: MicroTime,
    ) -> K8sEvent {
        K8sEvent {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            action: Some("Reconcile".to_owned()),
            reason: Some(note.reason.clone()),
            note: Some(note.note.clone()),
            type_: Some(note.kind.as_str().to_owned()),
            event_time: Some(at),
            regarding: Some(regarding),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..K8sEvent::default()
        }
    }
}
