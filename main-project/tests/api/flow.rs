//! The whole flow over real HTTP, once on Postgres + Redis and once on
//! SQLite + memory: register → login → me → notes → refresh → logout → the
//! old access token is rejected by a second OP instance → logout-all ends
//! every session.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    Api, Env, Mode, TestResult, eventually, op_config, s, stack, start_ma_on, start_op,
};

/// Generous: propagation is measured in the benchmarks, not asserted here.
const PROPAGATION_DEADLINE: Duration = Duration::from_secs(5);

async fn full_flow(mode: Mode) -> TestResult {
    let st = stack(mode).await?;
    // The second replica follows the same revocations as the first: the
    // Redis channel, or without Redis MA's revocation feed.
    let op2 = crate::helpers::start_op(op_config(&st.env, &st.ma)).await?;
    let api = &st.api;
    let api2 = Api::new(&op2.base);

    // register (email case-normalised) and a duplicate in another case
    let r = api
        .post(
            "/api/v1/register",
            &json!({ "email": "Alice@Example.com", "password": "tangerine-oboe-42", "display_name": "Alice" }),
            None,
        )
        .await?;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["email"], "alice@example.com");
    let alice_id = s(&r.body, "id")?;
    let dup = api
        .register("ALICE@example.COM", "another-password-77")
        .await?;
    assert_eq!((dup.status, dup.code()), (409, "email_taken"), "{dup:?}");

    // login: wrong password and unknown user look the same
    let wrong = api.login("alice@example.com", "tangerine-oboe-43").await?;
    let unknown = api.login("nobody@example.com", "tangerine-oboe-42").await?;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
    assert_eq!(
        (unknown.status, unknown.code()),
        (401, "invalid_credentials")
    );
    assert_eq!(wrong.body, unknown.body);
    let l = api.login("ALICE@example.com", "tangerine-oboe-42").await?;
    assert_eq!(l.status, 200, "{l:?}");
    assert_eq!(l.body["token_type"], "Bearer");
    assert_eq!(l.body["sub"], alice_id.as_str());
    let access = s(&l.body, "access_token")?;
    let refresh = s(&l.body, "refresh_token")?;

    // me on one replica, session on the other
    let me = api.get("/api/v1/me", Some(&access)).await?;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["email"], "alice@example.com");
    assert_eq!(me.body["display_name"], "Alice");
    let sess = api2.get("/api/v1/session", Some(&access)).await?;
    assert_eq!(sess.status, 200, "{sess:?}");
    assert_eq!(sess.body["sub"], alice_id.as_str());
    assert_eq!(sess.body["email"], "alice@example.com");

    // notes: create, list, read, update, delete; another user sees none of them
    let n = api
        .post(
            "/api/v1/notes",
            &json!({ "title": "first", "body": "hello\nworld" }),
            Some(&access),
        )
        .await?;
    assert_eq!(n.status, 201, "{n:?}");
    let note_id = s(&n.body, "id")?;
    let list = api2.get("/api/v1/notes", Some(&access)).await?;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["notes"].as_array().map(Vec::len), Some(1));
    let got = api
        .get(&format!("/api/v1/notes/{note_id}"), Some(&access))
        .await?;
    assert_eq!(
        (got.status, got.body["body"].as_str()),
        (200, Some("hello\nworld"))
    );
    let upd = api
        .put(
            &format!("/api/v1/notes/{note_id}"),
            &json!({ "title": "renamed", "body": "" }),
            &access,
        )
        .await?;
    assert_eq!(
        (upd.status, upd.body["title"].as_str()),
        (200, Some("renamed"))
    );

    let bob = api.user("bob@example.com", "persimmon-kazoo-17").await?;
    let bob_access = s(&bob, "access_token")?;
    let path = format!("/api/v1/notes/{note_id}");
    let peek = api.get(&path, Some(&bob_access)).await?;
    assert_eq!((peek.status, peek.code()), (404, "not_found"));
    let steal = api
        .put(&path, &json!({ "title": "mine" }), &bob_access)
        .await?;
    assert_eq!((steal.status, steal.code()), (404, "not_found"));
    let del_other = api.delete(&path, &bob_access).await?;
    assert_eq!(del_other.status, 404);
    let bob_list = api.get("/api/v1/notes", Some(&bob_access)).await?;
    assert_eq!(bob_list.body["notes"].as_array().map(Vec::len), Some(0));
    let still = api.get(&path, Some(&access)).await?;
    assert_eq!(still.body["title"], "renamed");
    let del = api.delete(&path, &access).await?;
    assert_eq!(del.status, 204);
    assert_eq!(api.get(&path, Some(&access)).await?.status, 404);

    // refresh: a new pair in the same session
    let r = api
        .post(
            "/api/v1/token/refresh",
            &json!({ "refresh_token": refresh }),
            None,
        )
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["session_id"], l.body["session_id"]);
    let access2 = s(&r.body, "access_token")?;
    let refresh2 = s(&r.body, "refresh_token")?;
    assert_ne!(access2, access);
    assert_eq!(
        api2.get("/api/v1/session", Some(&access2)).await?.status,
        200
    );

    // logout on replica 1 with the access token alone: the whole session
    // ends, refresh token included
    let out = api
        .post("/api/v1/logout", &json!({}), Some(&access2))
        .await?;
    assert_eq!(out.status, 204, "{out:?}");
    let here = api.get("/api/v1/session", Some(&access2)).await?;
    assert_eq!((here.status, here.code()), (401, "token_revoked"));
    // ... and replica 2 rejects it too, soon
    eventually(
        "the second replica rejects the logged-out token",
        PROPAGATION_DEADLINE,
        || {
            let api2 = api2.clone();
            let access2 = access2.clone();
            async move {
                let r = api2.get("/api/v1/session", Some(&access2)).await?;
                Ok(r.status == 401 && r.code() == "token_revoked")
            }
        },
    )
    .await?;
    let again = api
        .post(
            "/api/v1/token/refresh",
            &json!({ "refresh_token": refresh2 }),
            None,
        )
        .await?;
    assert_eq!(again.status, 401, "{again:?}");

    // logout-all: two live sessions, both end everywhere
    let s1 = api
        .login("alice@example.com", "tangerine-oboe-42")
        .await?
        .body;
    let s2 = api2
        .login("alice@example.com", "tangerine-oboe-42")
        .await?
        .body;
    let (a1, a2) = (s(&s1, "access_token")?, s(&s2, "access_token")?);
    assert_ne!(s1["session_id"], s2["session_id"]);
    for (op, t) in [(api, &a1), (api, &a2), (&api2, &a1), (&api2, &a2)] {
        assert_eq!(op.get("/api/v1/session", Some(t)).await?.status, 200);
    }
    let all = api
        .post("/api/v1/logout-all", &json!({}), Some(&a1))
        .await?;
    assert_eq!(all.status, 204, "{all:?}");
    for (name, op) in [("first", api), ("second", &api2)] {
        for t in [&a1, &a2] {
            eventually(
                &format!("the {name} replica rejects every session"),
                PROPAGATION_DEADLINE,
                || {
                    let op = op.clone();
                    let t = t.clone();
                    async move {
                        let r = op.get("/api/v1/session", Some(&t)).await?;
                        Ok(r.status == 401 && r.code() == "token_revoked")
                    }
                },
            )
            .await?;
        }
    }
    let r2 = api
        .post(
            "/api/v1/token/refresh",
            &json!({ "refresh_token": s(&s2, "refresh_token")? }),
            None,
        )
        .await?;
    assert_eq!(r2.status, 401, "{r2:?}");
    // Bob was not touched.
    assert_eq!(
        api2.get("/api/v1/session", Some(&bob_access)).await?.status,
        200
    );
    // A new login after logout-all works.
    let fresh = api.login("alice@example.com", "tangerine-oboe-42").await?;
    assert_eq!(fresh.status, 200);
    // The metrics saw it all.
    let m = api.metrics().await?;
    assert!(
        m.contains("authrealm_op_logins_total{result=\"ok\"}"),
        "{m}"
    );
    assert!(
        m.contains("authrealm_op_token_verifications_total{result=\"revoked\"}"),
        "{m}"
    );
    assert!(
        m.contains("authrealm_op_registrations_total{result=\"created\"} 2"),
        "{m}"
    );
    Ok(())
}

both_modes!(full_flow: full_flow_postgres_redis, full_flow_sqlite_memory);

/// Replaying a spent refresh token ends its session on every replica at
/// once, with Redis and with MA's in-memory store alike (the stores have
/// one semantics; without Redis the replicas follow MA's revocation feed).
async fn reuse_ends_the_session_everywhere(mode: Mode) -> TestResult {
    let env = Env::new(mode).await?;
    // MA on a clock the test moves past the grace window (no sleeping).
    let clock = authrealm_tokens::Clock::manual(authrealm_tokens::unix_now());
    let ma = start_ma_on(&env, clock.clone(), |c| {
        c.refresh_grace = Duration::from_secs(1);
    })
    .await?;
    let op1 = start_op(op_config(&env, &ma)).await?;
    let op2 = start_op(op_config(&env, &ma)).await?;
    let (api, api2) = (Api::new(&op1.base), Api::new(&op2.base));
    let pair = api
        .user("carol@example.com", "quince-harpsichord-9")
        .await?;
    let spent = s(&pair, "refresh_token")?;
    let next = api
        .post(
            "/api/v1/token/refresh",
            &json!({ "refresh_token": spent }),
            None,
        )
        .await?;
    assert_eq!(next.status, 200, "{next:?}");
    let access = s(&next.body, "access_token")?;
    let successor = s(&next.body, "refresh_token")?;
    for op in [&api, &api2] {
        assert_eq!(op.get("/api/v1/session", Some(&access)).await?.status, 200);
    }
    clock.advance(2);
    let replay = api
        .post(
            "/api/v1/token/refresh",
            &json!({ "refresh_token": spent }),
            None,
        )
        .await?;
    assert_eq!(
        (replay.status, replay.code()),
        (401, "refresh_token_reused"),
        "{replay:?}"
    );
    for (name, op) in [("first", &api), ("second", &api2)] {
        eventually(
            &format!("the {name} replica rejects the reused session's access token"),
            PROPAGATION_DEADLINE,
            || {
                let op = op.clone();
                let access = access.clone();
                async move {
                    let r = op.get("/api/v1/session", Some(&access)).await?;
                    Ok(r.status == 401 && r.code() == "token_revoked")
                }
            },
        )
        .await?;
    }
    let dead = api2
        .post(
            "/api/v1/token/refresh",
            &json!({ "refresh_token": successor }),
            None,
        )
        .await?;
    assert_eq!(dead.status, 401, "{dead:?}");
    Ok(())
}

both_modes!(reuse_ends_the_session_everywhere: reuse_ends_the_session_everywhere_postgres_redis, reuse_ends_the_session_everywhere_sqlite_memory);

async fn disabled_user_cannot_refresh(mode: Mode) -> TestResult {
    let st = stack(mode).await?;
    let pair = st
        .api
        .user("carol@example.com", "mandolin-quartz-88")
        .await?;
    let id = s(&pair, "sub")?;
    let db = st.env.database()?;
    assert!(
        db.set_user_disabled(
            &id,
            Some(authrealm_tokens::unix_now()),
            authrealm_tokens::unix_now()
        )
        .await?
    );
    let r = st
        .api
        .post(
            "/api/v1/token/refresh",
            &json!({ "refresh_token": s(&pair, "refresh_token")? }),
            None,
        )
        .await?;
    assert_eq!((r.status, r.code()), (401, "account_disabled"), "{r:?}");
    let l = st
        .api
        .login("carol@example.com", "mandolin-quartz-88")
        .await?;
    assert_eq!((l.status, l.code()), (403, "account_disabled"), "{l:?}");
    // Deleted: refresh fails too (the rotated session was revoked above, so log in first).
    assert!(
        db.set_user_disabled(&id, None, authrealm_tokens::unix_now())
            .await?
    );
    let pair = st
        .api
        .login("carol@example.com", "mandolin-quartz-88")
        .await?
        .body;
    assert!(db.delete_user(&id).await?);
    let me = st
        .api
        .get("/api/v1/me", Some(&s(&pair, "access_token")?))
        .await?;
    assert_eq!((me.status, me.code()), (401, "account_disabled"));
    let r = st
        .api
        .post(
            "/api/v1/token/refresh",
            &json!({ "refresh_token": s(&pair, "refresh_token")? }),
            None,
        )
        .await?;
    assert_eq!((r.status, r.code()), (401, "account_disabled"), "{r:?}");
    Ok(())
}

both_modes!(disabled_user_cannot_refresh: disabled_user_cannot_refresh_postgres_redis, disabled_user_cannot_refresh_sqlite_memory);

async fn operations_endpoints(mode: Mode) -> TestResult {
    let st = stack(mode).await?;
    let h = st.api.get("/healthz", None).await?;
    assert_eq!(h.status, 200);
    let r = st.api.get("/readyz", None).await?;
    assert_eq!(
        (r.status, r.body["ready"].as_bool()),
        (200, Some(true)),
        "{r:?}"
    );
    let o = st.api.get("/api/v1/openapi.json", None).await?;
    assert_eq!(o.status, 200);
    assert!(o.body["paths"]["/api/v1/notes/{id}"].is_object());
    let m = st.api.metrics().await?;
    for name in [
        "authrealm_op_jwks_refreshes_total",
        "authrealm_op_argon2_queue_depth",
        "authrealm_op_revocation_state_known 1",
        "authrealm_op_http_request_duration_seconds_bucket",
    ] {
        assert!(m.contains(name), "{name} missing from\n{m}");
    }
    let nf = st.api.get("/nope", None).await?;
    assert_eq!((nf.status, nf.code()), (404, "not_found"));
    let mna = st.api.get("/api/v1/login", None).await?;
    assert_eq!((mna.status, mna.code()), (405, "method_not_allowed"));
    Ok(())
}

both_modes!(operations_endpoints: operations_endpoints_postgres_redis, operations_endpoints_sqlite_memory);
