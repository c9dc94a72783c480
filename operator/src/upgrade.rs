//! How an operator upgrade reaches the cluster. Helm installs the files in a
//! chart's `crds/` once and never upgrades them, so the operator applies its
//! own CRD at start ([`apply_crd`], server-side apply with the operator's
//! field manager): a `helm upgrade` that brings a new operator brings its CRD.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, CustomResourceExt, ResourceExt};

use crate::apply::FIELD_MANAGER;
use crate::crd::AuthRealm;

/// Applies the `AuthRealm` CRD this operator was built with.
///
/// # Errors
/// The API call failing (for example without `patch` on
/// `customresourcedefinitions`; the chart grants it on this one CRD).
pub async fn apply_crd(client: Client) -> Result<CustomResourceDefinition, kube::Error> {
    let crd = AuthRealm::crd();
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
