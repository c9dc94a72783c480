//! Property tests: random and hostile strings fed to every parser that faces
//! the network, through OP's real router (`oneshot`, Postgres and Redis, a
//! real MA behind it). Whatever the input, no answer is a 5xx (and a panic
//! would fail the test).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use tower::ServiceExt as _;

use crate::helpers::{Env, Mode, TestResult, op_config, start_ma};

/// Pieces attackers and unlucky users send.
const PIECES: &[&str] = &[
    "a",
    "Z",
    "0",
    "@",
    ".",
    "-",
    "_",
    "+",
    "example.com",
    "xn--",
    "xn--bcher-kva",
    "bücher",
    "ａ",
    "＠",
    "。",
    "é",
    "e\u{301}",
    "\u{0}",
    "\u{7}",
    "\u{1b}",
    "\u{7f}",
    "\u{85}",
    "\u{a0}",
    "\u{ad}",
    "\u{200b}",
    "\u{200d}",
    "\u{202e}",
    "\u{2028}",
    "\u{3164}",
    "\u{feff}",
    "\u{fe0f}",
    "\u{e000}",
    "\u{10ffff}",
    "\u{e0041}",
    "'",
    "\"",
    "\\",
    "`",
    "%00",
    "<script>",
    "' OR 1=1--",
    " ",
    "\t",
    "\n",
    "\r\n",
    "🦀",
    "ß",
    "İ",
    "ﬀ",
    "Ⅻ",
    "\u{fdd0}",
];

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => any::<String>(),
        // A plausible address with one piece slipped in somewhere.
        2 => (proptest::sample::select(PIECES), 0..18usize).prop_map(|(piece, at)| {
            let mut email = "alice.smith@example.com".to_owned();
            email.insert_str(at.min(email.len()), piece);
            email
        }),
        1 => proptest::collection::vec(proptest::sample::select(PIECES), 0..12)
            .prop_map(|v| v.concat()),
        1 => (
            proptest::collection::vec(proptest::sample::select(PIECES), 1..6),
            proptest::collection::vec(proptest::sample::select(PIECES), 1..6),
        )
            .prop_map(|(l, d)| format!("{}@{}.example", l.concat(), d.concat())),
    ]
}

/// A JWT-shaped string: random JSON header and payload, random signature.
fn jwt_like() -> impl Strategy<Value = String> {
    let json = prop_oneof![
        hostile().prop_map(|s| serde_json::json!({ "alg": s, "kid": s, "typ": "JWT" }).to_string()),
        hostile().prop_map(|s| serde_json::json!({ "alg": "EdDSA", "crit": [s] }).to_string()),
        hostile().prop_map(
            |s| serde_json::json!({ "sub": s, "exp": 1e300, "iat": -1, "jti": s }).to_string()
        ),
        hostile(),
    ];
    (
        json.clone(),
        json,
        proptest::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(h, p, sig)| {
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(h),
                URL_SAFE_NO_PAD.encode(p),
                URL_SAFE_NO_PAD.encode(sig)
            )
        })
}

/// One request of the properties.
#[derive(Debug, Clone)]
enum Probe {
    Register { email: String, password: String },
    Login { email: String, password: String },
    Refresh(String),
    RawBody { path: &'static str, body: Vec<u8> },
    Authorization(Vec<u8>),
    Bearer(String),
}

fn probe() -> impl Strategy<Value = Probe> {
    let path = proptest::sample::select(vec![
        "/api/v1/register",
        "/api/v1/login",
        "/api/v1/token/refresh",
        "/api/v1/logout",
        "/api/v1/notes",
    ]);
    prop_oneof![
        (hostile(), prop_oneof![Just("tangerine-oboe-42".to_owned()), hostile()])
            .prop_map(|(email, password)| Probe::Register { email, password }),
        (hostile(), hostile()).prop_map(|(email, password)| Probe::Login { email, password }),
        hostile().prop_map(Probe::Refresh),
        (path, prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            hostile().prop_map(String::into_bytes),
            hostile().prop_map(|s| serde_json::json!({ "email": s, "password": s, "refresh_token": s, "title": s, "display_name": s }).to_string().into_bytes()),
        ])
            .prop_map(|(path, body)| Probe::RawBody { path, body }),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(Probe::Authorization),
        jwt_like().prop_map(Probe::Bearer),
    ]
}

fn request(p: &Probe) -> Option<Request<Body>> {
    let json = |path: &str, v: serde_json::Value| {
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .ok()
    };
    match p {
        Probe::Register { email, password } => json(
            "/api/v1/register",
            serde_json::json!({ "email": email, "password": password, "display_name": email }),
        ),
        Probe::Login { email, password } => json(
            "/api/v1/login",
            serde_json::json!({ "email": email, "password": password }),
        ),
        Probe::Refresh(t) => json(
            "/api/v1/token/refresh",
            serde_json::json!({ "refresh_token": t }),
        ),
        Probe::RawBody { path, body } => Request::post(*path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.clone()))
            .ok(),
        // Bytes a client cannot even put in a header are not a request.
        Probe::Authorization(raw) => {
            let value = header::HeaderValue::from_bytes(raw).ok()?;
            Request::get("/api/v1/me")
                .header(header::AUTHORIZATION, value)
                .body(Body::empty())
                .ok()
        }
        Probe::Bearer(t) => Request::get("/api/v1/session")
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .body(Body::empty())
            .ok(),
    }
}

#[test]
fn hostile_input_never_gets_a_5xx() -> TestResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (router, _keep) =
        rt.block_on(async {
            let env = Env::new(Mode::PostgresRedis).await?;
            let ma = start_ma(&env).await?;
            let mut config = op_config(&env, &ma);
            // Every probe must reach the parsers and the database, not the lockout.
            config.login_max_failures = 1_000_000;
            let (state, background) = main_project::build(&config).await?;
            crate::helpers::eventually("OP is ready", Duration::from_secs(30), || {
                let state = state.clone();
                async move {
                    Ok(state.db.is_migrated()
                        && state.keys.is_loaded()
                        && state.revocations.is_known())
                }
            })
            .await?;
            TestResult::Ok((main_project::app(state), (env, ma, background)))
        })?;
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 192,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let outcome = runner.run(&probe(), |p| {
        let Some(req) = request(&p) else {
            return Ok(());
        };
        let resp = rt
            .block_on(router.clone().oneshot(req))
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let status = resp.status();
        prop_assert!(!status.is_server_error(), "{status} for {p:?}");
        Ok(())
    });
    outcome.map_err(|e| format!("{e}").into())
}
