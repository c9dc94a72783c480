//! The objects and status of the clients step, from validated values only.
//! Pure: no client calls, no clock, no randomness.

use std::collections::BTreeMap;

use authrealm_tokens::clients::{
    ClientEntry, ClientRegistryError, ClientRegistryFile, FILE_NAME, FORMAT_VERSION,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::secret::Material;
use super::validate::{Refused, ValidClient};
use super::{
    CLIENT_ID_KEY, CLIENT_SECRET_KEY, PREVIOUS_HASH_ANNOTATION, PREVIOUS_NOT_AFTER_ANNOTATION,
    REALM_LABEL, REALM_NAMESPACE_LABEL, ROTATE_HANDLED_ANNOTATION, TOKEN_PATH, secret_name,
};
use crate::children::{Names, common_labels};
use crate::crd::{AuthClient, AuthClientStatus, Condition};
use crate::status::rfc3339;
use crate::validate::ValidRealm;

/// The `Ready` condition's type.
pub const READY: &str = "Ready";

fn realm_labels(realm: &ValidRealm, component: &str) -> BTreeMap<String, String> {
    let mut l = common_labels(&realm.name, component);
    l.insert(REALM_LABEL.into(), realm.name.clone());
    l.insert(REALM_NAMESPACE_LABEL.into(), realm.namespace.clone());
    l
}

/// The Secret next to a confidential client: `client-id` and
/// `client-secret` for the app, the rotation bookkeeping as annotations.
#[must_use]
pub fn client_secret(realm: &ValidRealm, client: &ValidClient, m: &Material) -> Secret {
    let mut annotations = BTreeMap::new();
    if let Some(h) = &m.handled {
        annotations.insert(ROTATE_HANDLED_ANNOTATION.to_owned(), h.clone());
    }
    if let Some(p) = &m.previous {
        annotations.insert(PREVIOUS_HASH_ANNOTATION.to_owned(), p.sha256.clone());
        if let Some(t) = p.not_after {
            annotations.insert(PREVIOUS_NOT_AFTER_ANNOTATION.to_owned(), t.to_string());
        }
    }
    let labels = realm_labels(realm, "oauth-client");
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(&client.name)),
            namespace: Some(client.namespace.clone()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: client.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            (
                CLIENT_ID_KEY.to_owned(),
                ByteString(client.entry.client_id.clone().into_bytes()),
            ),
            (
                CLIENT_SECRET_KEY.to_owned(),
                ByteString(m.secret.clone().into_bytes()),
            ),
        ])),
        ..Secret::default()
    }
}

/// The registry file of `entries`, sorted by client id and checked with
/// the parser MA uses.
///
/// # Errors
/// A rule of the registry broken (validated clients never do).
pub fn registry(mut entries: Vec<ClientEntry>) -> Result<ClientRegistryFile, ClientRegistryError> {
    entries.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    let file = ClientRegistryFile {
        version: FORMAT_VERSION,
        clients: entries,
    };
    file.validate()?;
    Ok(file)
}

/// The realm's registry Secret `<realm>-oauth-clients`, owned by the realm.
///
/// # Errors
/// Serialisation of the file (does not happen for these types).
pub fn registry_secret(
    realm: &ValidRealm,
    file: &ClientRegistryFile,
) -> Result<Secret, ClientRegistryError> {
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(Names::new(&realm.name).clients()),
            namespace: Some(realm.namespace.clone()),
            labels: Some(realm_labels(realm, "auth-service")),
            owner_references: realm.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            FILE_NAME.to_owned(),
            ByteString(file.to_json()?),
        )])),
        ..Secret::default()
    })
}

/// What became of one client in this reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// In the registry.
    Registered {
        /// The client's Secret (confidential clients).
        secret_name: Option<String>,
        /// Until when the previous secret works, after a rotation.
        previous_until: Option<i64>,
    },
    /// Left out, and why.
    Refused(Refused),
}

/// The client's status: `Ready`, its id, the realm's issuer and endpoints.
/// `issuer` is `None` when the realm itself is invalid.
#[must_use]
pub fn status(
    client: &AuthClient,
    verdict: &Verdict,
    issuer: Option<&str>,
    now: i64,
) -> AuthClientStatus {
    let generation = client.metadata.generation;
    let (ok, reason, message) = match verdict {
        Verdict::Registered { .. } => (
            "True",
            "Registered",
            "the client is in its realm's registry".to_owned(),
        ),
        Verdict::Refused(r) => ("False", r.reason, r.message.clone()),
    };
    let old = client
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY));
    let last_transition_time = match old {
        Some(o) if o.status == ok => o.last_transition_time.clone(),
        _ => rfc3339(now),
    };
    let (secret_name, previous_until) = match verdict {
        Verdict::Registered {
            secret_name,
            previous_until,
        } => (secret_name.clone(), previous_until.map(rfc3339)),
        Verdict::Refused(_) => (None, None),
    };
    let ns = client.metadata.namespace.clone().unwrap_or_default();
    let name = client.metadata.name.clone().unwrap_or_default();
    let base = issuer.map(|i| i.trim_end_matches('/').to_owned());
    AuthClientStatus {
        observed_generation: generation,
        conditions: vec![Condition {
            type_: READY.to_owned(),
            status: ok.to_owned(),
            reason: reason.to_owned(),
            message,
            last_transition_time,
            observed_generation: generation,
        }],
        client_id: Some(super::client_id(&ns, &name)),
        issuer: issuer.map(str::to_owned),
        token_endpoint: base.as_ref().map(|b| format!("{b}{TOKEN_PATH}")),
        discovery_url: base.map(|b| format!("{b}/.well-known/openid-configuration")),
        secret_name,
        previous_secret_valid_until: previous_until,
    }
}
