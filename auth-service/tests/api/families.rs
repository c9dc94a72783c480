//! A session is one record that names its refresh tokens by digest: what
//! that must keep — reuse of a token spent several rotations ago is still
//! caught, a made-up token for a real session changes nothing (session ids
//! are not secret), spent tokens are forgotten when they would have
//! expired, "log out everywhere" ends sessions of its own second — and the
//! sessions recorded before this layout keep working through their old
//! refresh tokens. The first three run against both stores.

use ::redis::AsyncCommands as _;
use auth_service::store::record;
use auth_service::store::redis::RedisStore;
use authrealm_tokens::api;
use serde_json::json;

use crate::helpers::{Backend, TestApp, TestResult, assert_error, spawn};

/// Seconds past the grace window.
fn past_grace(app: &TestApp) -> i64 {
    i64::try_from(app.config.refresh_grace.as_secs()).unwrap_or(10) + 1
}

pub async fn a_token_spent_rotations_ago_is_still_caught_as_reuse(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let first = app.mint("kim").await?;
    let mut latest = first.clone();
    for _ in 0..4 {
        app.clock.advance(60);
        latest = app.refresh_ok(&latest.refresh_token).await?;
    }
    let replay = app.refresh(&first.refresh_token).await?;
    assert_error(&replay, 400, api::codes::REFRESH_TOKEN_REUSED);
    // The whole session ended: its newest tokens too.
    assert_error(
        &app.refresh(&latest.refresh_token).await?,
        400,
        api::codes::REFRESH_TOKEN_INVALID,
    );
    assert!(!app.introspect_active(&latest.access_token).await?);
    assert_eq!(
        app.metric("authrealm_ma_refresh_reuse_detected_total")
            .await?,
        1.0
    );
    Ok(())
}

pub async fn a_made_up_token_for_a_real_session_changes_nothing(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let pair = app.mint("lou").await?;
    let second = app.refresh_ok(&pair.refresh_token).await?;
    app.clock.advance(past_grace(&app));
    // Anyone who saw an access token knows the session id.
    let forged = format!(
        "{}.{}",
        pair.session_id,
        authrealm_tokens::random_token(32)?
    );
    assert_error(
        &app.refresh(&forged).await?,
        400,
        api::codes::REFRESH_TOKEN_INVALID,
    );
    let (status, _) = app
        .post(api::PATH_REVOKE, &json!({ "token": forged }))
        .await?;
    assert_eq!(status, 200, "RFC 7009: an unknown token revokes fine");
    assert_eq!(
        app.metric("authrealm_ma_refresh_reuse_detected_total")
            .await?,
        0.0
    );
    // The session lives on.
    assert!(app.introspect_active(&second.access_token).await?);
    app.refresh_ok(&second.refresh_token).await?;
    Ok(())
}

pub async fn spent_tokens_are_forgotten_once_they_would_have_expired(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let ttl = i64::try_from(app.config.refresh_ttl.as_secs())?;
    let first = app.mint("max").await?;
    let mut latest = first.clone();
    // Each rotation comes just before the newest token expires, so every
    // spent token outlives the next rotation but not the one after.
    for _ in 0..5 {
        app.clock.advance(ttl - 1);
        latest = app.refresh_ok(&latest.refresh_token).await?;
    }
    // The first token would have expired long ago: unknown, not a reuse.
    assert_error(
        &app.refresh(&first.refresh_token).await?,
        400,
        api::codes::REFRESH_TOKEN_INVALID,
    );
    app.refresh_ok(&latest.refresh_token).await?;
    if b == Backend::Redis {
        let key = RedisStore::session_key(app.prefix(), &first.session_id)
            .ok_or("MA made the session id")?;
        let mut conn = app.redis_conn().await?;
        let bytes: Vec<u8> = conn.get(&key).await?;
        let rec = record::decode(&bytes).ok_or("a session record")?;
        assert!(
            rec.spent.len() <= 2,
            "{} spent tokens kept",
            rec.spent.len()
        );
    }
    Ok(())
}

/// OP's user ids are UUIDs, which the Redis record keeps as 16 bytes: they
/// must come back exactly as sent (and a look-alike in capitals as it is).
pub async fn user_ids_come_back_from_a_refresh_exactly_as_sent(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    for sub in [
        "0b6f5c5e-8a4e-4c1a-9f7e-2d8a1b0c9e11",
        "0B6F5C5E-8A4E-4C1A-9F7E-2D8A1B0C9E11",
        "00000000-0000-0000-0000-000000000000",
    ] {
        let pair = app.mint(sub).await?;
        let next = app.refresh_ok(&pair.refresh_token).await?;
        assert_eq!(next.sub, sub);
        let claims = app
            .verifier()
            .await?
            .verify(&next.access_token, app.clock.now())?;
        assert_eq!(claims.sub, sub);
        assert_eq!(claims.extra["email"], json!(format!("{sub}@example.test")));
    }
    Ok(())
}

crate::both_stores_in!(
    user_ids_come_back_from_a_refresh_exactly_as_sent,
    a_token_spent_rotations_ago_is_still_caught_as_reuse,
    a_made_up_token_for_a_real_session_changes_nothing,
    spent_tokens_are_forgotten_once_they_would_have_expired,
);

/// Older sessions end by the user's not-before alone (the set of recent
/// sessions is gone by then); a session of the same second ends through
/// that set (see the suite's `revoke_all_ends_every_session_of_the_user_only`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_out_everywhere_ends_older_sessions_by_not_before_alone() -> TestResult {
    let app = spawn(Backend::Redis).await?;
    let pair = app.mint("nia").await?;
    let mut conn = app.redis_conn().await?;
    let recent = format!("{}:recent:nia", app.prefix());
    assert!(conn.exists::<_, bool>(&recent).await?);
    let _: () = conn.del(&recent).await?;
    app.clock.advance(1);
    let (status, _) = app
        .post(api::PATH_REVOKE_ALL, &json!({ "sub": "nia" }))
        .await?;
    assert_eq!(status, 200);
    assert_error(
        &app.refresh(&pair.refresh_token).await?,
        400,
        api::codes::REFRESH_TOKEN_INVALID,
    );
    assert!(!app.introspect_active(&pair.access_token).await?);
    Ok(())
}

/// Writes a session the way MA recorded it before sessions were one
/// record; returns its refresh token.
async fn old_layout_session(app: &TestApp, sub: &str) -> TestResult<(String, String)> {
    let mut conn = app.redis_conn().await?;
    let p = app.prefix();
    let sid = authrealm_tokens::random_token(16)?;
    let token = authrealm_tokens::random_token(32)?;
    let hash = authrealm_tokens::digest::sha256_b64url(token.as_bytes());
    let now = app.clock.now();
    let exp = now + 3600;
    let claims = json!({ "email": format!("{sub}@example.test") }).to_string();
    ::redis::pipe()
        .hset_multiple(
            format!("{p}:fam:{sid}"),
            &[
                ("sub", sub),
                ("claims", claims.as_str()),
                ("created", &now.to_string()),
                ("client", ""),
            ],
        )
        .expire_at(format!("{p}:fam:{sid}"), exp)
        .hset_multiple(
            format!("{p}:rt:{hash}"),
            &[("sid", sid.as_str()), ("exp", &exp.to_string())],
        )
        .expire_at(format!("{p}:rt:{hash}"), exp)
        .sadd(format!("{p}:usersids:{sub}"), &sid)
        .expire_at(format!("{p}:usersids:{sub}"), exp)
        .query_async::<()>(&mut conn)
        .await?;
    Ok((sid, token))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_recorded_before_the_one_record_layout_keep_working() -> TestResult {
    let app = spawn(Backend::Redis).await?;
    let (sid, old) = old_layout_session(&app, "olga").await?;
    // The old token rotates into a token of the new shape, same session.
    let next = app.refresh_ok(&old).await?;
    assert_eq!(next.session_id, sid);
    assert!(next.refresh_token.starts_with(&format!("{sid}.")));
    let claims = app
        .verifier()
        .await?
        .verify(&next.access_token, app.clock.now())?;
    assert_eq!(claims.extra["email"], json!("olga@example.test"));
    let mut conn = app.redis_conn().await?;
    let key = RedisStore::session_key(app.prefix(), &sid).ok_or("MA's session id")?;
    assert!(conn.exists::<_, bool>(&key).await?, "moved into one record");
    let fam = format!("{}:fam:{sid}", app.prefix());
    assert!(!conn.exists::<_, bool>(&fam).await?);
    // A retry within grace gets the same successor.
    let again = app.refresh_ok(&old).await?;
    assert_eq!(again.refresh_token, next.refresh_token);
    // The new chain goes on; the old token replayed later is a reuse.
    let third = app.refresh_ok(&next.refresh_token).await?;
    app.clock.advance(past_grace(&app));
    assert_error(
        &app.refresh(&old).await?,
        400,
        api::codes::REFRESH_TOKEN_REUSED,
    );
    assert_error(
        &app.refresh(&third.refresh_token).await?,
        400,
        api::codes::REFRESH_TOKEN_INVALID,
    );
    assert!(!app.introspect_active(&third.access_token).await?);

    // RFC 7009 with an old token ends its session too.
    let (sid2, old2) = old_layout_session(&app, "olga").await?;
    let (status, _) = app
        .post(api::PATH_REVOKE, &json!({ "token": old2 }))
        .await?;
    assert_eq!(status, 200);
    assert_error(
        &app.refresh(&old2).await?,
        400,
        api::codes::REFRESH_TOKEN_INVALID,
    );
    let revoked: Option<String> = conn
        .get(format!("{}:revoked:sid:{sid2}", app.prefix()))
        .await?;
    assert!(revoked.is_some(), "the session's access tokens end too");
    // And an old token of a user who logged out everywhere since is refused.
    let (_, old3) = old_layout_session(&app, "pia").await?;
    app.clock.advance(1);
    let (status, _) = app
        .post(api::PATH_REVOKE_ALL, &json!({ "sub": "pia" }))
        .await?;
    assert_eq!(status, 200);
    assert_error(
        &app.refresh(&old3).await?,
        400,
        api::codes::REFRESH_TOKEN_INVALID,
    );
    Ok(())
}
