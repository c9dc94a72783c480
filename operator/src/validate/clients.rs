//! `spec.clients`: which namespaces' `AuthClient`s may join the realm, and
//! OP's public URL (where the code flow's browser goes).

use super::{InvalidSpec, invalid};
use crate::children::{Component, service_url};
use crate::crd::{ClientsSpec, IngressSpec};

/// The realm's client policy, checked and with its defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientsPolicy {
    /// Other namespaces whose clients may join (`*`: all).
    pub allowed_namespaces: Vec<String>,
    /// OP's public base URL (`AUTHREALM_OP_PUBLIC_URL` of MA), no trailing `/`.
    pub public_url: String,
}

impl ClientsPolicy {
    /// Whether a client in `namespace` may join a realm in `realm_namespace`.
    #[must_use]
    pub fn admits(&self, realm_namespace: &str, namespace: &str) -> bool {
        namespace == realm_namespace
            || self
                .allowed_namespaces
                .iter()
                .any(|n| n == "*" || n == namespace)
    }
}

/// A namespace name as Kubernetes accepts it (an RFC 1123 label).
#[must_use]
pub fn is_namespace_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub use authrealm_runtime::options::is_base_url;

/// Checks `spec.clients` of the realm `name` in `namespace`; without a
/// `publicUrl`, OP's public URL is `public_origin` (the Ingress's) or else
/// OP's in-cluster URL.
///
/// # Errors
/// The first problem, naming its field.
pub fn policy(
    name: &str,
    namespace: &str,
    spec: &ClientsSpec,
    public_origin: Option<&str>,
) -> Result<ClientsPolicy, InvalidSpec> {
    for (i, ns) in spec.allowed_namespaces.iter().enumerate() {
        if ns != "*" && !is_namespace_name(ns) {
            return Err(invalid(
                &format!("spec.clients.allowedNamespaces[{i}]"),
                format!(
                    "{ns:?} is not a namespace name (lowercase letters, digits and '-') or \"*\""
                ),
            ));
        }
    }
    let public_url = match &spec.public_url {
        Some(u) if !is_base_url(u) => {
            return Err(invalid(
                "spec.clients.publicUrl",
                format!(
                    "{u:?} must be an http:// or https:// URL with a host and no query, fragment or user info"
                ),
            ));
        }
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => public_origin.map_or_else(
            || service_url(name, namespace, Component::MainProject),
            str::to_owned,
        ),
    };
    Ok(ClientsPolicy {
        allowed_namespaces: spec.allowed_namespaces.clone(),
        public_url,
    })
}

/// The realm's Ingress, checked, with the origin it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidIngress {
    /// `spec.ingress` as written (every field checked).
    pub spec: IngressSpec,
    /// `https://<host>` with a TLS Secret, else `http://<host>`.
    pub origin: String,
}

/// A DNS subdomain as Kubernetes accepts it for object and host names:
/// dot-separated RFC 1123 labels, at most 253 characters.
#[must_use]
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_namespace_name)
}

/// Checks `spec.ingress`.
///
/// # Errors
/// The first problem, naming its field.
pub fn ingress(spec: Option<&IngressSpec>) -> Result<Option<ValidIngress>, InvalidSpec> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    if !is_dns_subdomain(&spec.host) {
        return Err(invalid(
            "spec.ingress.host",
            format!(
                "{:?} is not a host name such as login.example.com (lowercase letters, digits, '-' and '.'; no scheme, port, path or wildcard)",
                spec.host
            ),
        ));
    }
    for (field, value) in [
        ("spec.ingress.className", &spec.class_name),
        ("spec.ingress.tlsSecretName", &spec.tls_secret_name),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !is_dns_subdomain(v)) {
            return Err(invalid(
                field,
                format!("{v:?} is not an object name (lowercase letters, digits, '-' and '.')"),
            ));
        }
    }
    for key in spec.annotations.keys() {
        if key.is_empty() || key.len() > 317 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "spec.ingress.annotations",
                format!("{key:?} is not an annotation key"),
            ));
        }
    }
    let scheme = if spec.tls_secret_name.is_some() {
        "https"
    } else {
        "http"
    };
    Ok(Some(ValidIngress {
        origin: format!("{scheme}://{}", spec.host),
        spec: spec.clone(),
    }))
}
