//! Requests the OAuth endpoints refuse, and what OP's code-flow endpoints
//! check, against both stores (instantiated by `suite.rs`); the client
//! registry's reloading; discovery with and without the code flow.

use std::time::Duration;

use auth_service::Clock;
use authrealm_tokens::clients::SecretHash;
use authrealm_tokens::oauth::{self, PATH_TOKEN};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestResult, err, spawn_with, test_config};
use crate::oauth_support::{
    Auth, CHALLENGE, OP_URL, Params, WEB_REDIRECT, WEB_SECRET, WORKER_SECRET, authorize_request,
    clients, jwt_parts, spawn_oauth, write_registry,
};

const CC: (&str, &str) = ("grant_type", "client_credentials");

pub async fn client_authentication_failures_look_alike(b: Backend) -> TestResult {
    let app = spawn_oauth(b).await?;
    let good = Auth::Basic("default.worker", WORKER_SECRET);
    let ok = app.form(PATH_TOKEN, good, &[CC]).await?;
    assert_eq!(ok.status, 200, "{}", ok.body);
    // Basic: 401 with WWW-Authenticate, the same words for an unknown client
    // and a wrong secret.
    let mut descriptions = Vec::new();
    for auth in [
        Auth::Basic("default.nobody", WORKER_SECRET),
        Auth::Basic("default.worker", "wrong-secret"),
        Auth::Basic("default.worker", ""),
    ] {
        let a = app.form(PATH_TOKEN, auth, &[CC]).await?;
        a.assert_oauth_error(401, "invalid_client");
        assert!(
            a.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Basic"))
        );
        descriptions.push(a.body["error_description"].clone());
    }
    assert!(
        descriptions.windows(2).all(|w| w[0] == w[1]),
        "{descriptions:?}"
    );
    // In the body: 400, the same code.
    for auth in [
        Auth::Post("default.nobody", WORKER_SECRET),
        Auth::Post("default.worker", "wrong-secret"),
        Auth::Public("default.worker"),
        Auth::Anonymous,
        // A public client presenting a secret.
        Auth::Post("default.spa", "a-secret-it-does-not-have"),
        Auth::Basic("default.spa", "a-secret-it-does-not-have"),
    ] {
        let a = app
            .form(
                PATH_TOKEN,
                auth,
                &[("grant_type", "refresh_token"), ("refresh_token", "x")],
            )
            .await?;
        let status = if matches!(auth, Auth::Basic(..)) {
            401
        } else {
            400
        };
        a.assert_oauth_error(status, "invalid_client");
    }
    // Two methods at once.
    let both = app
        .form(PATH_TOKEN, good, &[CC, ("client_secret", WORKER_SECRET)])
        .await?;
    both.assert_oauth_error(400, "invalid_request");
    // A secret past its notAfter (the old one of a rotation) stops working.
    let mut rotated = clients();
    if let Some(w) = rotated.iter_mut().find(|c| c.client_id == "default.worker") {
        w.secret_hashes = vec![
            SecretHash {
                sha256: authrealm_tokens::clients::hash_secret(WORKER_SECRET),
                not_after: Some(app.clock.now() + 60),
            },
            SecretHash {
                sha256: authrealm_tokens::clients::hash_secret(
                    "the-new-worker-secret-0123456789abcdef",
                ),
                not_after: None,
            },
        ];
    }
    write_registry(app.dir.path(), rotated)?;
    let new = Auth::Post("default.worker", "the-new-worker-secret-0123456789abcdef");
    wait_until(&app, || async {
        Ok(app.form(PATH_TOKEN, new, &[CC]).await?.status == 200)
    })
    .await?;
    assert_eq!(
        app.form(PATH_TOKEN, good, &[CC]).await?.status,
        200,
        "overlap window"
    );
    app.clock.advance(61);
    app.form(PATH_TOKEN, good, &[CC])
        .await?
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(app.form(PATH_TOKEN, new, &[CC]).await?.status, 200);
    assert!(
        app.metric("authrealm_ma_oauth_token_requests_total{grant_type=\"client_credentials\",outcome=\"invalid_client\"}")
            .await?
            >= 3.0
    );
    Ok(())
}

pub async fn grants_and_scopes_a_client_may_not_use_are_refused(b: Backend) -> TestResult {
    let app = spawn_oauth(b).await?;
    let web = Auth::Basic("default.web", WEB_SECRET);
    let worker = Auth::Basic("default.worker", WORKER_SECRET);
    let spa = Auth::Public("default.spa");
    let cases: Vec<(Auth<'_>, Params<'_>, &str)> = vec![
        (web, vec![CC], "unauthorized_client"),
        (spa, vec![CC], "unauthorized_client"),
        (
            worker,
            vec![("grant_type", "authorization_code"), ("code", "x")],
            "unauthorized_client",
        ),
        (
            worker,
            vec![("grant_type", "refresh_token"), ("refresh_token", "x")],
            "unauthorized_client",
        ),
        (
            worker,
            vec![CC, ("scope", "notes.read admin")],
            "invalid_scope",
        ),
        (
            worker,
            vec![CC, ("scope", "notes.read  notes.write")],
            "invalid_scope",
        ),
        (
            worker,
            vec![("grant_type", "password"), ("username", "a")],
            "unsupported_grant_type",
        ),
        (
            worker,
            vec![("grant_type", "implicit")],
            "unsupported_grant_type",
        ),
        (worker, vec![], "invalid_request"),
        (worker, vec![CC, CC], "invalid_request"),
    ];
    for (auth, params, want) in cases {
        app.form(PATH_TOKEN, auth, &params)
            .await?
            .assert_oauth_error(400, want);
    }
    // A JSON body is not a form.
    let resp = app
        .client
        .post(format!("{}{PATH_TOKEN}", app.base))
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"client_credentials"}"#)
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await?;
    assert_eq!(body["error"], json!("invalid_request"));
    // client_credentials: a token for the client, within its own bounds.
    let ok = app
        .form(PATH_TOKEN, worker, &[CC, ("scope", "notes.write")])
        .await?;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["expires_in"], json!(60));
    assert!(ok.body.get("refresh_token").is_none() && ok.body.get("id_token").is_none());
    let (header, claims) = jwt_parts(&ok.str("access_token")?)?;
    assert_eq!(header["typ"], json!("at+jwt"));
    assert_eq!(claims["sub"], json!("default.worker"));
    assert_eq!(claims["client_id"], json!("default.worker"));
    assert_eq!(claims["aud"], json!("https://api.example.test"));
    assert_eq!(claims["scope"], json!("notes.write"));
    assert_eq!(
        claims["exp"]
            .as_i64()
            .zip(claims["iat"].as_i64())
            .map(|(e, i)| e - i),
        Some(60)
    );
    Ok(())
}

pub async fn authorization_requests_are_validated_for_op(b: Backend) -> TestResult {
    let app = spawn_oauth(b).await?;
    let base = authorize_request("default.web", WEB_REDIRECT, "openid email");
    let (status, body) = app
        .post(
            oauth::PATH_INTERNAL_AUTHORIZE,
            &serde_json::to_value(&base)?,
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "client_id": "default.web", "client_name": "The Web App",
                "redirect_uri": WEB_REDIRECT, "scope": "openid email" })
    );
    type Change = fn(&mut authrealm_tokens::oauth::AuthorizeRequest);
    let cases: Vec<(Change, &str, bool)> = vec![
        (|r| r.client_id = None, "invalid_request", false),
        (
            |r| r.client_id = Some("default.nobody".into()),
            "invalid_client",
            false,
        ),
        (|r| r.redirect_uri = None, "invalid_request", false),
        (
            |r| r.redirect_uri = Some("https://evil.example/cb".into()),
            "invalid_request",
            false,
        ),
        (
            |r| r.redirect_uri = Some(format!("{WEB_REDIRECT}/")),
            "invalid_request",
            false,
        ),
        (|r| r.state = None, "invalid_request", true),
        (|r| r.response_type = None, "invalid_request", true),
        (
            |r| r.response_type = Some("token".into()),
            "unsupported_response_type",
            true,
        ),
        (
            |r| r.scope = Some("openid admin".into()),
            "invalid_scope",
            true,
        ),
        (|r| r.code_challenge = None, "invalid_request", true),
        (|r| r.code_challenge_method = None, "invalid_request", true),
        (
            |r| r.code_challenge_method = Some("plain".into()),
            "invalid_request",
            true,
        ),
        (
            |r| r.code_challenge = Some("too-short".into()),
            "invalid_request",
            true,
        ),
        (|r| r.state = Some("a\nb".into()), "invalid_request", true),
    ];
    for (change, code, redirectable) in cases {
        let mut req = base.clone();
        change(&mut req);
        for path in [oauth::PATH_INTERNAL_AUTHORIZE, oauth::PATH_INTERNAL_CODES] {
            let body = match path {
                oauth::PATH_INTERNAL_CODES => {
                    json!({ "request": req, "sub": "u", "auth_time": app.clock.now() })
                }
                _ => serde_json::to_value(&req)?,
            };
            let (status, answer) = app.post(path, &body).await?;
            assert_eq!(status, 400, "{req:?} -> {answer}");
            assert_eq!(answer["error"]["code"], json!(code), "{req:?} -> {answer}");
            assert_eq!(
                answer["redirectable"],
                json!(redirectable),
                "{req:?} -> {answer}"
            );
        }
    }
    // A client without the code flow: refused (here already for its redirect URI).
    let worker = authorize_request("default.worker", WEB_REDIRECT, "");
    let (status, answer) = app
        .post(
            oauth::PATH_INTERNAL_AUTHORIZE,
            &serde_json::to_value(&worker)?,
        )
        .await?;
    assert_eq!(
        (status, answer["redirectable"].clone()),
        (400, json!(false))
    );
    // The user fields of a code request.
    for (sub, auth_time, claims) in [
        ("", app.clock.now(), json!({})),
        ("u", app.clock.now() + 3600, json!({})),
        ("u", app.clock.now(), json!({ "nonce": "mine" })),
    ] {
        let body = json!({ "request": base, "sub": sub, "auth_time": auth_time, "claims": claims });
        let (status, answer) = app.post(oauth::PATH_INTERNAL_CODES, &body).await?;
        assert_eq!(
            (status, answer["error"]["code"].clone()),
            (400, json!("bad_request")),
            "{answer}"
        );
    }
    assert_eq!(
        app.metric("authrealm_ma_oauth_codes_issued_total").await?,
        0.0
    );
    let code = app.code_for("default.web", WEB_REDIRECT, "openid").await?;
    assert_eq!(code.code.len(), 43);
    assert_eq!(
        app.metric("authrealm_ma_oauth_codes_issued_total").await?,
        1.0
    );
    assert_eq!(CHALLENGE.len(), 43);
    // Post-logout redirect URIs: registered ones only, exactly.
    for (client, uri, registered) in [
        ("default.web", "https://app.example.test/bye", true),
        ("default.web", "https://app.example.test/bye?x", false),
        ("default.spa", "https://app.example.test/bye", false),
        ("default.nobody", "https://app.example.test/bye", false),
    ] {
        let (status, answer) = app
            .post(
                oauth::PATH_INTERNAL_LOGOUT,
                &json!({ "client_id": client, "post_logout_redirect_uri": uri }),
            )
            .await?;
        assert_eq!(
            (status, answer),
            (200, json!({ "registered": registered })),
            "{client} {uri}"
        );
    }
    Ok(())
}

/// Polls `cond` until it holds (bounded: 10 s).
async fn wait_until<F, Fut>(app: &TestApp, cond: F) -> TestResult
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = TestResult<bool>>,
{
    let _ = app;
    for _ in 0..200 {
        if cond().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(err("the condition never held"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_client_stops_working_within_the_poll_interval() -> TestResult {
    let app = spawn_oauth(Backend::Memory).await?;
    let worker = Auth::Basic("default.worker", WORKER_SECRET);
    assert_eq!(app.form(PATH_TOKEN, worker, &[CC]).await?.status, 200);
    assert_eq!(app.metric("authrealm_ma_oauth_clients").await?, 4.0);
    // A broken registry is refused and counted; the clients stay.
    std::fs::write(
        app.dir.path().join("clients.json"),
        b"{\"version\":1,\"clients\":[{",
    )?;
    wait_until(&app, || async {
        Ok(app
            .metric("authrealm_ma_client_registry_reloads_total{result=\"failed\"}")
            .await?
            >= 1.0)
    })
    .await?;
    assert_eq!(app.form(PATH_TOKEN, worker, &[CC]).await?.status, 200);
    // The operator removes the client: it stops working.
    let without: Vec<_> = clients()
        .into_iter()
        .filter(|c| c.client_id != "default.worker")
        .collect();
    write_registry(app.dir.path(), without)?;
    wait_until(&app, || async {
        Ok(app.form(PATH_TOKEN, worker, &[CC]).await?.status == 401)
    })
    .await?;
    app.form(PATH_TOKEN, worker, &[CC])
        .await?
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(app.metric("authrealm_ma_oauth_clients").await?, 3.0);
    // The registry is deleted: no clients at all.
    std::fs::remove_file(app.dir.path().join("clients.json"))?;
    let web = Auth::Basic("default.web", WEB_SECRET);
    wait_until(&app, || async {
        Ok(app.metric("authrealm_ma_oauth_clients").await? == 0.0)
    })
    .await?;
    app.form(
        PATH_TOKEN,
        web,
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await?
    .assert_oauth_error(401, "invalid_client");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_advertises_what_exists() -> TestResult {
    let app = spawn_oauth(Backend::Memory).await?;
    let doc: Value = app
        .get("/.well-known/openid-configuration")
        .await?
        .json()
        .await?;
    let iss = app.base.as_str();
    assert_eq!(doc["issuer"], json!(iss));
    for (field, want) in [
        ("token_endpoint", format!("{iss}/oauth2/token")),
        ("revocation_endpoint", format!("{iss}/oauth2/revoke")),
        ("introspection_endpoint", format!("{iss}/oauth2/introspect")),
        (
            "authorization_endpoint",
            format!("{OP_URL}/oauth2/authorize"),
        ),
        ("userinfo_endpoint", format!("{OP_URL}/oauth2/userinfo")),
        ("end_session_endpoint", format!("{OP_URL}/oauth2/logout")),
    ] {
        assert_eq!(doc[field], json!(want), "{field}");
    }
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["EdDSA", "RS256"])
    );
    assert_eq!(doc["request_uri_parameter_supported"], json!(false));
    let scopes = doc["scopes_supported"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for s in ["openid", "email", "profile", "notes.read", "notes.write"] {
        assert!(scopes.contains(&json!(s)), "{s} missing from {scopes:?}");
    }
    // Without OP's URL there is no code flow, and discovery says so.
    let plain = spawn_with(test_config(Backend::Memory)?, Clock::System).await?;
    let doc: Value = plain
        .get("/.well-known/openid-configuration")
        .await?
        .json()
        .await?;
    for absent in [
        "authorization_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
        "response_types_supported",
    ] {
        assert!(
            doc.get(absent).is_none(),
            "{absent} advertised without the code flow"
        );
    }
    assert_eq!(doc["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(
        doc["token_endpoint"],
        json!(format!("{}/oauth2/token", plain.base))
    );
    Ok(())
}
