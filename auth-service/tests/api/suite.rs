//! The behaviour every store must show. Each test here runs twice, against
//! the memory store and against the real Redis (see `both_stores_in!` in helpers).

use std::collections::HashSet;

use authrealm_tokens::api::{self, TokenPair};
use serde_json::json;

use crate::helpers::{Backend, TestResult, assert_error, err, spawn};

pub async fn minted_tokens_carry_the_claims_and_verify(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let pair = app.mint("alice").await?;
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in, 300);
    // A refresh token names its session: `{sid}.{32 random bytes}`.
    let (sid, secret) = pair
        .refresh_token
        .split_once('.')
        .ok_or("a refresh token names its session")?;
    assert_eq!(sid, pair.session_id);
    assert_eq!(secret.len(), 43);
    let now = app.clock.now();
    let claims = app.verifier().await?.verify(&pair.access_token, now)?;
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.iss, app.base);
    assert_eq!(claims.aud, "authrealm");
    assert_eq!(claims.sid, pair.session_id);
    assert_eq!(claims.exp - claims.iat, 300);
    assert_eq!(claims.nbf, claims.iat);
    assert_eq!(claims.extra["email"], json!("alice@example.test"));
    let kid = authrealm_tokens::verify::peek_kid(&pair.access_token)?;
    let jwks = app.jwks().await?;
    assert!(kid.is_some_and(|k| jwks.keys.iter().any(|j| j.kid == k)));
    assert!(app.introspect_active(&pair.access_token).await?);
    assert_eq!(app.metric("authrealm_ma_tokens_minted_total").await?, 1.0);
    // Two mints never share an id.
    let other = app.mint("alice").await?;
    assert_ne!(other.session_id, pair.session_id);
    assert_ne!(other.refresh_token, pair.refresh_token);
    Ok(())
}

pub async fn refresh_rotates_and_a_repeat_in_grace_gets_the_same_pair(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let first = app.mint("bob").await?;
    let second = app.refresh_ok(&first.refresh_token).await?;
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(second.session_id, first.session_id);
    let claims = app
        .verifier()
        .await?
        .verify(&second.access_token, app.clock.now())?;
    assert_eq!(claims.extra["email"], json!("bob@example.test"));
    assert_eq!(claims.sid, first.session_id);
    // A retry a few seconds later, inside the grace window: the very same pair.
    app.clock.advance(5);
    let again = app.refresh_ok(&first.refresh_token).await?;
    assert_eq!(again.refresh_token, second.refresh_token);
    assert_eq!(again.access_token, second.access_token);
    // And the successor still rotates normally: the family was not revoked.
    let third = app.refresh_ok(&second.refresh_token).await?;
    assert_ne!(third.refresh_token, second.refresh_token);
    assert_eq!(
        app.metric("authrealm_ma_refreshes_total{result=\"repeat\"}")
            .await?,
        1.0
    );
    assert_eq!(
        app.metric("authrealm_ma_refreshes_total{result=\"rotated\"}")
            .await?,
        2.0
    );
    Ok(())
}

pub async fn twenty_concurrent_refreshes_yield_one_successor(b: Backend) -> TestResult {
    let app = std::sync::Arc::new(spawn(b).await?);
    let first = app.mint("carol").await?;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let app = app.clone();
        let token = first.refresh_token.clone();
        tasks.push(tokio::spawn(async move { app.refresh_ok(&token).await }));
    }
    let mut pairs: Vec<TokenPair> = Vec::new();
    for t in tasks {
        pairs.push(t.await.map_err(|e| err(e.to_string()))??);
    }
    let refresh: HashSet<&str> = pairs.iter().map(|p| p.refresh_token.as_str()).collect();
    let access: HashSet<&str> = pairs.iter().map(|p| p.access_token.as_str()).collect();
    assert_eq!(refresh.len(), 1, "more than one successor was issued");
    assert_eq!(access.len(), 1, "more than one access token was issued");
    assert_eq!(
        app.metric("authrealm_ma_refresh_reuse_detected_total")
            .await?,
        0.0
    );
    assert_eq!(
        app.metric("authrealm_ma_refreshes_total{result=\"rotated\"}")
            .await?,
        1.0
    );
    // The family is alive: the one successor rotates, its access token is active.
    assert!(app.introspect_active(&pairs[0].access_token).await?);
    app.refresh_ok(&pairs[0].refresh_token).await?;
    Ok(())
}

pub async fn replay_after_grace_revokes_the_whole_family(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let first = app.mint("dave").await?;
    let second = app.refresh_ok(&first.refresh_token).await?;
    let unrelated = app.mint("dave").await?;
    app.clock.advance(11);
    let replay = app.refresh(&first.refresh_token).await?;
    assert_error(&replay, 400, api::codes::REFRESH_TOKEN_REUSED);
    // Every token of the family is dead now.
    assert_error(
        &app.refresh(&second.refresh_token).await?,
        400,
        api::codes::REFRESH_TOKEN_INVALID,
    );
    assert!(!app.introspect_active(&second.access_token).await?);
    assert!(!app.introspect_active(&first.access_token).await?);
    // Replaying once more does not count a second reuse: the family is gone.
    assert_error(
        &app.refresh(&first.refresh_token).await?,
        400,
        api::codes::REFRESH_TOKEN_INVALID,
    );
    // Another session of the same user is untouched.
    assert!(app.introspect_active(&unrelated.access_token).await?);
    app.refresh_ok(&unrelated.refresh_token).await?;
    assert_eq!(
        app.metric("authrealm_ma_refresh_reuse_detected_total")
            .await?,
        1.0
    );
    assert_eq!(
        app.metric("authrealm_ma_revocations_total{kind=\"session\"}")
            .await?,
        1.0
    );
    Ok(())
}

pub async fn unknown_malformed_and_expired_refresh_tokens_are_refused(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let pair = app.mint("erin").await?;
    let unknown = authrealm_tokens::random_token(32)?;
    for bad in [
        unknown.as_str(),
        "",
        "short",
        "not base64 at all, not at all, not at all!!",
        &pair.access_token,
    ] {
        assert_error(
            &app.refresh(bad).await?,
            400,
            api::codes::REFRESH_TOKEN_INVALID,
        );
    }
    // Nothing changed: the real token still rotates once.
    let next = app.refresh_ok(&pair.refresh_token).await?;
    assert_eq!(
        app.metric("authrealm_ma_refreshes_total{result=\"invalid\"}")
            .await?,
        5.0
    );
    // Past its lifetime a refresh token is refused.
    app.clock.advance(30 * 86_400 + 1);
    assert_error(
        &app.refresh(&next.refresh_token).await?,
        400,
        api::codes::REFRESH_TOKEN_INVALID,
    );
    Ok(())
}

pub async fn revoking_an_access_token_rejects_it_and_nothing_else(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let pair = app.mint("frank").await?;
    let (status, _) = app
        .post(api::PATH_REVOKE, &json!({ "token": pair.access_token }))
        .await?;
    assert_eq!(status, 200);
    assert!(!app.introspect_active(&pair.access_token).await?);
    // The session lives on: refresh works and the new access token is active.
    let next = app.refresh_ok(&pair.refresh_token).await?;
    assert!(app.introspect_active(&next.access_token).await?);
    assert_eq!(
        app.metric("authrealm_ma_revocations_total{kind=\"jti\"}")
            .await?,
        1.0
    );
    Ok(())
}

pub async fn revoking_a_refresh_token_ends_its_session(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let pair = app.mint("gina").await?;
    let (status, _) = app
        .post(
            api::PATH_REVOKE,
            &json!({ "token": pair.refresh_token, "token_type_hint": "refresh_token" }),
        )
        .await?;
    assert_eq!(status, 200);
    assert_error(
        &app.refresh(&pair.refresh_token).await?,
        400,
        api::codes::REFRESH_TOKEN_INVALID,
    );
    assert!(!app.introspect_active(&pair.access_token).await?);
    // Revoking it again is fine (RFC 7009) and revokes nothing more.
    let (status, _) = app
        .post(api::PATH_REVOKE, &json!({ "token": pair.refresh_token }))
        .await?;
    assert_eq!(status, 200);
    assert_eq!(
        app.metric("authrealm_ma_revocations_total{kind=\"session\"}")
            .await?,
        1.0
    );
    Ok(())
}

pub async fn revoking_a_session_by_sid_ends_it_and_nothing_else(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let gone = app.mint("hana").await?;
    let kept = app.mint("hana").await?;
    let (status, _) = app
        .post(api::PATH_REVOKE_SESSION, &json!({ "sid": gone.session_id }))
        .await?;
    assert_eq!(status, 200);
    // Its access token and its refresh family are dead ...
    assert!(!app.introspect_active(&gone.access_token).await?);
    assert_error(
        &app.refresh(&gone.refresh_token).await?,
        400,
        api::codes::REFRESH_TOKEN_INVALID,
    );
    // ... the user's other session is not.
    assert!(app.introspect_active(&kept.access_token).await?);
    app.refresh_ok(&kept.refresh_token).await?;
    // An unknown sid is fine (idempotent); a malformed one is refused.
    let (status, _) = app
        .post(api::PATH_REVOKE_SESSION, &json!({ "sid": "never-issued" }))
        .await?;
    assert_eq!(status, 200);
    for bad in [
        json!({ "sid": "" }),
        json!({ "sid": "has space" }),
        json!({ "sid": "x".repeat(129) }),
        json!({}),
    ] {
        let got = app.post(api::PATH_REVOKE_SESSION, &bad).await?;
        assert_eq!(got.0, 400, "{bad} -> {got:?}");
    }
    assert!(app.introspect_active(&kept.access_token).await?);
    Ok(())
}

pub async fn unknown_tokens_revoke_fine_and_garbage_is_refused(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let pair = app.mint("hank").await?;
    // Well-formed but unknown: 200, nothing revoked.
    let foreign_jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    let unknown_refresh = authrealm_tokens::random_token(32)?;
    for token in [foreign_jwt, unknown_refresh.as_str()] {
        let (status, _) = app
            .post(api::PATH_REVOKE, &json!({ "token": token }))
            .await?;
        assert_eq!(status, 200);
        assert!(
            !app.post(api::PATH_INTROSPECT, &json!({ "token": token }))
                .await?
                .1["active"]
                .as_bool()
                .unwrap_or(true)
        );
    }
    // Garbage: a clear 400 from both endpoints.
    for garbage in ["", "definitely not a token", "a.b", "a..c"] {
        for path in [api::PATH_REVOKE, api::PATH_INTROSPECT] {
            assert_error(
                &app.post(path, &json!({ "token": garbage })).await?,
                400,
                api::codes::BAD_REQUEST,
            );
        }
    }
    // Nothing changed.
    for kind in ["jti", "session", "user"] {
        assert_eq!(
            app.metric(&format!(
                "authrealm_ma_revocations_total{{kind=\"{kind}\"}}"
            ))
            .await?,
            0.0
        );
    }
    assert!(app.introspect_active(&pair.access_token).await?);
    app.refresh_ok(&pair.refresh_token).await?;
    Ok(())
}

pub async fn revoke_all_ends_every_session_of_the_user_only(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let a1 = app.mint("ivy").await?;
    let a2 = app.mint("ivy").await?;
    let other = app.mint("jack").await?;
    let (status, body) = app
        .post(api::PATH_REVOKE_ALL, &json!({ "sub": "ivy" }))
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["not_before"], json!(app.clock.now()));
    for p in [&a1, &a2] {
        assert!(!app.introspect_active(&p.access_token).await?);
        assert_error(
            &app.refresh(&p.refresh_token).await?,
            400,
            api::codes::REFRESH_TOKEN_INVALID,
        );
    }
    assert!(app.introspect_active(&other.access_token).await?);
    app.refresh_ok(&other.refresh_token).await?;
    // A login after "log out everywhere" works.
    app.clock.advance(1);
    let fresh = app.mint("ivy").await?;
    assert!(app.introspect_active(&fresh.access_token).await?);
    app.refresh_ok(&fresh.refresh_token).await?;
    assert_eq!(
        app.metric("authrealm_ma_revocations_total{kind=\"user\"}")
            .await?,
        1.0
    );
    assert_eq!(
        app.metric("authrealm_ma_revocations_total{kind=\"session\"}")
            .await?,
        2.0
    );
    Ok(())
}

pub async fn introspection_reports_expiry(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let pair = app.mint("kate").await?;
    let (status, body) = app
        .post(api::PATH_INTROSPECT, &json!({ "token": pair.access_token }))
        .await?;
    assert_eq!(status, 200);
    assert_eq!(body["active"], json!(true));
    assert_eq!(body["sub"], json!("kate"));
    assert_eq!(body["sid"], json!(pair.session_id));
    app.clock.advance(301);
    let (_, body) = app
        .post(api::PATH_INTROSPECT, &json!({ "token": pair.access_token }))
        .await?;
    assert_eq!(body, json!({ "active": false }));
    // Refresh tokens are never active for introspection.
    assert!(!app.introspect_active(&pair.refresh_token).await?);
    Ok(())
}

pub async fn requests_without_the_credential_are_refused_and_change_nothing(
    b: Backend,
) -> TestResult {
    let app = spawn(b).await?;
    let pair = app.mint("liam").await?;
    let wrong = format!("Bearer {}x", app.credential);
    let basic = format!("Basic {}", app.credential);
    let bodies = [
        (api::PATH_MINT, json!({ "sub": "mallory" })),
        (
            api::PATH_REFRESH,
            json!({ "refresh_token": pair.refresh_token }),
        ),
        (api::PATH_REVOKE, json!({ "token": pair.access_token })),
        (api::PATH_INTROSPECT, json!({ "token": pair.access_token })),
        (api::PATH_REVOKE_ALL, json!({ "sub": "liam" })),
    ];
    for (path, body) in &bodies {
        for auth in [
            None,
            Some(wrong.as_str()),
            Some(basic.as_str()),
            Some("Bearer "),
        ] {
            let got = app.post_raw(path, serde_json::to_vec(body)?, auth).await?;
            assert_error(&got, 401, api::codes::UNAUTHORIZED);
        }
        // Two `Authorization` headers, the valid one first or second: which
        // one a proxy or another parser would read is anyone's guess.
        let good = format!("Bearer {}", app.credential);
        for pair_of in [[&good, &wrong], [&wrong, &good], [&good, &good]] {
            let resp = app
                .client
                .post(format!("{}{path}", app.base))
                .header("content-type", "application/json")
                .header("authorization", pair_of[0])
                .header("authorization", pair_of[1])
                .body(serde_json::to_vec(body)?)
                .send()
                .await?;
            let got = (resp.status().as_u16(), resp.json().await?);
            assert_error(&got, 401, api::codes::UNAUTHORIZED);
        }
    }
    assert_eq!(app.metric("authrealm_ma_tokens_minted_total").await?, 1.0);
    assert!(app.introspect_active(&pair.access_token).await?);
    app.refresh_ok(&pair.refresh_token).await?;
    Ok(())
}

pub async fn malformed_bodies_get_clear_errors_and_change_nothing(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let pair = app.mint("mona").await?;
    let bearer = format!("Bearer {}", app.credential);
    let auth = Some(bearer.as_str());
    let raw: [(&str, &[u8]); 6] = [
        (api::PATH_MINT, b"{\"sub\": \"x\""),
        (api::PATH_MINT, b"not json"),
        (api::PATH_MINT, b""),
        (api::PATH_REFRESH, b"[1,2,3]"),
        (api::PATH_REVOKE, b"{\"token\": 5}"),
        (api::PATH_REVOKE_ALL, b"{}"),
    ];
    for (path, body) in raw {
        let got = app.post_raw(path, body.to_vec(), auth).await?;
        assert_error(&got, 400, api::codes::BAD_REQUEST);
    }
    // Unknown fields are refused, not ignored.
    for (path, body) in [
        (api::PATH_MINT, json!({ "sub": "x", "admin": true })),
        (
            api::PATH_REFRESH,
            json!({ "refresh_token": pair.refresh_token, "extra": 1 }),
        ),
        (
            api::PATH_REVOKE_ALL,
            json!({ "sub": "mona", "force": true }),
        ),
    ] {
        let got = app.post(path, &body).await?;
        assert_error(&got, 400, api::codes::BAD_REQUEST);
        assert!(
            got.1["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("unknown field"))
        );
    }
    // Claims may not override what the service sets.
    for name in ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid"] {
        let got = app
            .post(
                api::PATH_MINT,
                &json!({ "sub": "x", "claims": { name: "evil" } }),
            )
            .await?;
        assert_error(&got, 400, api::codes::BAD_REQUEST);
        assert!(
            got.1["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(name))
        );
    }
    // Bad user ids.
    for sub in ["", "a\nb"] {
        let got = app.post(api::PATH_MINT, &json!({ "sub": sub })).await?;
        assert_error(&got, 400, api::codes::BAD_REQUEST);
    }
    let long = "x".repeat(257);
    assert_error(
        &app.post(api::PATH_REVOKE_ALL, &json!({ "sub": long }))
            .await?,
        400,
        api::codes::BAD_REQUEST,
    );
    // Oversized bodies: 413 with the JSON error.
    let huge = json!({ "sub": "x", "claims": { "blob": "y".repeat(20 * 1024) } });
    assert_error(
        &app.post(api::PATH_MINT, &huge).await?,
        413,
        api::codes::PAYLOAD_TOO_LARGE,
    );
    let huge_refresh = json!({ "refresh_token": "z".repeat(20 * 1024) });
    assert_error(
        &app.post(api::PATH_REFRESH, &huge_refresh).await?,
        413,
        api::codes::PAYLOAD_TOO_LARGE,
    );
    // Nothing changed.
    assert_eq!(app.metric("authrealm_ma_tokens_minted_total").await?, 1.0);
    assert_eq!(
        app.metric("authrealm_ma_revocations_total{kind=\"user\"}")
            .await?,
        0.0
    );
    assert!(app.introspect_active(&pair.access_token).await?);
    app.refresh_ok(&pair.refresh_token).await?;
    Ok(())
}

pub async fn public_endpoints_health_and_metrics(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let resp = app.get(api::PATH_JWKS).await?;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("public, max-age=300")
    );
    let jwks: authrealm_tokens::JwkSet = resp.json().await?;
    // The configured algorithm's key and the RS256 key for ID tokens.
    assert_eq!(jwks.keys.len(), 2);
    let disco: serde_json::Value = app.get(api::PATH_DISCOVERY).await?.json().await?;
    assert_eq!(disco["issuer"], json!(app.base));
    assert_eq!(
        disco["jwks_uri"],
        json!(format!("{}/.well-known/jwks.json", app.base))
    );
    assert_eq!(app.get("/healthz").await?.status().as_u16(), 200);
    assert_eq!(app.get("/readyz").await?.status().as_u16(), 200);
    let missing = app.get("/v2/nothing").await?;
    assert_eq!(missing.status().as_u16(), 404);
    app.mint("nina").await?;
    let text = app.get("/metrics").await?.text().await?;
    for name in [
        "authrealm_ma_tokens_minted_total",
        "authrealm_ma_refreshes_total",
        "authrealm_ma_refresh_reuse_detected_total",
        "authrealm_ma_revocations_total",
        "authrealm_ma_jwks_requests_total",
        "authrealm_ma_key_reloads_total",
        "authrealm_ma_active_key_age_seconds",
        "authrealm_ma_http_request_duration_seconds_bucket{route=\"/v1/tokens\",status=\"200\"",
    ] {
        assert!(text.contains(name), "metric {name} missing from:\n{text}");
    }
    assert_eq!(app.metric("authrealm_ma_jwks_requests_total").await?, 1.0);
    Ok(())
}

// Tests defined in `observers.rs`, instantiated here with the others.
pub use crate::observers::{
    a_late_follower_learns_every_revocation_in_force, every_revocation_reaches_a_follower_at_once,
    metric_labels_stay_bounded_under_made_up_methods_and_paths,
};

// OAuth tests (every `pub` test of these files), instantiated here too.
pub use crate::oauth::*;
pub use crate::oauth_requests::*;

crate::both_stores_in!(
    minted_tokens_carry_the_claims_and_verify,
    refresh_rotates_and_a_repeat_in_grace_gets_the_same_pair,
    twenty_concurrent_refreshes_yield_one_successor,
    replay_after_grace_revokes_the_whole_family,
    unknown_malformed_and_expired_refresh_tokens_are_refused,
    revoking_an_access_token_rejects_it_and_nothing_else,
    revoking_a_refresh_token_ends_its_session,
    revoking_a_session_by_sid_ends_it_and_nothing_else,
    unknown_tokens_revoke_fine_and_garbage_is_refused,
    revoke_all_ends_every_session_of_the_user_only,
    introspection_reports_expiry,
    requests_without_the_credential_are_refused_and_change_nothing,
    malformed_bodies_get_clear_errors_and_change_nothing,
    public_endpoints_health_and_metrics,
    every_revocation_reaches_a_follower_at_once,
    a_late_follower_learns_every_revocation_in_force,
    metric_labels_stay_bounded_under_made_up_methods_and_paths,
    the_code_flow_issues_rfc9068_access_and_id_tokens,
    twenty_concurrent_exchanges_of_one_code_yield_one_grant_then_revoke_it,
    a_reused_code_revokes_the_session_it_created,
    bad_code_exchanges_are_refused_and_change_nothing,
    refresh_tokens_are_bound_to_their_client,
    revocation_and_introspection_speak_rfc_7009_and_7662,
    client_authentication_failures_look_alike,
    grants_and_scopes_a_client_may_not_use_are_refused,
    authorization_requests_are_validated_for_op,
);
