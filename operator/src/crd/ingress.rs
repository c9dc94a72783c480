//! `AuthRealm.spec.ingress`: the optional Ingress that exposes the realm's
//! public endpoints (MA's discovery, JWKS and OAuth endpoints, OP's login
//! page, UserInfo, logout and API) under one host.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The realm's Ingress: host, class, TLS and annotations (what it routes is
/// in `children::ingress`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// The public host name, e.g. `login.example.com` (no scheme, port or path).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub host: String,
    /// The IngressClass that serves it; unset = the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,
    /// A `kubernetes.io/tls` Secret (same namespace) with the host's
    /// certificate. When set, the Ingress terminates TLS for the host and the
    /// public URL is `https://<host>`; without it, `http://<host>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub tls_secret_name: Option<String>,
    /// Annotations of the Ingress, e.g. for cert-manager or the ingress controller.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}
