//! A client whose realm is not there: no realm's clients step ever sees it,
//! so without this its owner would wait on an empty status. A controller of
//! `AuthClient`s looks the realm up and, while it is missing (or not
//! readable by this operator), says so in the client's `Ready` condition.
//! Once the realm exists its clients step writes the status instead; when a
//! realm goes away, its clients are looked at again.

use std::sync::Arc;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;

use super::build::{self, Verdict};
use super::realm_of;
use super::reconcile::{MAX_REQUEUE, write_status};
use super::validate::Refused;
use crate::context::Context;
use crate::crd::{AuthClient, AuthRealm};
use crate::error::Error;

/// Why a client has no realm, or `None` when the realm exists.
#[must_use]
pub fn missing_realm(ns: &str, name: &str, found: Result<bool, u16>) -> Option<Refused> {
    match found {
        Ok(true) => None,
        Ok(false) => Some(Refused {
            reason: "RealmNotFound",
            message: format!(
                "realm {ns}/{name} does not exist; the client is registered once it does"
            ),
        }),
        Err(code) => Some(Refused {
            reason: "RealmNotFound",
            message: format!(
                "realm {ns}/{name} cannot be read by the operator (HTTP {code}): is its namespace watched?"
            ),
        }),
    }
}

/// Checks that the realm a client names exists; reports it when not.
///
/// # Errors
/// API failures other than "not found" / "forbidden" on the realm, and a
/// failed status write.
pub async fn reconcile(client: Arc<AuthClient>, ctx: Arc<Context>) -> Result<Action, Error> {
    if client.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let (ns, name) = realm_of(&client);
    let realms: Api<AuthRealm> = Api::namespaced(ctx.client.clone(), &ns);
    let found = match realms.get_opt(&name).await {
        Ok(r) => Ok(r.is_some()),
        Err(kube::Error::Api(e)) if e.code == 403 => Err(e.code),
        Err(e) => return Err(e.into()),
    };
    match missing_realm(&ns, &name, found) {
        // The realm's clients step writes this client's status.
        None => Ok(Action::requeue(MAX_REQUEUE)),
        Some(refused) => {
            let status = build::status(&client, &Verdict::Refused(refused), None, ctx.now());
            write_status(&ctx, &client, &status).await?;
            tracing::info!(client = %format!("{}/{}", client.namespace().unwrap_or_default(), client.name_any()), realm = %format!("{ns}/{name}"), "client names a realm that is not there");
            Ok(Action::requeue(MAX_REQUEUE))
        }
    }
}

/// Requeues a client whose check failed, with the realm reconciler's backoff.
pub fn error_policy(client: Arc<AuthClient>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!(
        "client:{}/{}",
        client.namespace().unwrap_or_default(),
        client.name_any()
    );
    let delay = ctx.failed(&key);
    tracing::warn!(client = %key, error = %error, retry_in = ?delay, "client check failed");
    Action::requeue(delay)
}
