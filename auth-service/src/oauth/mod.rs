//! OAuth 2.0 and OpenID Connect on MA's side, independent of HTTP: client
//! authentication ([`client_auth`]), form bodies ([`form`]), authorization
//! requests and codes for OP ([`authorize`]), the token endpoint's grants
//! ([`token`]), and the rules they share here: what a client may be
//! granted, and its token lifetimes and audience within the realm's.

pub mod authorize;
pub mod client_auth;
pub mod form;
pub mod token;

use authrealm_tokens::clients::ClientEntry;
use authrealm_tokens::oauth::{ErrorCode, parse_scope};

use crate::error::{Error, Result};
use crate::service::Settings;

/// The scopes `requested` (a `scope` parameter; absent: none) if each is
/// allowed for `client`.
///
/// # Errors
/// `invalid_scope` naming the first scope that is malformed or not allowed.
pub fn granted_scopes(client: &ClientEntry, requested: Option<&str>) -> Result<Vec<String>> {
    let scopes = parse_scope(requested.unwrap_or("")).ok_or_else(|| {
        Error::oauth(
            ErrorCode::InvalidScope,
            "`scope` must be scope tokens separated by single spaces",
        )
    })?;
    if let Some(s) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return Err(Error::oauth(
            ErrorCode::InvalidScope,
            format!(
                "scope `{s}` is not allowed for client `{}`",
                client.client_id
            ),
        ));
    }
    Ok(scopes)
}

/// The lifetimes and audience of a client's tokens: its own within the
/// realm's bounds (`AUTHREALM_ACCESS_TTL`, `AUTHREALM_REFRESH_TTL`).
#[derive(Debug, Clone)]
pub struct ClientTokens {
    /// Access (and ID) token life, seconds.
    pub access_ttl: i64,
    /// Refresh token life, seconds.
    pub refresh_ttl: i64,
    /// `aud` of its access tokens: its first audience, else the realm's.
    pub audience: String,
}

impl ClientTokens {
    /// What `client` gets under `settings`.
    #[must_use]
    pub fn of(client: &ClientEntry, settings: &Settings) -> Self {
        let bound = |own: Option<u64>, realm: i64| {
            own.and_then(|t| i64::try_from(t).ok())
                .map_or(realm, |t| t.clamp(1, realm))
        };
        Self {
            access_ttl: bound(client.access_token_ttl_secs, settings.access_ttl),
            refresh_ttl: bound(client.refresh_token_ttl_secs, settings.refresh_ttl),
            audience: client
                .audiences
                .first()
                .cloned()
                .unwrap_or_else(|| settings.audience.clone()),
        }
    }
}

/// Joins scopes for a `scope` claim or parameter; `None` when empty.
#[must_use]
pub fn scope_string(scopes: &[String]) -> Option<String> {
    (!scopes.is_empty()).then(|| scopes.join(" "))
}
