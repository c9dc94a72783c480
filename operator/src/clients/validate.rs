//! An `AuthClient` checked against its realm: everything the registry entry
//! needs, or why the client is left out (a reason and a message that starts
//! with the field).

use authrealm_tokens::clients::{
    ClientEntry, ClientRegistryFile, FORMAT_VERSION, SecretHash, is_scope_token,
    is_valid_redirect_uri,
};
use authrealm_tokens::duration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};

use super::client_id;
use crate::crd::{AuthClient, ClientGrant, ClientKind};
use crate::validate::ValidRealm;

/// Longest `AuthClient` name (its Secret's name appends 13 characters).
pub const MAX_CLIENT_NAME_LEN: usize = 50;
/// Longest rotation overlap.
pub const MAX_OVERLAP_SECS: u64 = 90 * 86_400;

/// Why a client is left out of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// CamelCase reason of its `Ready=False` condition.
    pub reason: &'static str,
    /// For people; starts with the field when one is at fault.
    pub message: String,
}

impl Refused {
    fn spec(field: &str, message: impl std::fmt::Display) -> Self {
        Self {
            reason: "InvalidSpec",
            message: format!("{field}: {message}"),
        }
    }
}

/// A client that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidClient {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Confidential or public.
    pub kind: ClientKind,
    /// Its registry entry without secret hashes.
    pub entry: ClientEntry,
    /// How long the old secret works after a rotation (seconds).
    pub overlap_secs: i64,
    /// The `authrealm.io/rotate-secret` value, if set.
    pub rotate_request: Option<String>,
    /// The owner reference of its Secret.
    pub owner: Option<OwnerReference>,
}

fn ttl(
    field: &str,
    value: Option<&str>,
    bound: std::time::Duration,
    bound_field: &str,
) -> Result<Option<u64>, Refused> {
    let Some(v) = value else { return Ok(None) };
    let d = duration::parse(v).map_err(|e| Refused::spec(field, e))?;
    if d.as_secs() == 0 {
        return Err(Refused::spec(
            field,
            format!("{v:?} is too short: at least 1s"),
        ));
    }
    if d > bound {
        return Err(Refused::spec(
            field,
            format!(
                "{v:?} is longer than the realm's {bound_field} ({}): use at most that",
                duration::format(bound)
            ),
        ));
    }
    Ok(Some(d.as_secs()))
}

/// Checks `client` against `realm`.
///
/// # Errors
/// The first problem found.
pub fn validate_client(client: &AuthClient, realm: &ValidRealm) -> Result<ValidClient, Refused> {
    let spec = &client.spec;
    let namespace = client.namespace().unwrap_or_default();
    let name = client.name_any();
    if name.len() > MAX_CLIENT_NAME_LEN {
        return Err(Refused::spec(
            "metadata.name",
            format!(
                "must be at most {MAX_CLIENT_NAME_LEN} characters (its Secret's name is derived from it)"
            ),
        ));
    }
    if !realm.clients.admits(&realm.namespace, &namespace) {
        return Err(Refused {
            reason: "NamespaceNotAllowed",
            message: format!(
                "spec.realmRef: realm {}/{} does not admit clients from namespace {namespace:?}: add it to the realm's spec.clients.allowedNamespaces",
                realm.namespace, realm.name
            ),
        });
    }
    if spec.grant_types.is_empty() {
        return Err(Refused::spec(
            "spec.grantTypes",
            "needs at least one grant type",
        ));
    }
    let public = spec.type_ == ClientKind::Public;
    if public && spec.grant_types.contains(&ClientGrant::ClientCredentials) {
        return Err(Refused::spec(
            "spec.grantTypes",
            "a public client cannot use client_credentials (it has no secret): make it confidential",
        ));
    }
    if public && spec.introspection {
        return Err(Refused::spec(
            "spec.introspection",
            "a public client cannot introspect tokens (it has no secret)",
        ));
    }
    if spec.grant_types.contains(&ClientGrant::AuthorizationCode) && spec.redirect_uris.is_empty() {
        return Err(Refused::spec(
            "spec.redirectUris",
            "the authorization_code grant needs at least one redirect URI",
        ));
    }
    for (field, uris) in [
        ("spec.redirectUris", &spec.redirect_uris),
        (
            "spec.postLogoutRedirectUris",
            &spec.post_logout_redirect_uris,
        ),
    ] {
        if let Some((i, uri)) = uris
            .iter()
            .enumerate()
            .find(|(_, u)| !is_valid_redirect_uri(u))
        {
            return Err(Refused::spec(
                &format!("{field}[{i}]"),
                format!(
                    "{uri:?} must be an absolute https:// URI, http:// to a loopback host (127.0.0.1, [::1], localhost) or a native app's private-use scheme (com.example.app:/cb), without a fragment"
                ),
            ));
        }
    }
    if let Some((i, s)) = spec
        .scopes
        .iter()
        .enumerate()
        .find(|(_, s)| !is_scope_token(s))
    {
        return Err(Refused::spec(
            &format!("spec.scopes[{i}]"),
            format!(
                "{s:?} is not a scope token (printable ASCII without spaces, quotes or backslashes)"
            ),
        ));
    }
    if let Some((i, a)) =
        spec.audiences.iter().enumerate().find(|(_, a)| {
            a.is_empty() || a.len() > 256 || !a.bytes().all(|b| b.is_ascii_graphic())
        })
    {
        return Err(Refused::spec(
            &format!("spec.audiences[{i}]"),
            format!("{a:?} must be 1 to 256 printable ASCII characters without spaces"),
        ));
    }
    let c = &realm.config;
    let access = ttl(
        "spec.accessTokenTtl",
        spec.access_token_ttl.as_deref(),
        c.access_token_ttl,
        "tokens.accessTokenTtl",
    )?;
    let refresh = ttl(
        "spec.refreshTokenTtl",
        spec.refresh_token_ttl.as_deref(),
        c.refresh_token_ttl,
        "tokens.refreshTokenTtl",
    )?;
    let effective_access = access.unwrap_or(c.access_token_ttl.as_secs());
    let effective_refresh = refresh.unwrap_or(c.refresh_token_ttl.as_secs());
    if effective_refresh < effective_access {
        return Err(Refused::spec(
            "spec.refreshTokenTtl",
            format!(
                "{} is shorter than the access-token lifetime {}: a refresh token must outlive the access token it renews",
                duration::format(std::time::Duration::from_secs(effective_refresh)),
                duration::format(std::time::Duration::from_secs(effective_access)),
            ),
        ));
    }
    let overlap = duration::parse(&spec.secret_rotation_overlap)
        .map_err(|e| Refused::spec("spec.secretRotationOverlap", e))?;
    if overlap.as_secs() > MAX_OVERLAP_SECS {
        return Err(Refused::spec(
            "spec.secretRotationOverlap",
            format!(
                "{:?} is too long: use at most 90d",
                spec.secret_rotation_overlap
            ),
        ));
    }
    if spec
        .display_name
        .as_deref()
        .is_some_and(|d| d.trim().is_empty() || d.chars().any(char::is_control))
    {
        return Err(Refused::spec(
            "spec.displayName",
            "must not be blank or hold control characters",
        ));
    }
    let entry = ClientEntry {
        client_id: client_id(&namespace, &name),
        client_type: spec.type_.into(),
        secret_hashes: Vec::new(),
        grant_types: spec.grant_types.iter().map(|g| (*g).into()).collect(),
        redirect_uris: spec.redirect_uris.clone(),
        post_logout_redirect_uris: spec.post_logout_redirect_uris.clone(),
        scopes: spec.scopes.clone(),
        audiences: spec.audiences.clone(),
        access_token_ttl_secs: access,
        refresh_token_ttl_secs: refresh,
        introspection: spec.introspection,
        display_name: spec.display_name.clone(),
    };
    // The registry's own rules (the parser MA uses) as the last word, with a
    // stand-in hash for a confidential client's secret.
    let mut probe = entry.clone();
    if !public {
        probe.secret_hashes = vec![SecretHash {
            sha256: "0".repeat(64),
            not_after: None,
        }];
    }
    ClientRegistryFile {
        version: FORMAT_VERSION,
        clients: vec![probe],
    }
    .validate()
    .map_err(|e| Refused::spec("spec", e))?;
    Ok(ValidClient {
        namespace,
        name,
        kind: spec.type_,
        entry,
        overlap_secs: i64::try_from(overlap.as_secs()).unwrap_or(i64::MAX),
        rotate_request: client
            .annotations()
            .get(crate::crd::ROTATE_SECRET_ANNOTATION)
            .cloned(),
        owner: client.controller_owner_ref(&()),
    })
}
