//! The `AuthClient` custom resource (`authrealm.io/v1alpha1`): one OAuth 2.0
//! / OpenID Connect client of a realm, and the realm's `spec.clients` policy.
//! Doc comments here become what `kubectl explain authclient.spec...` prints.

use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// Annotation on an `AuthClient`: setting it to a new value generates a new
/// client secret; the old one keeps working for `secretRotationOverlap`.
pub const ROTATE_SECRET_ANNOTATION: &str = "authrealm.io/rotate-secret";

/// One OAuth 2.0 / OpenID Connect client of a realm. The operator generates
/// its secret (confidential clients) into the Secret `<name>-oauth-client`
/// next to it, and hands the realm's auth service its hash.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "authrealm.io",
    version = "v1alpha1",
    kind = "AuthClient",
    namespaced,
    shortname = "oauthclient",
    status = "AuthClientStatus",
    derive = "PartialEq",
    doc = "An OAuth 2.0 / OpenID Connect client of an AuthRealm: its grants, redirect URIs, scopes, audiences and token lifetimes; the operator generates its secret.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the client is valid and registered with its realm"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = "1"
    ),
    printcolumn(
        name = "Realm",
        type_ = "string",
        json_path = ".spec.realmRef.name",
        description = "The AuthRealm the client belongs to"
    ),
    printcolumn(
        name = "Client ID",
        type_ = "string",
        json_path = ".status.clientId",
        description = "The client_id (<namespace>.<name>)"
    ),
    printcolumn(
        name = "Type",
        type_ = "string",
        json_path = ".spec.type",
        priority = "1"
    ),
    printcolumn(
        name = "Secret",
        type_ = "string",
        json_path = ".status.secretName",
        description = "The Secret holding client-id and client-secret",
        priority = "1"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 50").message("metadata.name must be at most 50 characters (the Secret name is derived from it)")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'public' || !('client_credentials' in self.grantTypes)").message("a public client cannot use the client_credentials grant"))]
pub struct AuthClientSpec {
    /// The realm the client belongs to. A realm in another namespace must list
    /// this client's namespace in its `spec.clients.allowedNamespaces`.
    pub realm_ref: RealmRef,
    /// `confidential` (default): a server-side app that keeps a secret, which
    /// the operator generates. `public`: a browser or native app without a
    /// secret; it uses PKCE only and cannot use `client_credentials`.
    #[serde(default, rename = "type")]
    pub type_: ClientKind,
    /// Grants the client may use at the token endpoint: `authorization_code`
    /// (with PKCE S256), `refresh_token`, `client_credentials`.
    #[schemars(length(min = 1, max = 3))]
    pub grant_types: Vec<ClientGrant>,
    /// Exact redirect URIs of the code flow: absolute `https://`, `http://`
    /// to a loopback host, or a native app's private-use scheme
    /// (`com.example.app:/cb`); no fragment. Required with `authorization_code`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub redirect_uris: Vec<String>,
    /// Exact URIs RP-initiated logout may send the browser back to (same rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub post_logout_redirect_uris: Vec<String>,
    /// Scopes the client may be granted, e.g. `openid`, `profile`, `email`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub scopes: Vec<String>,
    /// Audiences (`aud`) its access tokens may carry; the first is the default.
    /// Empty: the realm's audience.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub audiences: Vec<String>,
    /// Access-token lifetime for this client, e.g. `2m`; at most the realm's
    /// `tokens.accessTokenTtl` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub access_token_ttl: Option<String>,
    /// Refresh-token lifetime for this client, e.g. `1d`; at most the realm's
    /// `tokens.refreshTokenTtl` (the default) and at least the access-token lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub refresh_token_ttl: Option<String>,
    /// Whether the client may call the introspection endpoint (RFC 7662).
    /// Confidential clients only.
    #[serde(default)]
    pub introspection: bool,
    /// Name shown on the login page. Default: none (the client id is not shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100))]
    pub display_name: Option<String>,
    /// After a rotation (annotation `authrealm.io/rotate-secret`), how long
    /// the old secret keeps working, e.g. `24h` (default). Units: s, m, h, d.
    #[serde(default = "default_overlap")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub secret_rotation_overlap: String,
}

fn default_overlap() -> String {
    "24h".to_owned()
}

/// Which realm a client belongs to.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RealmRef {
    /// Name of the `AuthRealm`.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Its namespace; default: the client's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// Confidential or public.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// Holds a secret the operator generates.
    #[default]
    Confidential,
    /// No secret (browser and native apps); PKCE only.
    Public,
}

/// An OAuth 2.0 grant type.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ClientGrant {
    /// The code flow with PKCE (RFC 6749 §4.1, RFC 7636).
    AuthorizationCode,
    /// Refresh-token rotation (RFC 6749 §6).
    RefreshToken,
    /// Service-to-service tokens (RFC 6749 §4.4); confidential clients only.
    ClientCredentials,
}

impl From<ClientGrant> for authrealm_tokens::clients::GrantType {
    fn from(g: ClientGrant) -> Self {
        match g {
            ClientGrant::AuthorizationCode => Self::AuthorizationCode,
            ClientGrant::RefreshToken => Self::RefreshToken,
            ClientGrant::ClientCredentials => Self::ClientCredentials,
        }
    }
}

impl From<ClientKind> for authrealm_tokens::clients::ClientType {
    fn from(k: ClientKind) -> Self {
        match k {
            ClientKind::Confidential => Self::Confidential,
            ClientKind::Public => Self::Public,
        }
    }
}

/// What the operator observed and did; written only by the operator.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuthClientStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: the client is valid and in its realm's registry.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The `client_id`: `<namespace>.<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The realm's issuer (what the app configures as its OpenID provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The token endpoint: the issuer plus `/oauth2/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// OpenID discovery document: the issuer plus `/.well-known/openid-configuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    /// The Secret (next to the client) holding `client-id` and
    /// `client-secret`; confidential clients only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// After a rotation: until when the previous secret is still accepted (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_valid_until: Option<String>,
}

/// A realm's policy for its clients (`AuthRealm.spec.clients`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClientsSpec {
    /// Other namespaces whose `AuthClient`s may join this realm; `*` allows
    /// every namespace. Default: none (only clients in the realm's own namespace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub allowed_namespaces: Vec<String>,
    /// The main project's (OP's) public base URL, where browsers reach the
    /// login page, e.g. `https://login.example.com`. The discovery document
    /// publishes the authorization, UserInfo and logout endpoints under it.
    /// Default: the public URL of `spec.ingress` when it is set
    /// (`https://<host>`), else OP's in-cluster URL
    /// (`http://<realm>-main-project.<namespace>.svc:8080`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub public_url: Option<String>,
}

/// The `AuthClient` CRD as YAML, exactly as `crds/authclient.yaml` holds it.
///
/// # Errors
/// Only if YAML serialisation fails.
pub fn client_crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let body = serde_saphyr::to_string(&AuthClient::crd())?;
    Ok(format!(
        "# Generated by `cargo run -p operator --bin crdgen`; do not edit.\n{body}"
    ))
}
