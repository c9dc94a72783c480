//! `GET|POST /oauth2/authorize` and the login form it shows
//! (`POST /oauth2/authorize/login`).
//!
//! Every request is validated by MA first (client, exact redirect URI, then
//! the rest): the first two failures get an error page, never a redirect;
//! the others go back to the client. A valid request gets a code at once
//! when the browser has a live session (unless `prompt=login`, or
//! `max_age` has passed), `login_required` under `prompt=none`, or else the
//! login form. The form is bound to the request and the browser by its CSRF
//! token ([`super::seal`]); the password goes through OP's own login path
//! with its failure limits ([`crate::accounts::authenticate`]).

use std::sync::Arc;

use authrealm_tokens::oauth::{
    AuthorizeRejection, AuthorizeRequest, AuthorizeResponse, CodeRequest,
};
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value};

use super::seal::{self, BrowserSession, MAX_SIDS};
use super::{CSRF_COOKIE, Params, SESSION_COOKIE, error_page, failure_page, pages, refusal};
use crate::accounts;
use crate::auth::ClientIp;
use crate::db::User;
use crate::error::Error;
use crate::revocation::Status;
use crate::state::AppState;

/// Where the login form is posted.
pub const PATH_LOGIN: &str = "/oauth2/authorize/login";

/// The authorization request parameters, in the order the form carries them.
const REQUEST_PARAMS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
];

fn request_of(p: &Params) -> AuthorizeRequest {
    AuthorizeRequest {
        response_type: p.take("response_type"),
        client_id: p.take("client_id"),
        redirect_uri: p.take("redirect_uri"),
        scope: p.take("scope"),
        state: p.take("state"),
        nonce: p.take("nonce"),
        code_challenge: p.take("code_challenge"),
        code_challenge_method: p.take("code_challenge_method"),
    }
}

fn hidden_fields(r: &AuthorizeRequest) -> Vec<(&'static str, String)> {
    let values = [
        &r.response_type,
        &r.client_id,
        &r.redirect_uri,
        &r.scope,
        &r.state,
        &r.nonce,
        &r.code_challenge,
        &r.code_challenge_method,
    ];
    REQUEST_PARAMS
        .iter()
        .zip(values)
        .filter_map(|(name, v)| v.clone().map(|v| (*name, v)))
        .collect()
}

/// An error of OP's own about a request MA found valid (so it goes back to
/// the client).
fn client_error(req: &AuthorizeRequest, code: &str, description: &str, issuer: &str) -> Response {
    let rej = AuthorizeRejection {
        error: authrealm_tokens::api::ErrorDetail {
            code: code.to_owned(),
            message: description.to_owned(),
        },
        redirectable: true,
    };
    refusal(
        &rej,
        req.redirect_uri.as_deref(),
        req.state.as_deref(),
        issuer,
    )
}

/// MA's validation of `req`: the answer, or the response to send instead.
async fn validate(state: &AppState, req: &AuthorizeRequest) -> Result<AuthorizeResponse, Response> {
    match state.ma.check_authorize(req).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(rej)) => Err(refusal(
            &rej,
            req.redirect_uri.as_deref(),
            req.state.as_deref(),
            &state.issuer,
        )),
        Err(e) => Err(failure_page(&e)),
    }
}

/// The browser's session, if its cookie checks and none of its sessions is
/// revoked (a view that may be stale counts as revoked: log in again).
#[must_use]
pub fn live_session(state: &AppState, headers: &HeaderMap) -> Option<BrowserSession> {
    let value = super::cookie(headers, SESSION_COOKIE)?;
    let s = state.oidc.keys.open_session(value, state.clock.now())?;
    match state
        .revocations
        .check_browser_session(&s.sub, &s.sids, s.auth_time)
    {
        Status::Valid => Some(s),
        Status::Revoked | Status::Unknown => None,
    }
}

/// The user claims OP hands MA for ID tokens (and answers at UserInfo).
#[must_use]
pub fn user_claims(user: &User) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("email".into(), Value::String(user.email.clone()));
    // OP does not verify addresses (no mail is sent): say so.
    claims.insert("email_verified".into(), Value::Bool(false));
    if let Some(name) = &user.display_name {
        claims.insert("name".into(), Value::String(name.clone()));
    }
    claims
}

/// Has MA issue a code for `user` and sends the browser back to the client
/// with it, the browser session (new, or `session` with this code's MA
/// session added) in the cookie.
async fn issue(
    state: &AppState,
    req: AuthorizeRequest,
    user: &User,
    session: Option<BrowserSession>,
    auth_time: i64,
) -> Response {
    let redirect_uri = req.redirect_uri.clone().unwrap_or_default();
    let client_state = req.state.clone();
    let code_req = CodeRequest {
        request: req,
        sub: user.id.clone(),
        auth_time,
        claims: user_claims(user),
    };
    let code = match state.ma.issue_code(&code_req).await {
        Ok(Ok(c)) => c,
        Ok(Err(rej)) => {
            return refusal(
                &rej,
                Some(&redirect_uri),
                client_state.as_deref(),
                &state.issuer,
            );
        }
        Err(e) => return failure_page(&e),
    };
    let now = state.clock.now();
    let session = match session {
        Some(mut s) if s.sub == user.id && s.sids.len() < MAX_SIDS => {
            s.sids.push(code.sid.clone());
            s.auth_time = s.auth_time.max(auth_time);
            s
        }
        _ => BrowserSession {
            sub: user.id.clone(),
            sids: vec![code.sid.clone()],
            auth_time,
            exp: now.saturating_add(state.oidc.session_ttl),
        },
    };
    let mut params = vec![("code", code.code.as_str())];
    if let Some(s) = client_state.as_deref() {
        params.push(("state", s));
    }
    params.push(("iss", state.issuer.as_str()));
    let mut resp = super::redirect(&redirect_uri, &params);
    if let Some(v) = super::set_cookie(
        &state.oidc,
        SESSION_COOKIE,
        &state.oidc.keys.seal_session(&session),
        session.exp.saturating_sub(now),
        "Lax",
    ) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The login page for `req` (status `status`, `error` shown), with the
/// browser's CSRF nonce cookie (kept when it has a good one).
fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthorizeRequest,
    client_name: &str,
    email: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let existing = super::cookie(headers, CSRF_COOKIE).filter(|n| seal::is_nonce(n));
    let nonce = match existing {
        Some(n) => n.to_owned(),
        None => match seal::new_nonce() {
            Ok(n) => n,
            Err(e) => return failure_page(&e),
        },
    };
    let token = state.oidc.keys.csrf_token(&nonce, state.clock.now(), req);
    let hidden = hidden_fields(req);
    let page = pages::login(&pages::LoginView {
        client_name,
        email,
        error,
        hidden: &hidden,
        csrf_token: &token,
    });
    let mut resp = pages::html(status, page);
    if existing.is_none()
        && let Some(v) = super::set_cookie(
            &state.oidc,
            CSRF_COOKIE,
            &nonce,
            seal::FORM_TTL_SECS,
            "Strict",
        )
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /oauth2/authorize`.
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => begin(&state, &headers, &p).await,
        Err(why) => super::bad_params(&why),
    }
}

/// `POST /oauth2/authorize` (OpenID Connect Core §3.1.2.1: the same
/// parameters as a form).
pub async fn authorize_post(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let headers = req.headers().clone();
    match super::read_form(&state, req).await {
        Ok(p) => begin(&state, &headers, &p).await,
        Err(resp) => resp,
    }
}

async fn begin(state: &AppState, headers: &HeaderMap, p: &Params) -> Response {
    let req = request_of(p);
    let valid = match validate(state, &req).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let prompt: Vec<&str> = p.get("prompt").unwrap_or("").split(' ').collect();
    let prompt_none = prompt.contains(&"none");
    let prompt_login = prompt.contains(&"login");
    if prompt_none && prompt.len() > 1 {
        return client_error(
            &req,
            "invalid_request",
            "`prompt=none` cannot be combined with other values",
            &state.issuer,
        );
    }
    let max_age = match p.get("max_age").map(str::parse::<i64>) {
        None => None,
        Some(Ok(m)) if m >= 0 => Some(m),
        Some(_) => {
            return client_error(
                &req,
                "invalid_request",
                "`max_age` must be a whole number of seconds",
                &state.issuer,
            );
        }
    };
    let now = state.clock.now();
    let session = live_session(state, headers);
    let usable = session.as_ref().filter(|s| {
        !prompt_login
            && s.sids.len() < MAX_SIDS
            && max_age.is_none_or(|m| now.saturating_sub(s.auth_time) <= m)
    });
    if let Some(s) = usable {
        if let Err(e) = state.require_db() {
            return failure_page(&e);
        }
        match state.db.user_by_id(&s.sub).await {
            Ok(Some(user)) if user.disabled_at.is_none() => {
                let auth_time = s.auth_time;
                return issue(state, req, &user, Some(s.clone()), auth_time).await;
            }
            Ok(_) => {}
            Err(e) => return failure_page(&e.into()),
        }
    }
    if prompt_none {
        return client_error(
            &req,
            "login_required",
            "the user is not signed in",
            &state.issuer,
        );
    }
    login_page(
        state,
        headers,
        &req,
        &valid.client_name,
        "",
        StatusCode::OK,
        None,
    )
}

/// What the login page says about a failed attempt, and its status.
fn attempt_error(e: &Error) -> Option<(StatusCode, &'static str)> {
    Some(match e {
        Error::InvalidCredentials => (StatusCode::UNAUTHORIZED, "Wrong email or password."),
        Error::TooManyAttempts { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-in attempts. Please wait a while and try again.",
        ),
        Error::AccountDisabled => (StatusCode::FORBIDDEN, "This account is disabled."),
        Error::PasswordTooLong | Error::InvalidEmail(_) => {
            (StatusCode::BAD_REQUEST, "Wrong email or password.")
        }
        Error::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is busy. Please try again in a moment.",
        ),
        _ => return None,
    })
}

/// `POST /oauth2/authorize/login`: the login form.
pub async fn login(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let p = match super::read_form(&state, req).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let areq = request_of(&p);
    let now = state.clock.now();
    let nonce = super::cookie(&headers, CSRF_COOKIE).filter(|n| seal::is_nonce(n));
    let csrf_ok = match (nonce, p.get("csrf_token")) {
        (Some(n), Some(t)) => state.oidc.keys.csrf_ok(t, n, now, &areq),
        _ => false,
    };
    if !csrf_ok {
        return error_page(
            StatusCode::FORBIDDEN,
            "This sign-in form cannot be used",
            "The form has expired or was not sent from this site. Go back to the application and start again.",
            "csrf_token_invalid",
        );
    }
    let valid = match validate(&state, &areq).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let email = p.get("email").unwrap_or("");
    let password = p.get("password").unwrap_or("");
    if email.is_empty() || password.is_empty() {
        return login_page(
            &state,
            &headers,
            &areq,
            &valid.client_name,
            email,
            StatusCode::BAD_REQUEST,
            Some("Enter your email and password."),
        );
    }
    let user = match accounts::authenticate(&state, ip, email, password).await {
        Ok(user) => user,
        Err(e) => {
            let Some((status, message)) = attempt_error(&e) else {
                return failure_page(&e);
            };
            let mut resp = login_page(
                &state,
                &headers,
                &areq,
                &valid.client_name,
                email,
                status,
                Some(message),
            );
            if let Error::TooManyAttempts { retry_after } = e
                && let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string())
            {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return resp;
        }
    };
    let count = |r: &str| state.metrics.logins.with_label_values(&[r]).inc();
    let session = live_session(&state, &headers);
    let resp = issue(&state, areq, &user, session, now).await;
    count(if resp.status() == StatusCode::FOUND {
        "ok"
    } else {
        "unavailable"
    });
    resp
}
