//! The token endpoint against both stores (instantiated by `suite.rs`):
//! the code flow end to end, one-time codes under concurrency, reuse
//! revoking the session, refresh bound to its client, and every bad
//! exchange refused without changing anything.

use std::sync::Arc;

use authrealm_tokens::oauth::{self, PATH_TOKEN};
use authrealm_tokens::oidc::IdTokenClaims;
use authrealm_tokens::{Verifier, VerifierConfig};
use serde_json::json;

use crate::helpers::{Backend, TestResult, assert_error, err};
use crate::oauth_support::{
    Auth, OTHER_SECRET, Params, SPA_REDIRECT, VERIFIER, WEB_REDIRECT, WEB_SECRET, WORKER_SECRET,
    jwt_parts, spawn_oauth,
};

const WEB: Auth<'static> = Auth::Basic("default.web", WEB_SECRET);

pub async fn the_code_flow_issues_rfc9068_access_and_id_tokens(b: Backend) -> TestResult {
    let app = spawn_oauth(b).await?;
    let code = app
        .code_for("default.web", WEB_REDIRECT, "openid email notes.read")
        .await?;
    let answer = app
        .exchange(WEB, &code.code, WEB_REDIRECT, VERIFIER)
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("pragma"), Some("no-cache"));
    assert_eq!(answer.body["token_type"], json!("Bearer"));
    assert_eq!(answer.body["expires_in"], json!(300));
    assert_eq!(answer.body["scope"], json!("openid email notes.read"));
    // The access token: RFC 9068.
    let access = answer.str("access_token")?;
    let (header, claims) = jwt_parts(&access)?;
    assert_eq!(header["typ"], json!("at+jwt"));
    assert_eq!(claims["client_id"], json!("default.web"));
    assert_eq!(claims["scope"], json!("openid email notes.read"));
    assert_eq!(claims["sub"], json!("user-42"));
    assert_eq!(claims["sid"], json!(code.sid));
    assert_eq!(claims["aud"], json!("authrealm"));
    // OP's verifier accepts it (realm audience), and it is active.
    let now = app.clock.now();
    app.verifier().await?.verify(&access, now)?;
    assert!(app.active(&access).await?);
    // The ID token: RS256 (the ID-token key), for the client, with the
    // nonce, the session and the claims the scopes release.
    let id_token = answer.str("id_token")?;
    let (id_header, _) = jwt_parts(&id_token)?;
    assert_eq!(id_header["alg"], json!("RS256"));
    let verifier = app.verifier().await?;
    let id: IdTokenClaims = verifier.decode(&id_token)?;
    assert_eq!(id.iss, app.base);
    assert_eq!(
        (id.aud.as_str(), id.azp.as_str()),
        ("default.web", "default.web")
    );
    assert_eq!(id.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    assert_eq!(id.sid, code.sid);
    assert_eq!(id.auth_time, now - 5);
    assert_eq!(id.extra["email"], json!("ada@example.test"));
    assert!(id.extra.get("name").is_none(), "profile was not granted");
    // OP's id_token_hint check: accepted long after expiry, and only for ID tokens.
    app.clock.advance(3600);
    let hint = verifier.id_token_hint(&id_token)?;
    assert_eq!(
        (hint.sub.as_str(), hint.aud.as_str()),
        ("user-42", "default.web")
    );
    assert_eq!(hint.sid.as_deref(), Some(code.sid.as_str()));
    assert!(verifier.id_token_hint(&access).is_err());
    let (foreign, _) = Verifier::new(
        &app.jwks().await?,
        VerifierConfig {
            issuer: "https://elsewhere.example".into(),
            audience: "authrealm".into(),
            leeway_secs: 0,
        },
    );
    assert!(foreign.id_token_hint(&id_token).is_err());
    // The refresh token rotates for its client and keeps the session.
    let refresh = answer.str("refresh_token")?;
    let next = app
        .form(
            PATH_TOKEN,
            WEB,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await?;
    assert_eq!(next.status, 200, "{}", next.body);
    let (next_header, next_claims) = jwt_parts(&next.str("access_token")?)?;
    assert_eq!(next_header["typ"], json!("at+jwt"));
    assert_eq!(next_claims["sid"], json!(code.sid));
    assert_eq!(next.body["scope"], json!("openid email notes.read"));
    assert!(next.body.get("id_token").is_none());
    // Narrowing the scope on refresh (RFC 6749 §6).
    let narrow = app
        .form(
            PATH_TOKEN,
            WEB,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &next.str("refresh_token")?),
                ("scope", "notes.read"),
            ],
        )
        .await?;
    assert_eq!(narrow.status, 200, "{}", narrow.body);
    assert_eq!(narrow.body["scope"], json!("notes.read"));
    Ok(())
}

pub async fn twenty_concurrent_exchanges_of_one_code_yield_one_grant_then_revoke_it(
    b: Backend,
) -> TestResult {
    let app = Arc::new(spawn_oauth(b).await?);
    let code = app.code_for("default.web", WEB_REDIRECT, "openid").await?;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let app = app.clone();
        let c = code.code.clone();
        tasks.push(tokio::spawn(async move {
            app.exchange(WEB, &c, WEB_REDIRECT, VERIFIER).await
        }));
    }
    let mut granted = Vec::new();
    for t in tasks {
        let a = t.await.map_err(|e| err(e.to_string()))??;
        if a.status == 200 {
            granted.push(a);
        } else {
            a.assert_oauth_error(400, "invalid_grant");
        }
    }
    assert_eq!(granted.len(), 1, "exactly one exchange may succeed");
    // Every other exchange was a reuse: the grant's session is revoked.
    let winner = &granted[0];
    assert!(!app.active(&winner.str("access_token")?).await?);
    let refresh = winner.str("refresh_token")?;
    app.form(
        PATH_TOKEN,
        WEB,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await?
    .assert_oauth_error(400, "invalid_grant");
    assert!(
        app.metric("authrealm_ma_oauth_code_reuse_detected_total")
            .await?
            >= 1.0
    );
    assert_eq!(
        app.metric("authrealm_ma_oauth_token_requests_total{grant_type=\"authorization_code\",outcome=\"ok\"}")
            .await?,
        1.0
    );
    Ok(())
}

pub async fn a_reused_code_revokes_the_session_it_created(b: Backend) -> TestResult {
    let app = spawn_oauth(b).await?;
    let (mut follower, _) = app.follow().await?;
    let code = app.code_for("default.spa", SPA_REDIRECT, "openid").await?;
    let spa = Auth::Public("default.spa");
    let first = app
        .exchange(spa, &code.code, SPA_REDIRECT, VERIFIER)
        .await?;
    assert_eq!(first.status, 200, "{}", first.body);
    let access = first.str("access_token")?;
    assert!(app.active(&access).await?);
    app.clock.advance(30);
    app.exchange(spa, &code.code, SPA_REDIRECT, VERIFIER)
        .await?
        .assert_oauth_error(400, "invalid_grant");
    assert!(!app.active(&access).await?);
    // Every verifier learns it at once.
    let revoked = follower.next().await?;
    assert_eq!(revoked.1, code.sid);
    // After the code's life it is simply unknown.
    app.clock.advance(oauth::CODE_TTL_SECS);
    app.exchange(spa, &code.code, SPA_REDIRECT, VERIFIER)
        .await?
        .assert_oauth_error(400, "invalid_grant");
    Ok(())
}

pub async fn bad_code_exchanges_are_refused_and_change_nothing(b: Backend) -> TestResult {
    let app = spawn_oauth(b).await?;
    let code = app.code_for("default.web", WEB_REDIRECT, "openid").await?;
    let c = code.code.as_str();
    let wrong_verifier = "x".repeat(43);
    let unknown_code = "A".repeat(43);
    let other = Auth::Basic("default.other", OTHER_SECRET);
    let cases: Vec<(Auth<'_>, Params<'_>, u16, &str)> = vec![
        // Wrong PKCE verifier, missing verifier, malformed verifier.
        (
            WEB,
            vec![
                ("code", c),
                ("redirect_uri", WEB_REDIRECT),
                ("code_verifier", &wrong_verifier),
            ],
            400,
            "invalid_grant",
        ),
        (
            WEB,
            vec![("code", c), ("redirect_uri", WEB_REDIRECT)],
            400,
            "invalid_grant",
        ),
        (
            WEB,
            vec![
                ("code", c),
                ("redirect_uri", WEB_REDIRECT),
                ("code_verifier", "short"),
            ],
            400,
            "invalid_grant",
        ),
        // Another redirect URI than the authorization request's.
        (
            WEB,
            vec![
                ("code", c),
                ("redirect_uri", "https://app.example.test/other"),
                ("code_verifier", VERIFIER),
            ],
            400,
            "invalid_grant",
        ),
        (
            WEB,
            vec![("code", c), ("code_verifier", VERIFIER)],
            400,
            "invalid_request",
        ),
        // The code presented by another client.
        (
            other,
            vec![
                ("code", c),
                ("redirect_uri", WEB_REDIRECT),
                ("code_verifier", VERIFIER),
            ],
            400,
            "invalid_grant",
        ),
        // Unknown and malformed codes, and no code.
        (
            WEB,
            vec![
                ("code", &unknown_code),
                ("redirect_uri", WEB_REDIRECT),
                ("code_verifier", VERIFIER),
            ],
            400,
            "invalid_grant",
        ),
        (
            WEB,
            vec![
                ("code", "not-a-code"),
                ("redirect_uri", WEB_REDIRECT),
                ("code_verifier", VERIFIER),
            ],
            400,
            "invalid_grant",
        ),
        (
            WEB,
            vec![("redirect_uri", WEB_REDIRECT), ("code_verifier", VERIFIER)],
            400,
            "invalid_request",
        ),
    ];
    for (auth, mut params, status, want) in cases {
        params.push(("grant_type", "authorization_code"));
        app.form(PATH_TOKEN, auth, &params)
            .await?
            .assert_oauth_error(status, want);
    }
    assert_eq!(
        app.metric("authrealm_ma_oauth_code_reuse_detected_total")
            .await?,
        0.0
    );
    // Nothing was spent: the right exchange still works, once.
    let ok = app.exchange(WEB, c, WEB_REDIRECT, VERIFIER).await?;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(app.active(&ok.str("access_token")?).await?);
    Ok(())
}

pub async fn refresh_tokens_are_bound_to_their_client(b: Backend) -> TestResult {
    let app = spawn_oauth(b).await?;
    let code = app.code_for("default.web", WEB_REDIRECT, "openid").await?;
    let first = app
        .exchange(WEB, &code.code, WEB_REDIRECT, VERIFIER)
        .await?;
    let refresh = first.str("refresh_token")?;
    let spa = Auth::Public("default.spa");
    // Another client, OP's internal API: refused, and nothing is spent.
    app.form(
        PATH_TOKEN,
        spa,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await?
    .assert_oauth_error(400, "invalid_grant");
    assert_error(
        &app.refresh(&refresh).await?,
        400,
        authrealm_tokens::api::codes::REFRESH_TOKEN_INVALID,
    );
    // An OP session's refresh token is no OAuth client's either.
    let op_pair = app.mint("op-user").await?;
    app.form(
        PATH_TOKEN,
        WEB,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &op_pair.refresh_token),
        ],
    )
    .await?
    .assert_oauth_error(400, "invalid_grant");
    app.refresh_ok(&op_pair.refresh_token).await?;
    // The owner rotates it; a replay after the grace window revokes the session.
    let refresh_params = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let second = app.form(PATH_TOKEN, WEB, &refresh_params).await?;
    assert_eq!(second.status, 200, "{}", second.body);
    app.clock.advance(11);
    app.form(PATH_TOKEN, WEB, &refresh_params)
        .await?
        .assert_oauth_error(400, "invalid_grant");
    assert!(!app.active(&second.str("access_token")?).await?);
    assert_eq!(
        app.metric("authrealm_ma_refresh_reuse_detected_total")
            .await?,
        1.0
    );
    Ok(())
}

pub async fn revocation_and_introspection_speak_rfc_7009_and_7662(b: Backend) -> TestResult {
    let app = spawn_oauth(b).await?;
    let worker = Auth::Basic("default.worker", WORKER_SECRET);
    let cc = app
        .form(
            PATH_TOKEN,
            worker,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "notes.read"),
            ],
        )
        .await?;
    assert_eq!(cc.status, 200, "{}", cc.body);
    let token = cc.str("access_token")?;
    let intro = app
        .form(oauth::PATH_INTROSPECT, worker, &[("token", &token)])
        .await?;
    assert_eq!(intro.status, 200);
    assert_eq!(intro.header("cache-control"), Some("no-store"));
    assert_eq!(intro.body["active"], json!(true));
    assert_eq!(intro.body["client_id"], json!("default.worker"));
    assert_eq!(intro.body["scope"], json!("notes.read"));
    // Another client may neither revoke it (200, nothing happens) nor introspect.
    let a = app
        .form(oauth::PATH_REVOKE, WEB, &[("token", &token)])
        .await?;
    assert_eq!(a.status, 200);
    assert!(app.active(&token).await?);
    app.form(oauth::PATH_INTROSPECT, WEB, &[("token", &token)])
        .await?
        .assert_oauth_error(400, "unauthorized_client");
    // Unknown, malformed and other issuers' tokens: 200 / inactive.
    for t in ["never-issued", "a.b.c", &"A".repeat(43)] {
        let r = app
            .form(
                oauth::PATH_REVOKE,
                worker,
                &[("token", t), ("token_type_hint", "access_token")],
            )
            .await?;
        assert_eq!(r.status, 200, "{t}");
        let i = app
            .form(oauth::PATH_INTROSPECT, worker, &[("token", t)])
            .await?;
        assert_eq!(i.body, json!({ "active": false }), "{t}");
    }
    // No token: a clear 400; no client authentication: invalid_client.
    app.form(oauth::PATH_REVOKE, worker, &[])
        .await?
        .assert_oauth_error(400, "invalid_request");
    app.form(oauth::PATH_REVOKE, Auth::Anonymous, &[("token", &token)])
        .await?
        .assert_oauth_error(400, "invalid_client");
    // The owner revokes it: inactive from then on.
    let r = app
        .form(oauth::PATH_REVOKE, worker, &[("token", &token)])
        .await?;
    assert_eq!(r.status, 200);
    assert!(!app.active(&token).await?);
    // A public client revokes its refresh token with its id alone: the session ends.
    let code = app.code_for("default.spa", SPA_REDIRECT, "openid").await?;
    let spa = Auth::Public("default.spa");
    let pair = app
        .exchange(spa, &code.code, SPA_REDIRECT, VERIFIER)
        .await?;
    let r = app
        .form(
            oauth::PATH_REVOKE,
            spa,
            &[
                ("token", &pair.str("refresh_token")?),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .await?;
    assert_eq!(r.status, 200);
    assert!(!app.active(&pair.str("access_token")?).await?);
    // OP's internal JSON endpoints keep working.
    let op = app.mint("op-user").await?;
    assert!(app.introspect_active(&op.access_token).await?);
    assert!(app.active(&op.access_token).await?);
    Ok(())
}
