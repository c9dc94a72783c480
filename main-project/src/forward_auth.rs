//! The forward-auth endpoint: a gateway (nginx `auth_request`, ingress-nginx
//! `auth-url`, Traefik `forwardAuth`, Envoy or Istio HTTP `ext_authz`) asks
//! OP whether a request's bearer token is valid and unrevoked before it lets
//! the request through, so a logout is enforced at the edge at once.
//!
//! `/auth/verify` answers any method; `/auth/verify/{*rest}` is the same
//! handler for Envoy's `path_prefix`, which appends the original path (and
//! query). The check is the protected API's own ([`verify_request`]: the
//! verified-token cache, then the local revocation view; no database, no
//! network call). Then the route's requirements, which the gateway may set
//! per route:
//!
//! - query `?audience=<aud>&scope=<a>+<b>` (on `/auth/verify` only: under
//!   the prefix form the query string is the client's original one);
//! - headers `<prefix>Require-Audience` and `<prefix>Require-Scope`
//!   (space-separated scopes).
//!
//! Every requirement found is applied: a client that adds one only narrows
//! what its own token may do.
//!
//! Answers: 200 with the identity headers (`<prefix>Subject`, `-Session`,
//! `-Scope`, `-Audience`, `-Expires`, `-Email`, `-Client-Id`, each always
//! present and empty when the token has no such claim, so a gateway that
//! copies them overwrites whatever the client sent); 401 with an RFC 6750
//! challenge for a missing or refused token; 403 `insufficient_scope` /
//! `audience_not_accepted` for an unmet requirement; 400 for a malformed
//! requirement or two `Authorization` headers; 503 while the keys or the
//! revocation state are unknown. Never the token itself.

use std::sync::{Arc, RwLock};

use authrealm_tokens::AccessClaims;
use authrealm_tokens::clients::is_scope_token;
use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::verify_request;
use crate::error::Error;
use crate::state::AppState;

/// The endpoint's path (the prefix form adds `/{*rest}`).
pub const PATH: &str = "/auth/verify";

/// The default prefix of the identity and requirement headers.
pub const DEFAULT_HEADER_PREFIX: &str = "X-Auth-";

/// The header names under [`DEFAULT_HEADER_PREFIX`], lowercase.
const DEFAULT_NAMES: [&str; 9] = [
    "x-auth-subject",
    "x-auth-session",
    "x-auth-scope",
    "x-auth-audience",
    "x-auth-expires",
    "x-auth-email",
    "x-auth-client-id",
    "x-auth-require-scope",
    "x-auth-require-audience",
];

/// Most scopes one request may require.
const MAX_REQUIRED_SCOPES: usize = 32;

/// Longest audience a requirement may name, in bytes.
const MAX_AUDIENCE_BYTES: usize = 512;

/// Whether `prefix` can start a header name: 1 to 64 ASCII letters, digits
/// or `-`.
#[must_use]
pub fn is_header_prefix(prefix: &str) -> bool {
    (1..=64).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The header names of the endpoint, built once from the configured prefix.
#[derive(Debug, Clone)]
pub struct ForwardAuthHeaders {
    /// `sub`: the user id.
    pub subject: HeaderName,
    /// `sid`: the login session.
    pub session: HeaderName,
    /// `scope`: space-separated scopes (empty for OP's own logins).
    pub scope: HeaderName,
    /// `aud`.
    pub audience: HeaderName,
    /// `exp`, in Unix seconds.
    pub expires: HeaderName,
    /// The `email` claim.
    pub email: HeaderName,
    /// The `client_id` claim (OAuth clients' tokens).
    pub client_id: HeaderName,
    /// Scopes the route requires (read).
    pub require_scope: HeaderName,
    /// Audience the route requires (read).
    pub require_audience: HeaderName,
}

impl ForwardAuthHeaders {
    /// The names under `prefix`.
    ///
    /// # Errors
    /// [`Error::Config`] when the prefix cannot start a header name.
    pub fn new(prefix: &str) -> Result<Self, Error> {
        if !is_header_prefix(prefix) {
            return Err(Error::Config(
                "AUTHREALM_FORWARD_AUTH_HEADER_PREFIX must be 1 to 64 letters, digits or `-`"
                    .into(),
            ));
        }
        let name = |suffix: &str| {
            let text = format!("{prefix}{suffix}").to_ascii_lowercase();
            // The default prefix's names are static: a response clones them
            // without touching a shared reference count.
            if let Some(known) = DEFAULT_NAMES.iter().find(|n| **n == text) {
                return Ok(HeaderName::from_static(known));
            }
            HeaderName::try_from(text).map_err(|_| {
                Error::Config("AUTHREALM_FORWARD_AUTH_HEADER_PREFIX gives no valid header".into())
            })
        };
        Ok(Self {
            subject: name("Subject")?,
            session: name("Session")?,
            scope: name("Scope")?,
            audience: name("Audience")?,
            expires: name("Expires")?,
            email: name("Email")?,
            client_id: name("Client-Id")?,
            require_scope: name("Require-Scope")?,
            require_audience: name("Require-Audience")?,
        })
    }

    /// The identity headers a 200 carries, in a fixed order.
    #[must_use]
    pub fn identity(&self) -> [&HeaderName; 7] {
        [
            &self.subject,
            &self.session,
            &self.scope,
            &self.audience,
            &self.expires,
            &self.email,
            &self.client_id,
        ]
    }
}

/// Most verified tokens whose identity headers [`IdentityCache`] keeps.
const IDENTITY_CACHE_ENTRIES: usize = 4096;

/// The identity headers (and `Cache-Control: no-store`) of a 200, built once
/// for the claims the verified-token cache holds, by the claims' address: a
/// token presented again gets a copy of its map of shared values rather than
/// seven new values (a check, a copy and an allocation each) inserted one by
/// one.
///
/// An entry holds its claims, so no other claims can have its address while
/// it exists; its headers are the ones [`identity`] sets from those claims.
/// Claims only the request holds (a token verified without the
/// verified-token cache keeping it) are not kept. At the cap, entries whose
/// claims nothing else holds any more are dropped, then everything if it is
/// still full.
#[derive(Default)]
pub struct IdentityCache {
    entries: RwLock<hashbrown::HashMap<usize, (Arc<AccessClaims>, HeaderMap)>>,
}

impl std::fmt::Debug for IdentityCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.entries.read().map_or(0, |e| e.len());
        f.debug_struct("IdentityCache")
            .field("entries", &len)
            .finish()
    }
}

impl IdentityCache {
    /// The headers of a 200 for `claims`, under `names`.
    fn headers(&self, names: &ForwardAuthHeaders, claims: &Arc<AccessClaims>) -> HeaderMap {
        let key = Arc::as_ptr(claims).addr();
        if let Ok(entries) = self.entries.read()
            && let Some((_, headers)) = entries.get(&key)
        {
            return headers.clone();
        }
        let mut headers = HeaderMap::new();
        identity(&mut headers, names, claims);
        no_store(&mut headers);
        // Held elsewhere too: by the verified-token cache, so likely seen again.
        if Arc::strong_count(claims) > 1
            && let Ok(mut entries) = self.entries.write()
        {
            if entries.len() >= IDENTITY_CACHE_ENTRIES {
                entries.retain(|_, (c, _)| Arc::strong_count(c) > 1);
                if entries.len() >= IDENTITY_CACHE_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(key, (claims.clone(), headers.clone()));
        }
        headers
    }

    /// Claims kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.read().map_or(0, |e| e.len())
    }
}

/// What a route requires beyond a valid token.
#[derive(Debug, Default, PartialEq, Eq)]
struct Requirements {
    scopes: Vec<String>,
    audiences: Vec<String>,
}

impl Requirements {
    fn add_scopes(&mut self, value: &str) -> Result<(), Error> {
        for s in value.split(' ').filter(|s| !s.is_empty()) {
            if !is_scope_token(s) {
                return Err(Error::BadRequest(
                    "a required scope is not a scope token (RFC 6749 §3.3)".into(),
                ));
            }
            if !self.scopes.iter().any(|t| t == s) {
                if self.scopes.len() == MAX_REQUIRED_SCOPES {
                    return Err(Error::BadRequest("too many required scopes".into()));
                }
                self.scopes.push(s.to_owned());
            }
        }
        Ok(())
    }

    fn add_audience(&mut self, value: &str) -> Result<(), Error> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(());
        }
        if value.len() > MAX_AUDIENCE_BYTES || value.chars().any(char::is_control) {
            return Err(Error::BadRequest(
                "the required audience is too long or has control characters".into(),
            ));
        }
        if !self.audiences.iter().any(|a| a == value) {
            self.audiences.push(value.to_owned());
        }
        Ok(())
    }

    /// The requirements in the request: its headers always, its query on
    /// the exact path only.
    fn of(parts: &Parts, names: &ForwardAuthHeaders) -> Result<Self, Error> {
        let mut req = Self::default();
        if parts.uri.path() == PATH && parts.uri.query().is_some() {
            let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
                .map_err(|_| Error::BadRequest("the query string cannot be read".into()))?;
            for (k, v) in &pairs {
                match k.as_str() {
                    "scope" => req.add_scopes(v)?,
                    "audience" => req.add_audience(v)?,
                    _ => {}
                }
            }
        }
        for v in parts.headers.get_all(&names.require_scope) {
            req.add_scopes(header_text(v)?)?;
        }
        for v in parts.headers.get_all(&names.require_audience) {
            req.add_audience(header_text(v)?)?;
        }
        Ok(req)
    }

    /// Whether the verified `claims` meet every requirement.
    fn check(&self, claims: &AccessClaims) -> Result<(), Error> {
        if self.audiences.iter().any(|a| *a != claims.aud) {
            return Err(Error::AudienceNotAccepted);
        }
        if self.scopes.is_empty() {
            return Ok(());
        }
        let granted = claim_str(claims, "scope");
        if self
            .scopes
            .iter()
            .all(|s| granted.split(' ').any(|g| g == s))
        {
            Ok(())
        } else {
            Err(Error::InsufficientScope {
                required: self.scopes.join(" "),
            })
        }
    }
}

fn header_text(v: &HeaderValue) -> Result<&str, Error> {
    v.to_str()
        .map_err(|_| Error::BadRequest("a requirement header is not ASCII".into()))
}

/// A string claim of the token, or `""`.
fn claim_str<'a>(claims: &'a AccessClaims, name: &str) -> &'a str {
    claims
        .extra
        .get(name)
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
}

/// `/auth/verify` and `/auth/verify/{*rest}`, any method.
pub async fn verify(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    let m = &state.metrics;
    match check(&state, &parts).await {
        Ok(claims) => {
            m.forward_auth_allowed.inc();
            let mut resp = StatusCode::OK.into_response();
            // The identity headers include `Cache-Control: no-store`.
            *resp.headers_mut() = state
                .forward_auth_identity
                .headers(&state.forward_auth, &claims);
            resp
        }
        Err(e) => {
            m.forward_auth_result(e.status());
            let mut resp = e.into_response();
            no_store(resp.headers_mut());
            resp
        }
    }
}

/// A gateway that caches auth answers must not keep one past a logout.
fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

async fn check(state: &AppState, parts: &Parts) -> Result<Arc<AccessClaims>, Error> {
    let requirements = Requirements::of(parts, &state.forward_auth)?;
    let claims = verify_request(parts, state).await?;
    requirements.check(&claims)?;
    Ok(claims)
}

/// Sets every identity header from the verified claims (empty when the
/// token lacks the claim, or when a value cannot be a header value).
fn identity(h: &mut HeaderMap, names: &ForwardAuthHeaders, claims: &AccessClaims) {
    // One allocation for the map rather than a grow on the way.
    h.reserve(names.identity().len() + 2);
    let mut set = |name: &HeaderName, value: &str| {
        // Raw UTF-8 is allowed (obs-text); control characters are not.
        let value = if value.is_empty() {
            HeaderValue::from_static("")
        } else {
            HeaderValue::from_bytes(value.as_bytes())
                .unwrap_or_else(|_| HeaderValue::from_static(""))
        };
        h.insert(name.clone(), value);
    };
    set(&names.subject, &claims.sub);
    set(&names.session, &claims.sid);
    set(&names.scope, claim_str(claims, "scope"));
    set(&names.audience, &claims.aud);
    set(&names.email, claim_str(claims, "email"));
    set(&names.client_id, claim_str(claims, "client_id"));
    h.insert(names.expires.clone(), HeaderValue::from(claims.exp));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(scope: Option<&str>) -> AccessClaims {
        let mut extra = serde_json::Map::new();
        if let Some(s) = scope {
            extra.insert("scope".into(), s.into());
        }
        AccessClaims {
            iss: "https://issuer".into(),
            sub: "user-1".into(),
            aud: "api".into(),
            exp: 2_000_000_000,
            iat: 1_000,
            nbf: 1_000,
            jti: "j".into(),
            sid: "s".into(),
            extra,
        }
    }

    fn parts(uri: &str, headers: &[(&str, &[u8])]) -> Parts {
        let mut req = axum::http::Request::new(());
        if let Ok(u) = uri.parse() {
            *req.uri_mut() = u;
        }
        for (k, v) in headers {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(*k), HeaderValue::from_bytes(v)) {
                req.headers_mut().append(k, v);
            }
        }
        req.into_parts().0
    }

    #[test]
    fn requirements_come_from_the_query_on_the_exact_path_and_from_headers()
    -> Result<(), Box<dyn std::error::Error>> {
        let names = ForwardAuthHeaders::new(DEFAULT_HEADER_PREFIX)?;
        let r = Requirements::of(
            &parts(
                "/auth/verify?scope=read+write&audience=api",
                &[("x-auth-require-scope", b"admin read")],
            ),
            &names,
        )?;
        assert_eq!(r.scopes, ["read", "write", "admin"]);
        assert_eq!(r.audiences, ["api"]);
        // Under the prefix form the query is the client's original one.
        let r = Requirements::of(&parts("/auth/verify/app?scope=x", &[]), &names)?;
        assert_eq!(r, Requirements::default());
        Ok(())
    }

    #[test]
    fn malformed_requirements_are_400_and_unmet_ones_403() -> Result<(), Box<dyn std::error::Error>>
    {
        let names = ForwardAuthHeaders::new(DEFAULT_HEADER_PREFIX)?;
        for bad in [
            parts("/auth/verify", &[("x-auth-require-scope", b"a\"b")]),
            parts("/auth/verify", &[("x-auth-require-scope", b"\xff")]),
            parts("/auth/verify?audience=a%00b", &[]),
        ] {
            let e = Requirements::of(&bad, &names).err().ok_or("accepted")?;
            assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        }
        let need = |uri: &str| Requirements::of(&parts(uri, &[]), &names);
        assert!(
            need("/auth/verify?scope=read")?
                .check(&claims(Some("read write")))
                .is_ok()
        );
        let e = need("/auth/verify?scope=read+admin")?
            .check(&claims(Some("read write")))
            .err()
            .ok_or("accepted")?;
        assert_eq!(e.code(), "insufficient_scope");
        let e = need("/auth/verify?scope=read")?
            .check(&claims(None))
            .err()
            .ok_or("accepted")?;
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        let e = need("/auth/verify?audience=other")?
            .check(&claims(None))
            .err()
            .ok_or("accepted")?;
        assert_eq!(e.code(), "audience_not_accepted");
        assert!(
            need("/auth/verify?audience=api")?
                .check(&claims(None))
                .is_ok()
        );
        Ok(())
    }

    #[test]
    fn the_default_names_are_the_ones_the_default_prefix_builds()
    -> Result<(), Box<dyn std::error::Error>> {
        let names = ForwardAuthHeaders::new(DEFAULT_HEADER_PREFIX)?;
        let built: Vec<&str> = names
            .identity()
            .into_iter()
            .chain([&names.require_scope, &names.require_audience])
            .map(HeaderName::as_str)
            .collect();
        let mut expected = DEFAULT_NAMES.to_vec();
        let mut got = built.clone();
        expected.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, expected);
        // Any spelling of the default prefix gives the same names.
        let lower = ForwardAuthHeaders::new("x-auth-")?;
        assert_eq!(lower.subject, names.subject);
        Ok(())
    }

    #[test]
    fn identity_headers_are_kept_for_claims_the_verified_cache_holds()
    -> Result<(), Box<dyn std::error::Error>> {
        let cache = IdentityCache::default();
        let names = ForwardAuthHeaders::new(DEFAULT_HEADER_PREFIX)?;
        let built = |c: &AccessClaims| {
            let mut h = HeaderMap::new();
            identity(&mut h, &names, c);
            no_store(&mut h);
            h
        };
        // Claims only this request holds are not kept.
        let once = Arc::new(claims(Some("read")));
        assert_eq!(cache.headers(&names, &once), built(&once));
        assert_eq!(cache.len(), 0);
        // Claims held elsewhere too are kept, and give the same headers again.
        let held = Arc::new(claims(None));
        let elsewhere = held.clone();
        let first = cache.headers(&names, &held);
        assert_eq!(cache.len(), 1);
        assert_eq!(first, built(&held));
        assert_eq!(first.len(), 8);
        assert_eq!(first.get("cache-control").ok_or("no no-store")?, "no-store");
        assert_eq!(cache.headers(&names, &held), first);
        // Other claims (another address) get their own headers.
        let other = Arc::new(AccessClaims {
            sub: "user-2".into(),
            ..claims(None)
        });
        let _also = other.clone();
        let h = cache.headers(&names, &other);
        assert_eq!(h.get("x-auth-subject").ok_or("no subject")?, "user-2");
        let h = cache.headers(&names, &held);
        assert_eq!(h.get("x-auth-subject").ok_or("no subject")?, "user-1");
        assert_eq!(cache.len(), 2);
        drop(elsewhere);
        Ok(())
    }

    #[test]
    fn the_identity_cache_is_bounded_and_drops_claims_nothing_holds()
    -> Result<(), Box<dyn std::error::Error>> {
        let cache = IdentityCache::default();
        let names = ForwardAuthHeaders::new(DEFAULT_HEADER_PREFIX)?;
        let mut kept = Vec::new();
        for i in 0..IDENTITY_CACHE_ENTRIES {
            let c = Arc::new(AccessClaims {
                sub: format!("user-{i}"),
                ..claims(None)
            });
            // Held elsewhere when seen; every other one stays held.
            let elsewhere = c.clone();
            let _ = cache.headers(&names, &c);
            if i % 2 == 0 {
                kept.push(elsewhere);
            }
        }
        assert_eq!(cache.len(), IDENTITY_CACHE_ENTRIES);
        let next = Arc::new(claims(None));
        let _held = next.clone();
        let _ = cache.headers(&names, &next);
        // The ones nothing held are gone; the held ones and the new one stay.
        assert_eq!(cache.len(), kept.len() + 1);
        Ok(())
    }

    #[test]
    fn identity_headers_are_all_set_and_prefixes_are_checked()
    -> Result<(), Box<dyn std::error::Error>> {
        let names = ForwardAuthHeaders::new("X-User-")?;
        let mut h = HeaderMap::new();
        identity(&mut h, &names, &claims(None));
        assert_eq!(h.get("x-user-subject").ok_or("no subject")?, "user-1");
        assert_eq!(h.get("x-user-scope").ok_or("no scope")?, "");
        assert_eq!(h.get("x-user-expires").ok_or("no expires")?, "2000000000");
        assert_eq!(h.len(), 7);
        for bad in ["", "X Auth-", "X-Auth:", &"a".repeat(65)] {
            assert!(!is_header_prefix(bad), "{bad:?}");
            assert!(ForwardAuthHeaders::new(bad).is_err());
        }
        Ok(())
    }
}
