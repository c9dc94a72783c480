//! Client authentication at the public OAuth endpoints (RFC 6749 §2.3):
//! `client_secret_basic` (id and secret form-urlencoded, then Basic),
//! `client_secret_post`, and `none` for public clients (their `client_id`
//! alone). One method per request. An unknown client, a wrong, expired or
//! missing secret all answer the same `invalid_client`; the secret is
//! compared in constant time against every current hash of the client, and
//! an unknown client costs the same hash and comparison.

use authrealm_tokens::clients::{ClientEntry, ClientType, MAX_CLIENT_ID_LEN};
use authrealm_tokens::oauth::ErrorCode;
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use crate::clients::Registry;
use crate::error::Error;
use crate::oauth::form::Form;

/// The same sentence for every failed authentication.
const FAILED: &str = "client authentication failed";

/// A refused request of a public OAuth endpoint, and whether the client
/// used Basic (an `invalid_client` answer is then 401 with
/// `WWW-Authenticate: Basic`).
#[derive(Debug)]
pub struct Refusal {
    /// The refusal.
    pub error: Error,
    /// Whether the client used the Authorization header.
    pub basic: bool,
}

impl Refusal {
    /// A refusal of a request that authenticated with Basic or not.
    #[must_use]
    pub fn new(error: Error, basic: bool) -> Self {
        Self { error, basic }
    }
}

/// The credentials a request presents.
struct Presented {
    client_id: Option<String>,
    secret: Option<String>,
    basic: bool,
}

/// Authenticates the client of a request; the client's registry entry.
///
/// # Errors
/// [`Refusal`] with `invalid_client` (or `invalid_request` for two
/// methods at once or a malformed header).
pub fn authenticate<'r>(
    registry: &'r Registry,
    headers: &HeaderMap,
    form: &Form,
    now: i64,
) -> Result<&'r ClientEntry, Refusal> {
    let presented = presented(headers, form)?;
    let basic = presented.basic;
    let fail = |code, msg: &'static str| Refusal {
        error: Error::oauth(code, msg),
        basic,
    };
    let Some(client_id) = presented.client_id else {
        return Err(fail(
            ErrorCode::InvalidClient,
            "client authentication is required (client_secret_basic, client_secret_post, or client_id for public clients)",
        ));
    };
    let Some(client) = registry.get(&client_id) else {
        // The work a known client costs, so timing tells nothing.
        let hash =
            authrealm_tokens::clients::hash_secret(presented.secret.as_deref().unwrap_or(""));
        let _ = hash.as_bytes().ct_eq(&[b'0'; 64]);
        return Err(fail(ErrorCode::InvalidClient, FAILED));
    };
    match (client.client_type, presented.secret) {
        (ClientType::Confidential, Some(secret)) if client.secret_matches(&secret, now) => {
            Ok(client)
        }
        (ClientType::Confidential, _) => Err(fail(ErrorCode::InvalidClient, FAILED)),
        (ClientType::Public, None) => Ok(client),
        (ClientType::Public, Some(_)) => Err(fail(
            ErrorCode::InvalidClient,
            "client authentication failed: a public client has no secret and authenticates with client_id alone",
        )),
    }
}

/// Reads the credentials from the Authorization header and the body.
fn presented(headers: &HeaderMap, form: &Form) -> Result<Presented, Refusal> {
    let mut auth = headers.get_all(header::AUTHORIZATION).iter();
    let header_value = match (auth.next(), auth.next()) {
        (None, _) => None,
        (Some(v), None) => Some(v),
        (Some(_), Some(_)) => {
            return Err(Refusal {
                error: Error::oauth(
                    ErrorCode::InvalidRequest,
                    "more than one Authorization header",
                ),
                basic: false,
            });
        }
    };
    let body_id = form.get("client_id").map(str::to_owned);
    let body_secret = form.get("client_secret").map(str::to_owned);
    let Some(value) = header_value else {
        return Ok(Presented {
            client_id: body_id,
            secret: body_secret,
            basic: false,
        });
    };
    let bad_header = |msg: &'static str| Refusal {
        error: Error::oauth(ErrorCode::InvalidClient, msg),
        basic: true,
    };
    let (id, secret) = value
        .to_str()
        .ok()
        .and_then(parse_basic)
        .ok_or_else(|| bad_header("the Authorization header is not valid Basic credentials"))?;
    if body_secret.is_some() {
        return Err(Refusal {
            error: Error::oauth(
                ErrorCode::InvalidRequest,
                "use one client authentication method: Basic or client_secret in the body, not both",
            ),
            basic: true,
        });
    }
    if body_id.as_ref().is_some_and(|b| *b != id) {
        return Err(Refusal {
            error: Error::oauth(
                ErrorCode::InvalidRequest,
                "client_id in the body differs from the one in the Authorization header",
            ),
            basic: true,
        });
    }
    Ok(Presented {
        client_id: Some(id),
        // An empty password is a public client's way of using Basic.
        secret: (!secret.is_empty()).then_some(secret),
        basic: true,
    })
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` → (id, secret).
fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = engine.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    let id = unescape(id)?;
    if id.is_empty() || id.len() > MAX_CLIENT_ID_LEN {
        return None;
    }
    Some((id, unescape(secret)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    #[test]
    fn basic_credentials_are_form_urlencoded_inside() {
        assert_eq!(
            parse_basic(&basic("default.app:s%3Acr%2Bet+x")),
            Some(("default.app".into(), "s:cr+et x".into()))
        );
        assert_eq!(
            parse_basic(&basic("public:")),
            Some(("public".into(), String::new()))
        );
        let unpadded = basic("a:b").trim_end_matches('=').to_owned();
        assert_eq!(parse_basic(&unpadded), Some(("a".into(), "b".into())));
        for bad in [
            "Bearer abc".to_owned(),
            basic("no-colon"),
            basic(":secret"),
            "Basic !!!".to_owned(),
            basic("a:%FF"),
        ] {
            assert_eq!(parse_basic(&bad), None, "{bad}");
        }
    }
}
