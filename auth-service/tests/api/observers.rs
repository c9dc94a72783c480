//! What observers of the service see, run on both stores by `suite.rs`: a
//! verifier following the revocations (the memory store's feed, or Redis's
//! channel and keys) learns each one at once, also later on; and made-up
//! requests add no metric series.

use std::collections::HashSet;

use authrealm_tokens::api;
use authrealm_tokens::revocation::RevocationKind;
use serde_json::json;

use crate::helpers::{Backend, Revoked, TestApp, TestResult, assert_error, spawn};

/// Every kind of revocation, made through the API; returns what each named.
async fn revoke_one_of_each(app: &TestApp) -> TestResult<Vec<Revoked>> {
    let mut named = Vec::new();
    // Refresh-token reuse ends the session.
    let reused = app.mint("rita").await?;
    app.refresh_ok(&reused.refresh_token).await?;
    app.clock
        .advance(app.config.refresh_grace.as_secs() as i64 + 1);
    assert_error(
        &app.refresh(&reused.refresh_token).await?,
        400,
        api::codes::REFRESH_TOKEN_REUSED,
    );
    named.push((RevocationKind::Session, reused.session_id));
    // An access token by itself.
    let access = app.mint("abe").await?;
    let jti = app
        .verifier()
        .await?
        .verify(&access.access_token, app.clock.now())?
        .jti;
    app.post(api::PATH_REVOKE, &json!({ "token": access.access_token }))
        .await?;
    named.push((RevocationKind::Jti, jti));
    // A refresh token revokes its session.
    app.post(api::PATH_REVOKE, &json!({ "token": access.refresh_token }))
        .await?;
    named.push((RevocationKind::Session, access.session_id));
    // Logout of one session.
    let logout = app.mint("lou").await?;
    app.post(
        api::PATH_REVOKE_SESSION,
        &json!({ "sid": logout.session_id }),
    )
    .await?;
    named.push((RevocationKind::Session, logout.session_id));
    // Log out everywhere: the session, then the user.
    let everywhere = app.mint("eve").await?;
    app.post(api::PATH_REVOKE_ALL, &json!({ "sub": "eve" }))
        .await?;
    named.push((RevocationKind::Session, everywhere.session_id));
    named.push((RevocationKind::User, "eve".to_owned()));
    Ok(named)
}

/// A verifier following the store learns of every revocation as it is
/// made — in particular of a session ended by refresh-token reuse, which OP
/// does not make itself (with the memory store nothing carried it to OP, so
/// the session's access tokens kept working there).
pub async fn every_revocation_reaches_a_follower_at_once(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let (mut follower, before) = app.follow().await?;
    assert!(before.is_empty(), "{before:?}");
    let made = revoke_one_of_each(&app).await?;
    let mut seen = Vec::new();
    while seen.len() < made.len() {
        seen.push(follower.next().await?);
    }
    assert_eq!(seen, made);
    Ok(())
}

/// A verifier that starts (or reconnects) later learns every revocation
/// still in force, and then the new ones.
pub async fn a_late_follower_learns_every_revocation_in_force(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    let made = revoke_one_of_each(&app).await?;
    let (mut follower, known) = app.follow().await?;
    let known: HashSet<Revoked> = known.into_iter().collect();
    let made_set: HashSet<Revoked> = made.into_iter().collect();
    assert_eq!(known, made_set);
    let more = app.mint("mo").await?;
    app.post(api::PATH_REVOKE_SESSION, &json!({ "sid": more.session_id }))
        .await?;
    assert_eq!(
        follower.next().await?,
        (RevocationKind::Session, more.session_id)
    );
    Ok(())
}

/// Made-up methods and paths add no metric series: every label value comes
/// from a bounded set.
pub async fn metric_labels_stay_bounded_under_made_up_methods_and_paths(b: Backend) -> TestResult {
    let app = spawn(b).await?;
    hostile_requests(&app, 0).await?;
    // The first scrape adds the scrape's own series.
    metric_series(&app).await?;
    let before = metric_series(&app).await?;
    for i in 1..50 {
        hostile_requests(&app, i).await?;
    }
    assert_eq!(
        metric_series(&app).await?,
        before,
        "metric series grew with made-up input"
    );
    Ok(())
}

async fn metric_series(app: &TestApp) -> TestResult<usize> {
    let text = app.get("/metrics").await?.text().await?;
    Ok(text.lines().filter(|l| !l.starts_with('#')).count())
}

async fn hostile_requests(app: &TestApp, i: usize) -> TestResult {
    let method = reqwest::Method::from_bytes(format!("M{i}X").as_bytes())?;
    for path in [
        format!("/made-up/{i}"),
        api::PATH_MINT.to_owned(),
        "/metrics".into(),
    ] {
        let resp = app
            .client
            .request(method.clone(), format!("{}{path}", app.base))
            .send()
            .await?;
        assert!(
            resp.status().is_client_error(),
            "{method} {path}: {}",
            resp.status()
        );
    }
    Ok(())
}
