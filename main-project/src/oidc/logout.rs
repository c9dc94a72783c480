//! `GET|POST /oauth2/logout` (OpenID Connect RP-Initiated Logout 1.0).
//!
//! `id_token_hint` is checked with MA's keys (signature and issuer; expiry
//! ignored); a bad one is a 400 page and nothing ends. The client is the
//! hint's `aud` or `client_id` (both given: they must agree). The browser
//! session ends: each MA session it holds is revoked at MA (so every
//! replica rejects their tokens and the cookie) and recorded in this
//! replica's view at once, and the cookie is cleared. Then the browser goes
//! to `post_logout_redirect_uri` with `state` when MA says the client
//! registered it, else it sees a "signed out" page.

use std::sync::Arc;

use authrealm_tokens::oauth::LogoutCheckRequest;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::{Params, SESSION_COOKIE, error_page, failure_page, pages};
use crate::error::Error;
use crate::state::AppState;

/// `GET /oauth2/logout`.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => end(&state, &headers, &p).await,
        Err(why) => super::bad_params(&why),
    }
}

/// `POST /oauth2/logout` (the same parameters as a form).
pub async fn logout_post(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let headers = req.headers().clone();
    match super::read_form(&state, req).await {
        Ok(p) => end(&state, &headers, &p).await,
        Err(resp) => resp,
    }
}

fn bad(message: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This sign-out request cannot be used",
        message,
        "invalid_request",
    )
}

async fn end(state: &AppState, headers: &HeaderMap, p: &Params) -> Response {
    let hint = match p.get("id_token_hint") {
        None => None,
        Some(token) => match state.keys.id_token_hint(token).await {
            Ok(h) => Some(h),
            Err(Error::KeysUnavailable) => return failure_page(&Error::KeysUnavailable),
            Err(_) => return bad("The id_token_hint is not an ID token this provider issued."),
        },
    };
    let client_id = match (hint.as_ref().map(|h| h.aud.as_str()), p.get("client_id")) {
        (Some(a), Some(c)) if a != c => {
            return bad("The client_id does not match the id_token_hint.");
        }
        (Some(a), _) => Some(a.to_owned()),
        (None, c) => c.map(str::to_owned),
    };
    let redirect = match (p.get("post_logout_redirect_uri"), client_id) {
        (Some(uri), Some(client_id)) => {
            let check = LogoutCheckRequest {
                client_id,
                post_logout_redirect_uri: uri.to_owned(),
            };
            match state.ma.check_logout(&check).await {
                Ok(true) => Some(uri.to_owned()),
                Ok(false) => None,
                Err(e) => return failure_page(&e),
            }
        }
        _ => None,
    };
    // End the browser session: every MA session it holds, at MA first (a
    // failure there changes nothing and can be retried), then here.
    let now = state.clock.now();
    let session =
        super::cookie(headers, SESSION_COOKIE).and_then(|v| state.oidc.keys.open_session(v, now));
    if let Some(s) = &session {
        for sid in &s.sids {
            if let Err(e) = state.ma.revoke_session(sid).await {
                return failure_page(&e);
            }
        }
        let life = s
            .exp
            .saturating_sub(now)
            .saturating_add(state.leeway_secs)
            .saturating_add(60);
        for sid in &s.sids {
            state.revocations.end_sid(sid, now, life);
        }
    }
    let mut resp = match redirect {
        Some(uri) => {
            let params: Vec<(&str, &str)> =
                p.get("state").map(|s| ("state", s)).into_iter().collect();
            super::redirect(&uri, &params)
        }
        None => pages::html(StatusCode::OK, pages::logged_out()),
    };
    if let Some(v) = super::set_cookie(&state.oidc, SESSION_COOKIE, "", 0, "Lax") {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
