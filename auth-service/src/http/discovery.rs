//! The OpenID discovery document (OpenID Connect Discovery 1.0 §3, RFC
//! 8414): every endpoint that exists and nothing that does not. MA's own
//! endpoints are under the issuer; OP's (authorization, UserInfo, logout)
//! under `AUTHREALM_OP_PUBLIC_URL`, and only when it is set — without it
//! there is no code flow, so no `response_types_supported` and no
//! `authorization_code` or `refresh_token` grant (refresh tokens come only
//! from the code flow). Algorithms are those of the active keys; scopes and
//! claims those the registered clients can be granted.

use std::sync::Arc;

use authrealm_tokens::{api, oauth, oidc};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::App;

/// Claims of the ID and access tokens MA signs.
const TOKEN_CLAIMS: [&str; 13] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "sid",
    "auth_time",
    "nonce",
    "azp",
    "client_id",
    "scope",
];

/// `GET /.well-known/openid-configuration`.
pub async fn document(State(app): State<Arc<App>>) -> Response {
    let settings = &app.service.settings;
    let issuer = settings.issuer.as_str();
    let registry = app.service.clients.snapshot();
    let code_flow = settings.op_public_url.as_deref();
    let mut scopes: Vec<String> = registry.scopes().to_vec();
    if code_flow.is_some() && !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".to_owned());
    }
    let mut claims: Vec<&str> = TOKEN_CLAIMS.to_vec();
    for (scope, names) in oidc::SCOPE_CLAIMS {
        if scopes.iter().any(|s| s == scope) {
            claims.extend_from_slice(names);
        }
    }
    let grants: &[&str] = match code_flow {
        Some(_) => &["authorization_code", "refresh_token", "client_credentials"],
        None => &["client_credentials"],
    };
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    let mut doc = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}{}", api::PATH_JWKS),
        "token_endpoint": format!("{issuer}{}", oauth::PATH_TOKEN),
        "revocation_endpoint": format!("{issuer}{}", oauth::PATH_REVOKE),
        "introspection_endpoint": format!("{issuer}{}", oauth::PATH_INTROSPECT),
        "grant_types_supported": grants,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": app.service.keys.snapshot().algorithms(),
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "claims_supported": claims,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    if let (Some(op), Value::Object(map)) = (code_flow, &mut doc) {
        let endpoints = [
            ("authorization_endpoint", oauth::PATH_AUTHORIZE),
            ("userinfo_endpoint", oauth::PATH_USERINFO),
            ("end_session_endpoint", oauth::PATH_END_SESSION),
        ];
        for (name, path) in endpoints {
            map.insert(name.to_owned(), Value::from(format!("{op}{path}")));
        }
        map.insert("response_types_supported".to_owned(), json!(["code"]));
        map.insert("response_modes_supported".to_owned(), json!(["query"]));
        map.insert(
            "authorization_response_iss_parameter_supported".to_owned(),
            Value::from(true),
        );
    }
    (
        [(header::CACHE_CONTROL, app.jwks_cache_control.clone())],
        Json(doc),
    )
        .into_response()
}
