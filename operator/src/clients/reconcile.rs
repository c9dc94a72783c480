//! The clients step of one realm, run by its own controller: list the
//! `AuthClient`s that name the realm, check each, generate or rotate the
//! secrets, write the registry Secret MA mounts, then each client's status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{info, instrument, warn};

use super::build::{self, Verdict};
use super::secret::{self, Stored};
use super::validate::{Refused, validate_client};
use super::{realm_of, secret_name};
use crate::apply::FIELD_MANAGER;
use crate::context::Context;
use crate::crd::{AuthClient, AuthClientStatus, AuthRealm};
use crate::error::Error;
use crate::validate::validate;

/// Longest wait between two runs for a realm (drift repair).
pub const MAX_REQUEUE: Duration = Duration::from_secs(600);

/// The `AuthClient`s that name `realm` (`namespace/name`), sorted.
async fn clients_of(ctx: &Context, ns: &str, name: &str) -> Result<Vec<AuthClient>, Error> {
    let scopes: Vec<Api<AuthClient>> = if ctx.watch_namespaces.is_empty() {
        vec![Api::all(ctx.client.clone())]
    } else {
        ctx.watch_namespaces
            .iter()
            .map(|n| Api::namespaced(ctx.client.clone(), n))
            .collect()
    };
    let mut out = Vec::new();
    for api in scopes {
        for c in api.list(&ListParams::default()).await?.items {
            if c.metadata.deletion_timestamp.is_none()
                && realm_of(&c) == (ns.to_owned(), name.to_owned())
            {
                out.push(c);
            }
        }
    }
    out.sort_by_key(|c| (c.namespace(), c.name_any()));
    Ok(out)
}

/// Registers every valid client of `realm` with its auth service.
///
/// # Errors
/// API failures and a failing random source; an invalid client is reported
/// in its status and left out.
#[instrument(skip_all, fields(realm = %format!("{}/{}", realm.namespace().unwrap_or_default(), realm.name_any())))]
pub async fn reconcile(realm: Arc<AuthRealm>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = realm.namespace().ok_or(Error::NoNamespace)?;
    let now = ctx.now();
    let clients = clients_of(&ctx, &ns, &realm.name_any()).await?;
    let valid_realm = match validate(&realm, &ctx.defaults) {
        Ok(v) => v,
        Err(invalid) => {
            // The registry stays as it was until the realm is fixed.
            let refused = Verdict::Refused(Refused {
                reason: "RealmInvalid",
                message: format!("realm {ns}/{}: {invalid}", realm.name_any()),
            });
            for c in &clients {
                write_status(&ctx, c, &build::status(c, &refused, None, now)).await?;
            }
            return Ok(Action::requeue(MAX_REQUEUE));
        }
    };

    let mut entries = Vec::new();
    let mut verdicts = Vec::new();
    let mut next_change: Option<i64> = None;
    for c in &clients {
        let verdict = match validate_client(c, &valid_realm) {
            Err(refused) => Verdict::Refused(refused),
            Ok(valid) if valid.kind == crate::crd::ClientKind::Public => {
                entries.push(valid.entry.clone());
                Verdict::Registered {
                    secret_name: None,
                    previous_until: None,
                }
            }
            Ok(valid) => {
                let name = secret_name(&valid.name);
                let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &valid.namespace);
                let stored = secrets.get_opt(&name).await?.as_ref().map(Stored::read);
                let planned = secret::plan(
                    &name,
                    stored,
                    valid.rotate_request.as_deref(),
                    valid.overlap_secs,
                    now,
                    || authrealm_tokens::random_token(32).map_err(|_| Error::Random),
                )?;
                match planned {
                    Err(refused) => Verdict::Refused(refused),
                    Ok(material) => {
                        let obj = build::client_secret(&valid_realm, &valid, &material);
                        let params = PatchParams::apply(FIELD_MANAGER).force();
                        secrets
                            .patch(&name, &params, &Patch::Apply(with_kind(&obj)?))
                            .await?;
                        if material.generated {
                            info!(client = %valid.entry.client_id, secret = %name, "client secret generated");
                        }
                        let mut entry = valid.entry.clone();
                        entry.secret_hashes = material.hashes();
                        entries.push(entry);
                        let previous_until = material.previous.as_ref().and_then(|p| p.not_after);
                        if let Some(t) = previous_until {
                            next_change = Some(next_change.map_or(t, |n| n.min(t)));
                        }
                        Verdict::Registered {
                            secret_name: Some(name),
                            previous_until,
                        }
                    }
                }
            }
        };
        verdicts.push(verdict);
    }

    let file = build::registry(entries).map_err(|e| Error::Registry(e.to_string()))?;
    let registry =
        build::registry_secret(&valid_realm, &file).map_err(|e| Error::Registry(e.to_string()))?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    secrets
        .patch(
            &registry.name_any(),
            &params,
            &Patch::Apply(with_kind(&registry)?),
        )
        .await?;

    let issuer = valid_realm.config.issuer.as_str();
    for (c, verdict) in clients.iter().zip(&verdicts) {
        if let Verdict::Refused(r) = verdict {
            warn!(client = %format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any()), reason = r.reason, message = %r.message, "client left out of the registry");
        }
        write_status(&ctx, c, &build::status(c, verdict, Some(issuer), now)).await?;
    }
    // Come back when an old secret's window closes, to drop its hash.
    let wait = next_change
        .map(|t| u64::try_from(t.saturating_sub(now).saturating_add(1)).unwrap_or(1))
        .map_or(MAX_REQUEUE, |s| Duration::from_secs(s).min(MAX_REQUEUE));
    Ok(Action::requeue(wait))
}

fn with_kind(s: &Secret) -> Result<serde_json::Value, Error> {
    let mut body = serde_json::to_value(s).map_err(|source| Error::Serialize {
        kind: "Secret",
        source,
    })?;
    body["apiVersion"] = "v1".into();
    body["kind"] = "Secret".into();
    Ok(body)
}

/// Writes a client's status when it changed.
pub(super) async fn write_status(
    ctx: &Context,
    c: &AuthClient,
    status: &AuthClientStatus,
) -> Result<(), Error> {
    if c.status.as_ref() == Some(status) {
        return Ok(());
    }
    let ns = c.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<AuthClient> = Api::namespaced(ctx.client.clone(), &ns);
    let body = serde_json::json!({
        "apiVersion": AuthClient::api_version(&()),
        "kind": AuthClient::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&c.name_any(), &params, &Patch::Apply(body))
        .await?;
    Ok(())
}

/// Requeues a realm whose clients step failed, with the realm reconciler's backoff.
pub fn error_policy(realm: Arc<AuthRealm>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!(
        "clients:{}/{}",
        realm.namespace().unwrap_or_default(),
        realm.name_any()
    );
    let delay = ctx.failed(&key);
    warn!(realm = %key, error = %error, retry_in = ?delay, "clients step failed");
    Action::requeue(delay)
}
