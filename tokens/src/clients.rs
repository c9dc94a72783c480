//! The OAuth client registry file: the operator writes it (from the realm's
//! `AuthClient` resources) into a Secret under [`FILE_NAME`], MA reads it
//! from the mounted directory and reloads it when it changes. Client secrets
//! appear only as SHA-256 hashes: they are 256-bit random values, so a fast
//! hash is the right one, and MA compares them in constant time.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

/// Name of the file (and Secret key) that holds the registry.
pub const FILE_NAME: &str = "clients.json";

/// The format version this code writes and accepts.
pub const FORMAT_VERSION: u32 = 1;

/// Longest accepted client id.
pub const MAX_CLIENT_ID_LEN: usize = 128;

/// Confidential clients hold a secret; public ones (browser and native
/// apps) cannot keep one and authenticate with their id and PKCE alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Authenticates with a client secret.
    Confidential,
    /// No secret; PKCE only.
    Public,
}

/// The OAuth 2.0 grants a client may use at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// The code flow (RFC 6749 §4.1) with PKCE.
    AuthorizationCode,
    /// Refresh token rotation (RFC 6749 §6).
    RefreshToken,
    /// Service-to-service tokens (RFC 6749 §4.4); confidential clients only.
    ClientCredentials,
}

impl GrantType {
    /// The `grant_type` value of the token endpoint.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    /// Parses a `grant_type` value.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(Self::AuthorizationCode),
            "refresh_token" => Some(Self::RefreshToken),
            "client_credentials" => Some(Self::ClientCredentials),
            _ => None,
        }
    }
}

/// The hash of one client secret, and until when it is accepted (the old
/// secret of a rotation keeps working until its overlap window ends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretHash {
    /// Lower-case hex SHA-256 of the secret's UTF-8 bytes.
    pub sha256: String,
    /// Unix seconds after which this secret is refused; `None`: no end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<i64>,
}

/// One registered client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientEntry {
    /// The `client_id`.
    pub client_id: String,
    /// Confidential or public.
    #[serde(rename = "type")]
    pub client_type: ClientType,
    /// Hashes of the secrets currently accepted (confidential clients).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_hashes: Vec<SecretHash>,
    /// Grants the client may use.
    pub grant_types: Vec<GrantType>,
    /// Exact redirect URIs of the code flow (no pattern matching).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    /// Exact URIs RP-initiated logout may send the browser back to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Scopes the client may be granted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Audiences the client's access tokens may carry; the first is the
    /// default when the request names none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Access token lifetime for this client (within the realm's bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_ttl_secs: Option<u64>,
    /// Refresh token lifetime for this client (within the realm's bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl_secs: Option<u64>,
    /// Whether the client may call the introspection endpoint.
    #[serde(default)]
    pub introspection: bool,
    /// Name shown on the login page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRegistryFile {
    /// Format version; see [`FORMAT_VERSION`].
    pub version: u32,
    /// Every client of the realm.
    pub clients: Vec<ClientEntry>,
}

/// Why a registry file was refused. Names the client, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum ClientRegistryError {
    /// Not valid JSON of the expected shape.
    #[error("client registry is not valid JSON of the expected shape: {0}")]
    Json(#[source] serde_json::Error),
    /// An unknown format version.
    #[error("client registry format version {0} is not supported (expected {FORMAT_VERSION})")]
    Version(u32),
    /// A client id that is empty, too long or not printable ASCII without spaces.
    #[error(
        "client id {0:?} is empty, longer than {MAX_CLIENT_ID_LEN} characters or not printable ASCII"
    )]
    BadClientId(String),
    /// Two clients share an id.
    #[error("client id {0:?} appears more than once")]
    DuplicateClientId(String),
    /// A rule about the client's shape is broken.
    #[error("client {client_id:?}: {problem}")]
    Invalid {
        /// The offending client.
        client_id: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Lower-case hex SHA-256 of a client secret, as stored in the registry.
#[must_use]
pub fn hash_secret(secret: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    d.as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A scope token as RFC 6749 §3.3 allows: printable ASCII except space,
/// `"` and `\`.
#[must_use]
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

/// A redirect URI the registry accepts: absolute `https://`, or `http://`
/// to a loopback host (RFC 8252 §7.3, §8.3), or a private-use scheme for
/// native apps (`com.example.app:/cb`); no fragment, no whitespace.
#[must_use]
pub fn is_valid_redirect_uri(uri: &str) -> bool {
    if uri.is_empty() || uri.len() > 2048 || uri.contains('#') {
        return false;
    }
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return false;
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return false;
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => authority(rest).is_some_and(|h| !h.is_empty()),
        "http" => authority(rest).is_some_and(is_loopback_host),
        // Private-use schemes must contain a dot (reverse domain name).
        other => other.contains('.') && !rest.is_empty(),
    }
}

/// The host part of `//host[:port]/...`.
fn authority(rest: &str) -> Option<&str> {
    let rest = rest.strip_prefix("//")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let auth = &rest[..end];
    if auth.contains('@') {
        return None;
    }
    if let Some(v6) = auth.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    Some(auth.split_once(':').map_or(auth, |(h, _)| h))
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl ClientRegistryFile {
    /// Parses and validates a registry file; nothing is partially accepted.
    ///
    /// # Errors
    /// The first [`ClientRegistryError`] found.
    pub fn parse(bytes: &[u8]) -> Result<Self, ClientRegistryError> {
        let file: Self = serde_json::from_slice(bytes).map_err(ClientRegistryError::Json)?;
        file.validate()?;
        Ok(file)
    }

    /// Checks every rule [`ClientRegistryFile::parse`] promises.
    ///
    /// # Errors
    /// The first violated rule.
    pub fn validate(&self) -> Result<(), ClientRegistryError> {
        if self.version != FORMAT_VERSION {
            return Err(ClientRegistryError::Version(self.version));
        }
        let mut seen = HashSet::new();
        for c in &self.clients {
            if c.client_id.is_empty()
                || c.client_id.len() > MAX_CLIENT_ID_LEN
                || !c.client_id.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(ClientRegistryError::BadClientId(c.client_id.clone()));
            }
            if !seen.insert(c.client_id.as_str()) {
                return Err(ClientRegistryError::DuplicateClientId(c.client_id.clone()));
            }
            c.validate()?;
        }
        Ok(())
    }

    /// The client with this id.
    #[must_use]
    pub fn get(&self, client_id: &str) -> Option<&ClientEntry> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    /// Serialises the registry as pretty JSON (the Secret's content).
    ///
    /// # Errors
    /// Only if serialisation fails, which it does not for these types.
    pub fn to_json(&self) -> Result<Vec<u8>, ClientRegistryError> {
        serde_json::to_vec_pretty(self).map_err(ClientRegistryError::Json)
    }
}

impl ClientEntry {
    fn validate(&self) -> Result<(), ClientRegistryError> {
        let bad = |problem: String| ClientRegistryError::Invalid {
            client_id: self.client_id.clone(),
            problem,
        };
        if self.grant_types.is_empty() {
            return Err(bad("has no grant type".into()));
        }
        match self.client_type {
            ClientType::Public => {
                if !self.secret_hashes.is_empty() {
                    return Err(bad("a public client has no secret".into()));
                }
                if self.allows(GrantType::ClientCredentials) {
                    return Err(bad(
                        "a public client cannot use the client_credentials grant".into(),
                    ));
                }
                if self.introspection {
                    return Err(bad("a public client cannot introspect tokens".into()));
                }
            }
            ClientType::Confidential => {
                if self.secret_hashes.is_empty() {
                    return Err(bad("a confidential client needs a secret hash".into()));
                }
            }
        }
        for h in &self.secret_hashes {
            let hex = h.sha256.len() == 64
                && h.sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex {
                return Err(bad("a secret hash is not 64 lower-case hex digits".into()));
            }
        }
        if self.allows(GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return Err(bad(
                "the authorization_code grant needs at least one redirect URI".into(),
            ));
        }
        for uri in self
            .redirect_uris
            .iter()
            .chain(&self.post_logout_redirect_uris)
        {
            if !is_valid_redirect_uri(uri) {
                return Err(bad(format!(
                    "redirect URI {uri:?} must be absolute https://, http:// to a loopback host, \
                     or a private-use scheme, without a fragment"
                )));
            }
        }
        if let Some(s) = self.scopes.iter().find(|s| !is_scope_token(s)) {
            return Err(bad(format!("scope {s:?} is not a valid scope token")));
        }
        if let Some(a) = self
            .audiences
            .iter()
            .find(|a| a.is_empty() || a.len() > 256 || !a.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(bad(format!(
                "audience {a:?} is empty or not printable ASCII"
            )));
        }
        if self.access_token_ttl_secs == Some(0) || self.refresh_token_ttl_secs == Some(0) {
            return Err(bad("token lifetimes must be at least one second".into()));
        }
        Ok(())
    }

    /// Whether the client may use `grant`.
    #[must_use]
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether `presented` is one of the client's current secrets at `now`.
    /// Every stored hash is compared, in constant time, whatever matches.
    #[must_use]
    pub fn secret_matches(&self, presented: &str, now: i64) -> bool {
        let hash = hash_secret(presented);
        let mut ok = subtle::Choice::from(0);
        for h in &self.secret_hashes {
            let current = h.not_after.is_none_or(|t| now <= t);
            let equal = hash.as_bytes().ct_eq(h.sha256.as_bytes());
            ok |= equal & subtle::Choice::from(u8::from(current));
        }
        bool::from(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confidential() -> ClientEntry {
        ClientEntry {
            client_id: "default.grafana".into(),
            client_type: ClientType::Confidential,
            secret_hashes: vec![SecretHash {
                sha256: hash_secret("s3cret-value-of-enough-length"),
                not_after: None,
            }],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: vec!["https://grafana.example.com/login/generic_oauth".into()],
            post_logout_redirect_uris: vec![],
            scopes: vec!["openid".into(), "email".into()],
            audiences: vec!["authrealm".into()],
            access_token_ttl_secs: None,
            refresh_token_ttl_secs: None,
            introspection: false,
            display_name: Some("Grafana".into()),
        }
    }

    fn file(clients: Vec<ClientEntry>) -> ClientRegistryFile {
        ClientRegistryFile {
            version: FORMAT_VERSION,
            clients,
        }
    }

    #[test]
    fn a_written_registry_parses_back_equal() -> Result<(), ClientRegistryError> {
        let f = file(vec![confidential()]);
        let back = ClientRegistryFile::parse(&f.to_json()?)?;
        assert_eq!(back, f);
        assert!(back.get("default.grafana").is_some());
        assert!(back.get("default.other").is_none());
        Ok(())
    }

    #[test]
    fn secrets_match_only_while_current() {
        let mut c = confidential();
        assert!(c.secret_matches("s3cret-value-of-enough-length", 0));
        assert!(!c.secret_matches("s3cret-value-of-enough-lengtH", 0));
        assert!(!c.secret_matches("", 0));
        c.secret_hashes[0].not_after = Some(100);
        assert!(c.secret_matches("s3cret-value-of-enough-length", 100));
        assert!(!c.secret_matches("s3cret-value-of-enough-length", 101));
    }

    #[test]
    fn broken_registries_are_refused_with_the_client_named() {
        let cases: Vec<(ClientEntry, &str)> = vec![
            (
                ClientEntry {
                    client_type: ClientType::Public,
                    ..confidential()
                },
                "public client has no secret",
            ),
            (
                ClientEntry {
                    secret_hashes: vec![],
                    ..confidential()
                },
                "needs a secret",
            ),
            (
                ClientEntry {
                    redirect_uris: vec!["http://evil.example.com/cb".into()],
                    ..confidential()
                },
                "redirect URI",
            ),
            (
                ClientEntry {
                    redirect_uris: vec!["https://app.example.com/cb#frag".into()],
                    ..confidential()
                },
                "redirect URI",
            ),
            (
                ClientEntry {
                    redirect_uris: vec![],
                    ..confidential()
                },
                "redirect URI",
            ),
            (
                ClientEntry {
                    scopes: vec!["has space".into()],
                    ..confidential()
                },
                "scope",
            ),
            (
                ClientEntry {
                    grant_types: vec![],
                    ..confidential()
                },
                "no grant",
            ),
        ];
        for (c, want) in cases {
            let msg = file(vec![c])
                .validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                msg.contains(want) && msg.contains("default.grafana"),
                "{msg}"
            );
        }
        let dup = file(vec![confidential(), confidential()]).validate();
        assert!(matches!(
            dup,
            Err(ClientRegistryError::DuplicateClientId(_))
        ));
        let wrong_version = ClientRegistryFile {
            version: 2,
            clients: vec![],
        };
        assert!(matches!(
            wrong_version.validate(),
            Err(ClientRegistryError::Version(2))
        ));
        assert!(ClientRegistryFile::parse(b"{\"version\":1}").is_err());
    }

    #[test]
    fn redirect_uris_follow_the_native_and_web_rules() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb?x=1",
            "http://127.0.0.1:4000/cb",
            "http://localhost/cb",
            "http://[::1]:9/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(is_valid_redirect_uri(ok), "{ok}");
        }
        for bad in [
            "",
            "/relative",
            "http://example.com/cb",
            "https:///nohost",
            "https://user@evil.example.com/cb",
            "https://a.example.com/c b",
            "javascript:alert(1)",
            "myapp:/cb",
            "https://a.example.com/cb#x",
        ] {
            assert!(!is_valid_redirect_uri(bad), "{bad}");
        }
    }
}
