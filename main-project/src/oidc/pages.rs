//! OP's server-rendered pages: the login form, the error page and the
//! "logged out" page — plain HTML with one stylesheet, no script, every
//! value escaped — and the headers every page and redirect carries.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Path of the stylesheet (under `/oauth2`, like every page).
pub const STYLESHEET_PATH: &str = "/oauth2/assets/login.css";

/// Path of the icon (so browsers do not ask for a `/favicon.ico` OP lacks).
pub const ICON_PATH: &str = "/oauth2/assets/icon.svg";

/// The icon: a key-hole mark.
pub const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><circle cx=\"8\" cy=\"6\" r=\"4\" fill=\"#334\"/><rect x=\"6.5\" y=\"8\" width=\"3\" height=\"7\" fill=\"#334\"/></svg>";

/// The stylesheet.
pub const STYLESHEET: &str = r"
:root { color-scheme: light dark; font-family: system-ui, sans-serif; }
body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: Canvas; color: CanvasText; }
main { width: min(24rem, 92vw); padding: 2rem; border: 1px solid GrayText; border-radius: .5rem; }
h1 { font-size: 1.4rem; margin-top: 0; }
label { display: block; margin-top: 1rem; font-weight: 600; }
input[type=email], input[type=password] { display: block; width: 100%; box-sizing: border-box; margin-top: .25rem; padding: .5rem; font: inherit; }
button { margin-top: 1.5rem; width: 100%; padding: .6rem; font: inherit; font-weight: 600; cursor: pointer; }
.error { margin: 1rem 0 0; padding: .6rem; border-left: .25rem solid #b00020; background: color-mix(in srgb, #b00020 12%, Canvas); }
.muted { color: GrayText; font-size: .9rem; }
:focus-visible { outline: 3px solid Highlight; outline-offset: 2px; }
";

/// Escapes text for HTML element content and quoted attribute values.
#[must_use]
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\">\n\
         <link rel=\"icon\" href=\"{ICON_PATH}\" type=\"image/svg+xml\">\n</head>\n\
         <body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(title)
    )
}

/// What the login page shows.
#[derive(Debug)]
pub struct LoginView<'a> {
    /// The client's display name.
    pub client_name: &'a str,
    /// The email to fill in again after a failed attempt.
    pub email: &'a str,
    /// The error of the last attempt.
    pub error: Option<&'a str>,
    /// The pending authorization request, as hidden fields.
    pub hidden: &'a [(&'static str, String)],
    /// The CSRF token.
    pub csrf_token: &'a str,
}

/// The login form (posted to `/oauth2/authorize/login`).
#[must_use]
pub fn login(v: &LoginView<'_>) -> String {
    let mut body = String::new();
    body.push_str("<h1>Sign in</h1>\n");
    body.push_str(&format!(
        "<p class=\"muted\">to continue to <strong>{}</strong></p>\n",
        escape(v.client_name)
    ));
    let described = if let Some(e) = v.error {
        body.push_str(&format!(
            "<p id=\"login-error\" class=\"error\" role=\"alert\">{}</p>\n",
            escape(e)
        ));
        " aria-describedby=\"login-error\" aria-invalid=\"true\""
    } else {
        ""
    };
    body.push_str("<form method=\"post\" action=\"/oauth2/authorize/login\">\n");
    for (name, value) in v.hidden {
        body.push_str(&format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
            escape(value)
        ));
    }
    body.push_str(&format!(
        "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\n",
        escape(v.csrf_token)
    ));
    body.push_str(&format!(
        "<label for=\"email\">Email</label>\n<input id=\"email\" name=\"email\" type=\"email\" \
         autocomplete=\"username\" required autofocus value=\"{}\"{described}>\n",
        escape(v.email)
    ));
    body.push_str(&format!(
        "<label for=\"password\">Password</label>\n<input id=\"password\" name=\"password\" \
         type=\"password\" autocomplete=\"current-password\" required{described}>\n"
    ));
    body.push_str("<button type=\"submit\">Sign in</button>\n</form>\n");
    document("Sign in", &body)
}

/// An error page: what went wrong and the stable code.
#[must_use]
pub fn error(title: &str, message: &str, code: &str) -> String {
    let body = format!(
        "<h1>{}</h1>\n<p role=\"alert\">{}</p>\n<p class=\"muted\">Error code: <code>{}</code></p>\n",
        escape(title),
        escape(message),
        escape(code)
    );
    document(title, &body)
}

/// The page after a logout without a redirect.
#[must_use]
pub fn logged_out() -> String {
    document(
        "Signed out",
        "<h1>Signed out</h1>\n<p role=\"status\">You have been signed out. You can close this window.</p>\n",
    )
}

/// The headers of every page and redirect of the login flow: no script at
/// all, no framing, never cached, no referrer (codes and states stay out of
/// other sites' logs).
pub fn secure(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// An HTML answer.
#[must_use]
pub fn html(status: StatusCode, page: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

/// `GET /oauth2/assets/login.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// `GET /oauth2/assets/icon.svg`.
pub async fn icon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        ICON,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_escaped() {
        let hidden = [("state", "\"><script>x</script>".to_owned())];
        let page = login(&LoginView {
            client_name: "<b>App</b>",
            email: "a\"@example.com",
            error: Some("<i>bad</i>"),
            hidden: &hidden,
            csrf_token: "t",
        });
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<b>App"), "{page}");
        assert!(!page.contains("<i>bad"), "{page}");
        assert!(page.contains("role=\"alert\""));
        assert!(page.contains("<html lang=\"en\">"));
        assert!(page.contains("<label for=\"password\">"));
    }
}
