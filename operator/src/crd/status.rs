//! The `AuthRealm` status: what the operator observed and did, as `kubectl`
//! and app teams read it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the operator observed and did; written only by the operator.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuthRealmStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `KeysReady`, `RedisReady`, `AuthServiceReady`, `MainProjectReady`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Key id (`kid`) of the key that signs new tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_key_id: Option<String>,
    /// Every published key with its state and times.
    #[serde(default)]
    pub keys: Vec<KeyStatus>,
    /// When the current `next` key becomes active (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_time: Option<String>,
    /// In-cluster URL of the auth service (JWKS, discovery, internal API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_service_url: Option<String>,
    /// In-cluster URL of the main project's API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_project_url: Option<String>,
    /// The `iss` claim of every token the realm issues: what verifiers require.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The `aud` claim of every token the realm issues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// In-cluster URL of the JWKS (the public keys that verify the tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// OpenID discovery document: the issuer plus `/.well-known/openid-configuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    /// In-cluster URL of the forward-auth endpoint of the main project: point the external authorization of a gateway at it (ingress-nginx `auth-url`, Traefik `forwardAuth`, Envoy or Istio `ext_authz`) so that logouts are enforced at once. 200 with `X-Auth-*` identity headers, else 401 or 403.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_auth_url: Option<String>,
    /// The images the realm's services run, and whether they follow the operator's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImagesStatus>,
}

/// The images a realm runs.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImagesStatus {
    /// The auth-service image its Deployment runs.
    pub auth_service: String,
    /// The main-project image its Deployment runs.
    pub main_project: String,
    /// Neither image is pinned in the spec: an operator upgrade rolls this realm.
    pub follows_operator: bool,
}

/// A condition in the Kubernetes style.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason, e.g. `InvalidSpec`, `SecretNotFound`.
    pub reason: String,
    /// Explanation for people.
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    /// The generation the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One signing key as the status shows it (never the private part).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyStatus {
    /// Key id, the `kid` header of the tokens it signs.
    pub kid: String,
    /// Signature algorithm.
    pub algorithm: String,
    /// `next`, `active` or `retiring`.
    pub state: String,
    /// When it was generated and first published (RFC 3339).
    pub created_at: String,
    /// When it became, or is planned to become, the signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<String>,
    /// When it stopped signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
    /// When it will be removed from the JWKS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_after: Option<String>,
    /// How many ready auth-service replicas list it in their JWKS, e.g. `2/2`
    /// (checked at every reconcile; a `next` key signs only at `n/n`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_by: Option<String>,
    /// `next` key: since when every replica has served it (RFC 3339); it
    /// activates no sooner than `jwksMaxAge` after this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_everywhere_since: Option<String>,
}
