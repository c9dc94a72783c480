//! OpenID Connect as MA and OP share it: the claims of an ID token MA
//! signs, which of a user's claims each standard scope releases (ID tokens
//! at MA, UserInfo at OP), and the check OP makes of an `id_token_hint` at
//! logout.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::verify::{Verifier, VerifyError};

/// Claims of an ID token (OpenID Connect Core §2, §3.1.3.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// MA's issuer URL.
    pub iss: String,
    /// The user.
    pub sub: String,
    /// The client the token is for.
    pub aud: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// When the user authenticated (Unix seconds).
    pub auth_time: i64,
    /// The `nonce` of the authorization request, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The session, as in the access tokens of the grant (and in logout).
    pub sid: String,
    /// Authorized party: the client, as `aud`.
    pub azp: String,
    /// The user's claims the granted scopes release (`email`, `name`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The user claims each standard scope releases (OpenID Connect Core §5.4).
pub const SCOPE_CLAIMS: [(&str, &[&str]); 4] = [
    (
        "profile",
        &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    ),
    ("email", &["email", "email_verified"]),
    ("address", &["address"]),
    ("phone", &["phone_number", "phone_number_verified"]),
];

/// The standard claims a scope may release, every scope together (what
/// discovery lists in `claims_supported` besides the token claims).
pub fn standard_claims() -> impl Iterator<Item = &'static str> {
    SCOPE_CLAIMS
        .iter()
        .flat_map(|(_, names)| names.iter().copied())
}

/// Of the user's `claims`, those the granted `scopes` release.
#[must_use]
pub fn released_claims(scopes: &[String], claims: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (scope, names) in SCOPE_CLAIMS {
        if !scopes.iter().any(|s| s == scope) {
            continue;
        }
        for name in names {
            if let Some(v) = claims.get(*name) {
                out.insert((*name).to_owned(), v.clone());
            }
        }
    }
    out
}

/// What an `id_token_hint` says, once its signature and issuer are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    /// The user.
    pub sub: String,
    /// The client it was issued to.
    pub aud: String,
    /// The session.
    pub sid: Option<String>,
}

#[derive(Deserialize)]
struct HintClaims {
    iss: String,
    sub: String,
    aud: String,
    azp: String,
    #[serde(default)]
    sid: Option<String>,
}

impl Verifier {
    /// Checks an `id_token_hint` (RP-initiated logout): signed by a key of
    /// this verifier's JWKS, issued by its issuer, and an ID token (it
    /// names its client as `aud` and `azp`; access tokens do not).
    /// Expiry is ignored: a hint is usually an old ID token.
    ///
    /// # Errors
    /// The [`VerifyError`] of the signature or header check,
    /// [`VerifyError::WrongIssuer`], or [`VerifyError::Malformed`] for a
    /// token that is not an ID token.
    pub fn id_token_hint(&self, token: &str) -> Result<IdTokenHint, VerifyError> {
        let claims: HintClaims = self.decode(token)?;
        if claims.iss != self.issuer() {
            return Err(VerifyError::WrongIssuer);
        }
        if claims.azp != claims.aud {
            return Err(VerifyError::Malformed);
        }
        Ok(IdTokenHint {
            sub: claims.sub,
            aud: claims.aud,
            sid: claims.sid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_release_only_their_claims() {
        let mut claims = Map::new();
        claims.insert("email".into(), Value::from("ada@example.com"));
        claims.insert("email_verified".into(), Value::from(true));
        claims.insert("name".into(), Value::from("Ada"));
        claims.insert("role".into(), Value::from("admin"));
        let email = released_claims(&["openid".into(), "email".into()], &claims);
        assert_eq!(email.len(), 2);
        assert_eq!(email["email"], Value::from("ada@example.com"));
        let profile = released_claims(&["profile".into()], &claims);
        assert_eq!(profile.keys().collect::<Vec<_>>(), ["name"]);
        assert!(released_claims(&["openid".into()], &claims).is_empty());
        assert!(standard_claims().any(|c| c == "email"));
    }
}
