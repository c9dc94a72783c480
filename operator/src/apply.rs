//! The apply step: server-side apply of every child with one field manager,
//! deletion of the optional children the spec no longer wants, and the
//! status patch.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::children::monitoring::PodMonitor;
use crate::children::{Built, Child, Kind};
use crate::context::Context;
use crate::crd::{AuthRealm, AuthRealmStatus};
use crate::error::Error;

/// The one field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "authrealm-operator";

/// Applies every child in order and deletes the unwanted ones; returns the
/// Deployments as the API server answered (their status feeds the conditions).
///
/// # Errors
/// The first failing API call.
pub async fn children(
    ctx: &Context,
    ns: &str,
    built: &Built,
) -> Result<BTreeMap<String, Deployment>, Error> {
    let mut deployments = BTreeMap::new();
    for child in &built.children {
        let c = ctx.client.clone();
        match child {
            Child::ServiceAccount(o) => drop(apply(c, ns, o).await?),
            Child::ConfigMap(o) => drop(apply(c, ns, o).await?),
            Child::Secret(o) => drop(apply(c, ns, o).await?),
            Child::Service(o) => drop(apply(c, ns, o).await?),
            Child::Deployment(o) => {
                let d = apply(c, ns, o).await?;
                deployments.insert(d.name_any(), d);
            }
            Child::PodDisruptionBudget(o) => drop(apply(c, ns, o).await?),
            Child::NetworkPolicy(o) => drop(apply(c, ns, o).await?),
            Child::PersistentVolumeClaim(o) => drop(apply(c, ns, o).await?),
            Child::PodMonitor(o) => drop(apply(c, ns, o).await?),
            Child::Ingress(o) => drop(apply(c, ns, o).await?),
        }
    }
    for (kind, name) in &built.absent {
        prune(ctx.client.clone(), ns, *kind, name).await?;
    }
    Ok(deployments)
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
        Kind::PersistentVolumeClaim => delete::<PersistentVolumeClaim>(client, ns, name).await,
        Kind::PodMonitor => delete::<PodMonitor>(client, ns, name).await,
        Kind::Ingress => delete::<Ingress>(client, ns, name).await,
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

/// Writes the realm's status (server-side apply on the status subresource).
///
/// # Errors
/// The API call failing, or a realm without a namespace.
pub async fn status(
    ctx: &Context,
    realm: &AuthRealm,
    status: &AuthRealmStatus,
) -> Result<(), Error> {
    let ns = realm.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<AuthRealm> = Api::namespaced(ctx.client.clone(), &ns);
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
