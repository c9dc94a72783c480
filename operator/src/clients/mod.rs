//! The realm's OAuth clients: every `AuthClient` that names a realm is
//! checked against it ([`validate`]), gets its secret generated once into a
//! Secret next to it and rotated on request ([`secret`]), and — when valid —
//! an entry in the realm's registry Secret `<realm>-oauth-clients`
//! (`clients.json`, hashes only), which MA mounts and reloads ([`build`]).
//! [`reconcile`] runs all of it per realm, as a second controller of
//! `AuthRealm`s that watches `AuthClient`s; [`orphans`] reports clients
//! whose realm is not there.

pub mod build;
pub mod orphans;
pub mod reconcile;
pub mod secret;
pub mod validate;

#[cfg(test)]
mod examples;
#[cfg(test)]
mod tests;

use kube::ResourceExt;

use crate::crd::AuthClient;

/// Key of the client Secret holding the `client_id`.
pub const CLIENT_ID_KEY: &str = "client-id";
/// Key of the client Secret holding the client secret.
pub const CLIENT_SECRET_KEY: &str = "client-secret";
/// Shortest client secret the operator accepts in an existing Secret.
pub const MIN_SECRET_LEN: usize = 32;
/// Annotation on the client Secret: the last `authrealm.io/rotate-secret` value served.
pub const ROTATE_HANDLED_ANNOTATION: &str = "authrealm.io/rotate-secret-handled";
/// Annotation on the client Secret: SHA-256 of the previous secret after a rotation.
pub const PREVIOUS_HASH_ANNOTATION: &str = "authrealm.io/previous-secret-sha256";
/// Annotation on the client Secret: Unix seconds until which the previous secret works.
pub const PREVIOUS_NOT_AFTER_ANNOTATION: &str = "authrealm.io/previous-secret-not-after";
/// Label on client and registry Secrets: the realm's name.
pub const REALM_LABEL: &str = "authrealm.io/realm";
/// Label on client and registry Secrets: the realm's namespace.
pub const REALM_NAMESPACE_LABEL: &str = "authrealm.io/realm-namespace";
/// Path of the token endpoint under the issuer.
pub const TOKEN_PATH: &str = "/oauth2/token";

/// The `client_id` of the client `name` in `namespace`.
#[must_use]
pub fn client_id(namespace: &str, name: &str) -> String {
    format!("{namespace}.{name}")
}

/// Name of the Secret holding a confidential client's id and secret.
#[must_use]
pub fn secret_name(client: &str) -> String {
    format!("{client}-oauth-client")
}

/// `(namespace, name)` of the realm a client names.
#[must_use]
pub fn realm_of(client: &AuthClient) -> (String, String) {
    let ns = client
        .spec
        .realm_ref
        .namespace
        .clone()
        .or_else(|| client.namespace())
        .unwrap_or_default();
    (ns, client.spec.realm_ref.name.clone())
}
