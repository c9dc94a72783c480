//! What OP signs for browsers: the browser-session (SSO) cookie and the
//! login form's CSRF token, both HMAC-SHA256 with keys derived from one
//! secret (`AUTHREALM_SESSION_COOKIE_KEY`, or a random one per process).
//!
//! The session cookie holds `{sub, sids, auth_time, exp}` in the clear
//! (nothing secret: the user id and MA session ids) with its MAC; it is
//! live while its MAC checks, `exp` has not passed and OP's revocation
//! view has none of its `sids` revoked (checked by the caller).
//!
//! The CSRF token binds a login form to the pending authorization request
//! and to a random nonce in a `SameSite=Strict` cookie: `<issued>.<mac>`
//! over nonce, issue time and the request's parameters. A form posted from
//! another site has no nonce cookie; a token lifted from one form does not
//! fit another request or another browser.

use authrealm_tokens::ServiceCredential;
use authrealm_tokens::oauth::AuthorizeRequest;
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How long a login form may be submitted after it was shown, seconds.
pub const FORM_TTL_SECS: i64 = 3600;
/// Most MA sessions one browser session records (one per code issued);
/// beyond it the user logs in again and a new browser session starts.
pub const MAX_SIDS: usize = 16;
/// Longest cookie value OP reads.
const MAX_COOKIE_LEN: usize = 3000;

/// A browser session: who logged in when, and the MA sessions of the codes
/// issued under it (revoked together at logout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserSession {
    /// The user.
    pub sub: String,
    /// The MA sessions (`sid` of each code's tokens), oldest first.
    pub sids: Vec<String>,
    /// When the user typed the password (Unix seconds).
    pub auth_time: i64,
    /// When the browser session ends (Unix seconds).
    pub exp: i64,
}

/// The two MAC keys. `Debug` shows nothing of them.
pub struct Keys {
    cookie: hmac::Key,
    csrf: hmac::Key,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").finish_non_exhaustive()
    }
}

impl Keys {
    /// Keys derived from the configured secret, or from 32 random bytes.
    ///
    /// # Errors
    /// [`Error::Random`] when the random source fails.
    pub fn new(secret: Option<&ServiceCredential>) -> Result<Self, Error> {
        let master = match secret {
            Some(s) => s.expose().as_bytes().to_vec(),
            None => {
                let mut b = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut b).map_err(|_| Error::Random)?;
                b
            }
        };
        let master = hmac::Key::new(hmac::HMAC_SHA256, &master);
        let derive =
            |label: &[u8]| hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&master, label).as_ref());
        Ok(Self {
            cookie: derive(b"authrealm op browser session cookie v1"),
            csrf: derive(b"authrealm op login form csrf v1"),
        })
    }

    /// The cookie value of a session.
    #[must_use]
    pub fn seal_session(&self, s: &BrowserSession) -> String {
        let json = serde_json::to_vec(s).unwrap_or_default();
        let mac = hmac::sign(&self.cookie, &json);
        format!("{}.{}", B64.encode(&json), B64.encode(mac.as_ref()))
    }

    /// The session a cookie value holds, if its MAC checks and it has not
    /// expired at `now`.
    #[must_use]
    pub fn open_session(&self, value: &str, now: i64) -> Option<BrowserSession> {
        if value.len() > MAX_COOKIE_LEN {
            return None;
        }
        let (body, mac) = value.split_once('.')?;
        let json = B64.decode(body).ok()?;
        let mac = B64.decode(mac).ok()?;
        hmac::verify(&self.cookie, &json, &mac).ok()?;
        let s: BrowserSession = serde_json::from_slice(&json).ok()?;
        (s.exp > now && !s.sids.is_empty()).then_some(s)
    }

    fn csrf_mac(&self, nonce: &str, issued: i64, req: &AuthorizeRequest) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.csrf);
        ctx.update(nonce.as_bytes());
        ctx.update(b"\0");
        ctx.update(issued.to_string().as_bytes());
        ctx.update(b"\0");
        ctx.update(&serde_json::to_vec(req).unwrap_or_default());
        ctx.sign()
    }

    /// The CSRF token of a login form for `req`, shown at `now` to the
    /// browser holding `nonce`.
    #[must_use]
    pub fn csrf_token(&self, nonce: &str, now: i64, req: &AuthorizeRequest) -> String {
        let mac = self.csrf_mac(nonce, now, req);
        format!("{now}.{}", B64.encode(mac.as_ref()))
    }

    /// Whether `token` is the CSRF token of a form for `req` shown to the
    /// browser holding `nonce` less than [`FORM_TTL_SECS`] before `now`
    /// (constant-time MAC check).
    #[must_use]
    pub fn csrf_ok(&self, token: &str, nonce: &str, now: i64, req: &AuthorizeRequest) -> bool {
        let Some((issued, mac)) = token.split_once('.') else {
            return false;
        };
        let Ok(issued) = issued.parse::<i64>() else {
            return false;
        };
        if issued > now.saturating_add(60) || now.saturating_sub(issued) > FORM_TTL_SECS {
            return false;
        }
        let Ok(mac) = B64.decode(mac) else {
            return false;
        };
        let mut msg = Vec::new();
        msg.extend_from_slice(nonce.as_bytes());
        msg.push(0);
        msg.extend_from_slice(issued.to_string().as_bytes());
        msg.push(0);
        msg.extend_from_slice(&serde_json::to_vec(req).unwrap_or_default());
        hmac::verify(&self.csrf, &msg, &mac).is_ok()
    }
}

/// A fresh CSRF nonce for the browser's cookie (256 bits, base64url).
///
/// # Errors
/// [`Error::Random`].
pub fn new_nonce() -> Result<String, Error> {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| Error::Random)?;
    Ok(B64.encode(b))
}

/// Whether a cookie value can be a nonce [`new_nonce`] made.
#[must_use]
pub fn is_nonce(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(state: &str) -> AuthorizeRequest {
        AuthorizeRequest {
            client_id: Some("app".into()),
            state: Some(state.into()),
            ..AuthorizeRequest::default()
        }
    }

    #[test]
    fn session_cookie_round_trips_and_refuses_tampering() -> Result<(), Error> {
        let keys = Keys::new(None)?;
        let s = BrowserSession {
            sub: "u1".into(),
            sids: vec!["s1".into()],
            auth_time: 100,
            exp: 200,
        };
        let v = keys.seal_session(&s);
        assert_eq!(keys.open_session(&v, 150), Some(s.clone()));
        assert_eq!(keys.open_session(&v, 200), None, "expired");
        let other = Keys::new(None)?;
        assert_eq!(other.open_session(&v, 150), None, "another key");
        let forged = BrowserSession {
            sub: "u2".into(),
            ..s
        };
        let (_, mac) = v.split_once('.').unwrap_or_default();
        let body = B64.encode(serde_json::to_vec(&forged).unwrap_or_default());
        assert_eq!(keys.open_session(&format!("{body}.{mac}"), 150), None);
        assert_eq!(keys.open_session("garbage", 150), None);
        Ok(())
    }

    #[test]
    fn csrf_token_is_bound_to_nonce_request_and_time() -> Result<(), Error> {
        let keys = Keys::new(None)?;
        let nonce = new_nonce()?;
        assert!(is_nonce(&nonce));
        let t = keys.csrf_token(&nonce, 1000, &req("a"));
        assert!(keys.csrf_ok(&t, &nonce, 1010, &req("a")));
        assert!(!keys.csrf_ok(&t, &new_nonce()?, 1010, &req("a")), "nonce");
        assert!(!keys.csrf_ok(&t, &nonce, 1010, &req("b")), "request");
        assert!(
            !keys.csrf_ok(&t, &nonce, 1000 + FORM_TTL_SECS + 1, &req("a")),
            "age"
        );
        let moved = t.replacen("1000", "1001", 1);
        assert!(!keys.csrf_ok(&moved, &nonce, 1010, &req("a")), "time");
        assert!(!keys.csrf_ok("", &nonce, 1010, &req("a")));
        Ok(())
    }
}
