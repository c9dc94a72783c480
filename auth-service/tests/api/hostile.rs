//! Random and hostile requests against the router itself
//! (`tower::ServiceExt::oneshot`, memory store): any body, content type,
//! credential, method and path. No request panics or answers 5xx; every
//! refusal is a JSON error with a code (RFC 6749 §5.2 `error` on the
//! public OAuth endpoints, which get form bodies, registered and made-up
//! clients, and Basic credentials of every shape). One service serves every case (its
//! state carries over, as it would in production): generating its keys
//! (RSA among them) for each case would be most of the run.

use std::sync::{Arc, OnceLock};

use auth_service::Clock;
use authrealm_tokens::api;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt as _;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use auth_service::clients::Registry;
use authrealm_tokens::clients::{ClientRegistryFile, FORMAT_VERSION};
use authrealm_tokens::oauth;
use base64::Engine as _;

use crate::helpers::{Backend, test_config};
use crate::oauth_support::{VERIFIER, WEB_REDIRECT, WEB_SECRET, WORKER_SECRET, clients};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,300}".prop_map(Value::String),
        "[A-Za-z0-9_-]{43}".prop_map(Value::String),
        // A refresh token's shape: a session id, a dot, the secret.
        "[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}".prop_map(Value::String),
        "[A-Za-z0-9_-]{1,20}\\.[A-Za-z0-9_-]{1,40}\\.[A-Za-z0-9_-]{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body near what an endpoint expects: its fields with any values, plus
/// stray fields; or any JSON; or any bytes.
fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    let fields = prop::sample::subsequence(
        vec![
            "sub",
            "claims",
            "refresh_token",
            "token",
            "token_type_hint",
            "sid",
            "iss",
        ],
        0..4,
    );
    prop_oneof![
        3 => (fields, prop::collection::vec(arb_json(), 4)).prop_map(|(names, values)| {
            let obj: serde_json::Map<String, Value> = names
                .into_iter()
                .zip(values)
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            Value::Object(obj).to_string().into_bytes()
        }),
        1 => arb_json().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..20_000),
    ]
}

/// A form body of OAuth parameters with plausible or hostile values, a
/// parameter sometimes twice.
fn arb_form() -> impl Strategy<Value = Vec<u8>> {
    let name = prop::sample::select(vec![
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
        "client_id",
        "client_secret",
        "refresh_token",
        "scope",
        "token",
        "token_type_hint",
    ]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "password",
            "default.web",
            "default.worker",
            "default.spa",
            WEB_SECRET,
            WORKER_SECRET,
            WEB_REDIRECT,
            VERIFIER,
            "openid email",
            "notes.read",
        ])
        .prop_map(str::to_owned),
        "[A-Za-z0-9_-]{43}",
        "[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}",
        "[A-Za-z0-9_-]{1,20}\\.[A-Za-z0-9_-]{1,40}\\.[A-Za-z0-9_-]{0,20}",
        ".{0,200}",
    ];
    prop::collection::vec((name, value), 0..8).prop_map(|pairs| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes()
    })
}

fn arb_path() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            oauth::PATH_TOKEN,
            oauth::PATH_REVOKE,
            oauth::PATH_INTROSPECT,
            oauth::PATH_INTERNAL_AUTHORIZE,
            oauth::PATH_INTERNAL_CODES,
            oauth::PATH_INTERNAL_LOGOUT,
        ])
        .prop_map(str::to_owned),
        4 => prop::sample::select(vec![
            api::PATH_MINT,
            api::PATH_REFRESH,
            api::PATH_REVOKE,
            api::PATH_INTROSPECT,
            api::PATH_REVOKE_SESSION,
            api::PATH_REVOKE_ALL,
            api::PATH_JWKS,
            api::PATH_DISCOVERY,
            "/healthz",
            "/metrics",
        ])
        .prop_map(str::to_owned),
        1 => "/[a-zA-Z0-9/%._~-]{0,40}",
    ]
}

type Shared = (Arc<auth_service::http::App>, String);

/// The one service every case talks to (built without a runtime: the
/// memory store and no key directory need none).
fn shared() -> Result<&'static Shared, TestCaseError> {
    static APP: OnceLock<Result<Shared, String>> = OnceLock::new();
    APP.get_or_init(|| {
        let config = test_config(Backend::Memory).map_err(|e| e.to_string())?;
        let credential = config
            .service_credential
            .as_ref()
            .map(|c| c.expose().to_owned())
            .unwrap_or_default();
        let (app, _watcher) = auth_service::build(&config, Clock::manual(1_800_000_000))
            .map_err(|e| e.to_string())?;
        let registry = ClientRegistryFile {
            version: FORMAT_VERSION,
            clients: clients(),
        };
        app.service
            .clients
            .replace(Registry::from_file(registry, None));
        Ok((app, credential))
    })
    .as_ref()
    .map_err(|e| TestCaseError::fail(e.clone()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn no_request_panics_or_answers_5xx(
        path in arb_path(),
        method in prop::sample::select(vec!["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH"]),
        body in prop_oneof![2 => arb_body(), 1 => arb_form()],
        content_type in prop::option::of(prop::sample::select(vec![
            "application/json", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8",
            "application/x-www-form-urlencoded; charset=UTF-8",
        ])),
        auth in prop::sample::select(vec![0u8, 0, 0, 1, 2, 3, 4, 5]),
        basic in prop_oneof![
            prop::sample::select(vec![
                format!("default.web:{WEB_SECRET}"),
                format!("default.worker:{WORKER_SECRET}"),
                "default.spa:".to_owned(),
                "default.nobody:x".to_owned(),
            ]),
            "[ -~]{0,60}",
        ],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        runtime.block_on(async {
            let (app, credential) = shared()?;
            let mut req = Request::builder().method(method).uri(&path);
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            req = match auth {
                0 => req.header("authorization", format!("Bearer {credential}")),
                1 => req.header("authorization", "Bearer wrong-credential-0123456789"),
                2 => req.header("authorization", format!("Bearer {credential}")).header("authorization", "Bearer x"),
                4 => req.header("authorization", format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(&basic)
                )),
                5 => req.header("authorization", format!("Basic {basic}")),
                _ => req,
            };
            let req = req.body(Body::from(body)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let resp = auth_service::http::router(app.clone()).oneshot(req).await
                .map_err(|e: std::convert::Infallible| TestCaseError::fail(format!("{e:?}")))?;
            let status = resp.status();
            prop_assert!(!status.is_server_error(), "{} {} answered {}", method, path, status);
            if status.is_client_error() {
                let bytes = resp.into_body().collect().await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?.to_bytes();
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| TestCaseError::fail(format!("{status}: non-JSON error {e}")))?;
                let oauth_form = [oauth::PATH_TOKEN, oauth::PATH_REVOKE, oauth::PATH_INTROSPECT]
                    .contains(&path.as_str());
                if oauth_form && method == "POST" {
                    prop_assert!(v["error"].is_string(), "{} {}: {}", method, path, v);
                    prop_assert!(v["error_description"].is_string(), "{}", v);
                } else {
                    prop_assert!(v["error"]["code"].is_string(), "{} {}: {}", method, path, v);
                }
            }
            Ok(())
        })?;
    }
}
