//! OP's side of OAuth 2.0 / OpenID Connect: the authorization endpoint and
//! its login page ([`authorize`]), the browser session that gives a second
//! client a code without a login ([`seal`]), UserInfo ([`userinfo`]) and
//! RP-initiated logout ([`logout`]). MA validates requests and issues the
//! codes; OP authenticates the user and owns the browser.

pub mod authorize;
pub mod logout;
pub mod pages;
pub mod seal;
pub mod userinfo;

use std::collections::HashMap;
use std::sync::Arc;

use authrealm_tokens::oauth::{self, AuthorizeRejection};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;

use crate::error::Error;
use crate::state::AppState;

/// Longest parameter value OP accepts (a longer one is a 400 page: no
/// legitimate request needs it, and MA's body limit must never be the one
/// to refuse it).
pub const MAX_PARAM_BYTES: usize = 4096;

/// Name of the browser-session (SSO) cookie.
pub const SESSION_COOKIE: &str = "authrealm_session";
/// Name of the login form's CSRF nonce cookie.
pub const CSRF_COOKIE: &str = "authrealm_csrf";
/// Path both cookies are scoped to.
pub const COOKIE_PATH: &str = "/oauth2";

/// Settings of the browser side.
#[derive(Debug)]
pub struct Settings {
    /// MAC keys of the session cookie and the CSRF token.
    pub keys: seal::Keys,
    /// Whether cookies carry `Secure`.
    pub secure_cookies: bool,
    /// Longest browser session, seconds.
    pub session_ttl: i64,
}

/// The routes under `/oauth2`.
pub fn routes() -> Router<Arc<AppState>> {
    let pages = Router::new()
        .route(
            oauth::PATH_AUTHORIZE,
            get(authorize::authorize).post(authorize::authorize_post),
        )
        .route(authorize::PATH_LOGIN, axum::routing::post(authorize::login))
        .route(
            oauth::PATH_END_SESSION,
            get(logout::logout).post(logout::logout_post),
        )
        .layer(axum::middleware::from_fn(secure_pages));
    let userinfo = Router::new().route(
        oauth::PATH_USERINFO,
        get(userinfo::userinfo).post(userinfo::userinfo),
    );
    Router::new()
        .merge(pages)
        .merge(userinfo)
        .route(pages::STYLESHEET_PATH, get(pages::stylesheet))
        .route(pages::ICON_PATH, get(pages::icon))
}

async fn secure_pages(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    pages::secure(&mut resp);
    resp
}

/// The parameters of a query string or form body: each at most once, an
/// empty one counts as absent (RFC 6749 §3.1).
#[derive(Default)]
pub struct Params(HashMap<String, String>);

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort_unstable();
        f.debug_tuple("Params").field(&names).finish()
    }
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` text.
    ///
    /// # Errors
    /// A sentence for the error page: a repeated parameter (named in
    /// printable ASCII only), or one longer than [`MAX_PARAM_BYTES`].
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut map = HashMap::new();
        for (name, value) in form_urlencoded::parse(bytes) {
            if value.is_empty() {
                continue;
            }
            let shown = || -> String {
                name.chars()
                    .filter(char::is_ascii_graphic)
                    .take(40)
                    .collect()
            };
            if value.len() > MAX_PARAM_BYTES {
                return Err(format!(
                    "The parameter `{}` is longer than {MAX_PARAM_BYTES} bytes.",
                    shown()
                ));
            }
            if map.contains_key(name.as_ref()) {
                return Err(format!(
                    "The parameter `{}` appears more than once.",
                    shown()
                ));
            }
            map.insert(name.to_string(), value.into_owned());
        }
        Ok(Self(map))
    }

    /// A parameter's value.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter's value, owned.
    #[must_use]
    pub fn take(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Whether the body is a form.
#[must_use]
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Reads a form body within the configured limit.
///
/// # Errors
/// A page answer: 400 for another content type or a repeated parameter, 413
/// for a body over the limit.
pub async fn read_form(state: &AppState, req: Request) -> Result<Params, Response> {
    if !is_form(req.headers()) {
        return Err(error_page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Bad request",
            "The form must be sent as application/x-www-form-urlencoded.",
            "invalid_request",
        ));
    }
    let bytes = axum::body::to_bytes(req.into_body(), state.max_body_bytes)
        .await
        .map_err(|_| {
            error_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Bad request",
                "The form is too large.",
                "payload_too_large",
            )
        })?;
    Params::parse(&bytes).map_err(|why| bad_params(&why))
}

/// The 400 page of parameters [`Params::parse`] refused.
#[must_use]
pub fn bad_params(why: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Bad request",
        why,
        "invalid_request",
    )
}

/// The value of cookie `name` in the request, if exactly one is sent.
#[must_use]
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut found = None;
    for line in headers.get_all(header::COOKIE) {
        let Ok(line) = line.to_str() else { continue };
        for pair in line.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    return None;
                }
                found = Some(v);
            }
        }
    }
    found
}

/// A `Set-Cookie` value for `name` (HttpOnly, scoped to `/oauth2`).
#[must_use]
pub fn set_cookie(
    settings: &Settings,
    name: &str,
    value: &str,
    max_age: i64,
    same_site: &str,
) -> Option<HeaderValue> {
    let secure = if settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={COOKIE_PATH}; Max-Age={}; HttpOnly; SameSite={same_site}{secure}",
        max_age.max(0)
    ))
    .ok()
}

/// A redirect (302) to `uri` with `params` added to its query.
#[must_use]
pub fn redirect(uri: &str, params: &[(&str, &str)]) -> Response {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let query = ser.finish();
    let (base, fragment) = uri
        .split_once('#')
        .map_or((uri, None), |(b, f)| (b, Some(f)));
    let mut location = base.to_owned();
    if !query.is_empty() {
        location.push(if base.contains('?') { '&' } else { '?' });
        location.push_str(&query);
    }
    if let Some(f) = fragment {
        location.push('#');
        location.push_str(f);
    }
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            let mut resp = Response::new(axum::body::Body::empty());
            *resp.status_mut() = StatusCode::FOUND;
            resp.headers_mut().insert(header::LOCATION, v);
            resp
        }
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The redirect URI cannot be used in a redirect.",
            "invalid_request",
        ),
    }
}

/// An HTML error page.
#[must_use]
pub fn error_page(status: StatusCode, title: &str, message: &str, code: &str) -> Response {
    pages::html(status, pages::error(title, message, code))
}

/// The page of an error OP has no better answer for (MA down: 503 with
/// `Retry-After`; anything else 500, logged).
#[must_use]
pub fn failure_page(e: &Error) -> Response {
    let status = e.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(error = %e, "login flow: dependency unavailable");
        let mut resp = error_page(
            status,
            "Try again shortly",
            "The sign-in service is unavailable right now. Please try again in a moment.",
            e.code(),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        resp
    } else {
        tracing::error!(error = %e, source = ?std::error::Error::source(e), "login flow failed");
        error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The sign-in could not be completed.",
            e.code(),
        )
    }
}

/// MA's refusal of an authorization request: back to the client's
/// redirect URI with `error`, `error_description`, `state` and `iss` (RFC
/// 6749 §4.1.2.1, RFC 9207) when MA says it may be, else a 400 page.
#[must_use]
pub fn refusal(
    rej: &AuthorizeRejection,
    redirect_uri: Option<&str>,
    state: Option<&str>,
    issuer: &str,
) -> Response {
    match redirect_uri {
        Some(uri) if rej.redirectable => {
            let mut params = vec![
                ("error", rej.error.code.as_str()),
                ("error_description", rej.error.message.as_str()),
            ];
            if let Some(s) = state {
                params.push(("state", s));
            }
            params.push(("iss", issuer));
            redirect(uri, &params)
        }
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request cannot be used",
            &format!(
                "{}. Go back to the application and start again.",
                rej.error.message.trim_end_matches('.')
            ),
            &rej.error.code,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_refuse_repeats_and_drop_empties() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        let long = format!("a={}", "x".repeat(MAX_PARAM_BYTES + 1));
        assert!(Params::parse(long.as_bytes()).is_err());
        let p = Params::parse(b"a=1&b=&c=x%20y").unwrap_or_default();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
    }

    #[test]
    fn redirects_keep_the_registered_query() {
        let r = redirect(
            "https://app.example/cb?x=1",
            &[("code", "a b"), ("state", "s&t")],
        );
        let loc = r
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert_eq!(loc, "https://app.example/cb?x=1&code=a+b&state=s%26t");
    }

    #[test]
    fn cookies_are_read_once() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        h.append(header::COOKIE, HeaderValue::from_static("b=3"));
        assert_eq!(cookie(&h, "b"), None, "two values: ambiguous");
    }
}
