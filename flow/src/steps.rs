//! The user flow, step by step: register, login, me, notes, refresh with reuse
//! detection, logout seen by every OP replica, logout-all, independent
//! verification against MA's JWKS, and the metrics that count it all.

use std::time::{Duration, Instant};

use authrealm_tokens::{JwkSet, Verifier, VerifierConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::{Answer, Api};
use crate::{FlowError, Targets};

/// How long a revocation may take to reach every OP replica before the flow fails.
pub const PROPAGATION_DEADLINE: Duration = Duration::from_secs(5);

/// Options of one run.
#[derive(Debug, Clone)]
pub struct FlowOptions {
    /// Audience the access tokens must carry.
    pub audience: String,
    /// Suffix that keeps this run's users apart from other runs'.
    pub run_id: String,
    /// MA's refresh grace window: the flow waits it out before replaying a
    /// spent refresh token to show reuse detection.
    pub refresh_grace: Duration,
}

fn fail(step: &'static str, detail: impl Into<String>) -> FlowError {
    FlowError::Step {
        step,
        detail: detail.into(),
    }
}

fn field(a: &Answer, step: &'static str, name: &str) -> Result<String, FlowError> {
    a.str(name)
        .map(str::to_owned)
        .ok_or_else(|| fail(step, format!("answer has no {name:?}: {}", a.body)))
}

/// Tokens of one login session.
#[derive(Debug, Clone)]
struct Session {
    access: String,
    refresh: String,
}

async fn login(
    op: &Api,
    step: &'static str,
    email: &str,
    password: &str,
) -> Result<Session, FlowError> {
    let a = op
        .call(
            step,
            Method::POST,
            "/api/v1/login",
            None,
            Some(&json!({"email": email, "password": password})),
        )
        .await?
        .expect(step, StatusCode::OK)?;
    Ok(Session {
        access: field(&a, step, "access_token")?,
        refresh: field(&a, step, "refresh_token")?,
    })
}

/// Polls every replica until each rejects `token` as revoked, or fails at the deadline.
async fn rejected_everywhere(
    ops: &[Api],
    step: &'static str,
    token: &str,
) -> Result<Duration, FlowError> {
    let start = Instant::now();
    for op in ops {
        loop {
            let a = op.get(step, "/api/v1/me", Some(token)).await?;
            if a.status == StatusCode::UNAUTHORIZED && a.code() == Some("token_revoked") {
                break;
            }
            if start.elapsed() > PROPAGATION_DEADLINE {
                return Err(fail(
                    step,
                    format!(
                        "{} still answers {} {} after {PROPAGATION_DEADLINE:?}",
                        op.base(),
                        a.status,
                        a.body
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(start.elapsed())
}

/// Runs the whole flow; `say` receives one line per passed step.
///
/// # Errors
/// The first step whose answer differs from what a user should see.
#[allow(clippy::too_many_lines)] // one linear story reads best in one place
pub async fn run(
    targets: &Targets,
    opts: &FlowOptions,
    say: &dyn Fn(&str),
) -> Result<(), FlowError> {
    let (ops, ma) = targets.clients(Duration::from_secs(30))?;
    let op = ops
        .first()
        .ok_or_else(|| FlowError::Setup("no OP URL given".into()))?;
    let alice = format!("alice-{}@example.test", opts.run_id).to_lowercase();
    let bob = format!("bob-{}@example.test", opts.run_id).to_lowercase();
    let password = "correct horse battery staple";

    // Registration, duplicate (case-insensitive), bad input.
    let step = "register";
    let a = op
        .call(
            step,
            Method::POST,
            "/api/v1/register",
            None,
            Some(&json!({"email": alice, "password": password, "display_name": "Alice"})),
        )
        .await?
        .expect(step, StatusCode::CREATED)?;
    let alice_id = a.body.get("id").cloned().unwrap_or(Value::Null);
    op.call(
        step,
        Method::POST,
        "/api/v1/register",
        None,
        Some(&json!({"email": bob, "password": password})),
    )
    .await?
    .expect(step, StatusCode::CREATED)?;
    say("register: two users created (201)");
    let step = "duplicate register";
    op.call(
        step,
        Method::POST,
        "/api/v1/register",
        None,
        Some(&json!({"email": alice.to_uppercase(), "password": password})),
    )
    .await?
    .expect_error(step, StatusCode::CONFLICT, "email_taken")?;
    say("duplicate register: 409 email_taken (emails are case-insensitive)");

    // Login: wrong password and unknown user look the same.
    let step = "login with wrong password";
    let wrong = op
        .call(
            step,
            Method::POST,
            "/api/v1/login",
            None,
            Some(&json!({"email": alice, "password": "not the password!"})),
        )
        .await?
        .expect_error(step, StatusCode::UNAUTHORIZED, "invalid_credentials")?;
    let nobody = op
        .call(step, Method::POST, "/api/v1/login", None, Some(&json!({"email": format!("nobody-{}@example.test", opts.run_id), "password": password})))
        .await?
        .expect_error(step, StatusCode::UNAUTHORIZED, "invalid_credentials")?;
    if wrong.body != nobody.body {
        return Err(fail(
            step,
            format!(
                "unknown user and wrong password answer differently: {} vs {}",
                wrong.body, nobody.body
            ),
        ));
    }
    say("login with wrong password: 401 invalid_credentials, identical to an unknown user");
    let s1 = login(op, "login", &alice, password).await?;
    say("login: access and refresh token issued");

    // Me.
    let step = "me";
    let me = op
        .get(step, "/api/v1/me", Some(&s1.access))
        .await?
        .expect(step, StatusCode::OK)?;
    if me.str("email") != Some(alice.as_str()) || me.body.get("id") != Some(&alice_id) {
        return Err(fail(step, format!("me shows {} for {alice}", me.body)));
    }
    op.get(step, "/api/v1/me", None).await?.expect_error(
        step,
        StatusCode::UNAUTHORIZED,
        "missing_token",
    )?;
    say("me: shows the logged-in user; no token is 401 missing_token");

    // Notes CRUD and isolation.
    let step = "notes";
    let note = op
        .call(
            step,
            Method::POST,
            "/api/v1/notes",
            Some(&s1.access),
            Some(&json!({"title": "first", "body": "hello"})),
        )
        .await?
        .expect(step, StatusCode::CREATED)?;
    let id = note
        .body
        .get("id")
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .ok_or_else(|| fail(step, "note has no id"))?;
    let path = format!("/api/v1/notes/{id}");
    op.call(
        step,
        Method::PUT,
        &path,
        Some(&s1.access),
        Some(&json!({"title": "first", "body": "edited"})),
    )
    .await?
    .expect(step, StatusCode::OK)?;
    let got = op
        .get(step, &path, Some(&s1.access))
        .await?
        .expect(step, StatusCode::OK)?;
    if got.str("body") != Some("edited") {
        return Err(fail(step, format!("note was not updated: {}", got.body)));
    }
    let list = op
        .get(step, "/api/v1/notes", Some(&s1.access))
        .await?
        .expect(step, StatusCode::OK)?;
    let count = list
        .body
        .get("notes")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if count != 1 {
        return Err(fail(
            step,
            format!("expected 1 note in the list, got {}", list.body),
        ));
    }
    let bob_session = login(op, step, &bob, password).await?;
    for method in [Method::GET, Method::DELETE] {
        op.call(step, method, &path, Some(&bob_session.access), None)
            .await?
            .expect_error(step, StatusCode::NOT_FOUND, "not_found")?;
    }
    let bob_list = op
        .get(step, "/api/v1/notes", Some(&bob_session.access))
        .await?
        .expect(step, StatusCode::OK)?;
    if bob_list
        .body
        .get("notes")
        .and_then(Value::as_array)
        .is_none_or(|n| !n.is_empty())
    {
        return Err(fail(
            step,
            format!("bob sees notes that are not his: {}", bob_list.body),
        ));
    }
    op.call(step, Method::DELETE, &path, Some(&s1.access), None)
        .await?
        .expect(step, StatusCode::NO_CONTENT)?;
    op.get(step, &path, Some(&s1.access)).await?.expect_error(
        step,
        StatusCode::NOT_FOUND,
        "not_found",
    )?;
    say("notes: create, update, read, list, delete; another user gets 404 and sees none");

    // Independent verification with MA's published keys.
    let step = "jwks";
    let discovery = ma
        .get(step, "/.well-known/openid-configuration", None)
        .await?
        .expect(step, StatusCode::OK)?;
    let issuer = field(&discovery, step, "issuer")?;
    let jwks_uri = field(&discovery, step, "jwks_uri")?;
    if !jwks_uri.ends_with("/.well-known/jwks.json") {
        return Err(fail(step, format!("unexpected jwks_uri {jwks_uri}")));
    }
    let jwks = ma
        .get(step, "/.well-known/jwks.json", None)
        .await?
        .expect(step, StatusCode::OK)?;
    let set: JwkSet = serde_json::from_value(jwks.body.clone())
        .map_err(|e| fail(step, format!("JWKS does not parse: {e}")))?;
    let (verifier, skipped) = Verifier::new(
        &set,
        VerifierConfig {
            issuer,
            audience: opts.audience.clone(),
            leeway_secs: 60,
        },
    );
    if !skipped.is_empty() {
        return Err(fail(
            step,
            format!("unusable keys in the JWKS: {skipped:?}"),
        ));
    }
    let claims = verifier
        .verify(&s1.access, authrealm_tokens::unix_now())
        .map_err(|e| fail(step, format!("access token does not verify: {e}")))?;
    if Some(&Value::String(claims.sub.clone())) != me.body.get("id")
        && Some(&json!(claims.sub)) != me.body.get("id")
    {
        return Err(fail(
            step,
            format!(
                "token sub {} is not the user id {:?}",
                claims.sub,
                me.body.get("id")
            ),
        ));
    }
    say("jwks: access token verifies with MA's published keys, sub = user id");

    // Refresh rotation, then reuse of the spent token revokes the family.
    let step = "refresh";
    let r = op
        .refresh(step, &s1.refresh)
        .await?
        .expect(step, StatusCode::OK)?;
    let s2 = Session {
        access: field(&r, step, "access_token")?,
        refresh: field(&r, step, "refresh_token")?,
    };
    if s2.refresh == s1.refresh || s2.access == s1.access {
        return Err(fail(step, "refresh did not rotate the tokens"));
    }
    op.get(step, "/api/v1/me", Some(&s2.access))
        .await?
        .expect(step, StatusCode::OK)?;
    say("refresh: new pair issued, new access token works");
    let step = "refresh retry within grace";
    let retry = op
        .refresh(step, &s1.refresh)
        .await?
        .expect(step, StatusCode::OK)?;
    if retry.str("refresh_token") != Some(s2.refresh.as_str()) {
        return Err(fail(
            step,
            "a retry within the grace window produced a second successor",
        ));
    }
    say("refresh retry within the grace window: the same successor pair, not a second one");
    let step = "refresh token reuse";
    // Replay the spent token until the grace window has passed: inside it
    // each replay is a harmless retry answered with the same successor;
    // the first replay after it is reuse.
    let deadline = std::time::Instant::now() + opts.refresh_grace + Duration::from_secs(30);
    let reused = loop {
        let r = op.refresh(step, &s1.refresh).await?;
        if r.status != StatusCode::OK {
            break r;
        }
        if r.str("refresh_token") != Some(s2.refresh.as_str()) {
            return Err(fail(
                step,
                "a replay within the grace window produced a second successor",
            ));
        }
        if std::time::Instant::now() > deadline {
            return Err(fail(
                step,
                "a spent refresh token was still answered 30 s after the grace window",
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    reused.expect_error(step, StatusCode::UNAUTHORIZED, "refresh_token_reused")?;
    op.refresh(step, &s2.refresh)
        .await?
        .expect(step, StatusCode::UNAUTHORIZED)?;
    let took = rejected_everywhere(&ops, step, &s2.access).await?;
    say(&format!(
        "refresh token reuse after the grace window: 401 refresh_token_reused, the family is revoked and its access token rejected on {} replica(s) within {took:?}",
        ops.len()
    ));

    // Logout revokes the access token (and the session) on every replica.
    let step = "logout";
    let s3 = login(op, step, &alice, password).await?;
    for o in &ops {
        o.get(step, "/api/v1/me", Some(&s3.access))
            .await?
            .expect(step, StatusCode::OK)?;
    }
    op.call(
        step,
        Method::POST,
        "/api/v1/logout",
        Some(&s3.access),
        Some(&json!({"refresh_token": s3.refresh})),
    )
    .await?
    .expect(step, StatusCode::NO_CONTENT)?;
    let took = rejected_everywhere(&ops, step, &s3.access).await?;
    op.refresh(step, &s3.refresh)
        .await?
        .expect(step, StatusCode::UNAUTHORIZED)?;
    say(&format!(
        "logout: old access token rejected by all {} replica(s) within {took:?}; refresh token dead",
        ops.len()
    ));

    // Logout everywhere ends every session of the user.
    let step = "logout-all";
    let a1 = login(op, step, &alice, password).await?;
    let a2 = login(op, step, &alice, password).await?;
    op.call(
        step,
        Method::POST,
        "/api/v1/logout-all",
        Some(&a1.access),
        None,
    )
    .await?
    .expect(step, StatusCode::NO_CONTENT)?;
    rejected_everywhere(&ops, step, &a1.access).await?;
    rejected_everywhere(&ops, step, &a2.access).await?;
    op.refresh(step, &a2.refresh)
        .await?
        .expect(step, StatusCode::UNAUTHORIZED)?;
    // Bob's session is untouched, and Alice can log in again.
    op.get(step, "/api/v1/me", Some(&bob_session.access))
        .await?
        .expect(step, StatusCode::OK)?;
    let again = login(op, step, &alice, password).await?;
    op.get(step, "/api/v1/me", Some(&again.access))
        .await?
        .expect(step, StatusCode::OK)?;
    say(
        "logout-all: both sessions rejected everywhere, refresh dead, other users untouched, new login works",
    );

    // Metrics count what happened (served on the metrics listeners).
    let step = "metrics";
    let (op_metrics, ma_metrics) = targets.metrics_clients(Duration::from_secs(30))?;
    for (api, names) in [
        (
            &op_metrics,
            &[
                "authrealm_op_registrations_total",
                "authrealm_op_logins_total",
                "authrealm_op_token_verifications_total",
            ][..],
        ),
        (
            &ma_metrics,
            &[
                "authrealm_ma_tokens_minted_total",
                "authrealm_ma_refreshes_total",
                "authrealm_ma_revocations_total",
                "authrealm_ma_jwks_requests_total",
            ][..],
        ),
    ] {
        let (status, text) = api.text(step, "/metrics").await?;
        if status != StatusCode::OK {
            return Err(fail(
                step,
                format!("{}/metrics answered {status}", api.base()),
            ));
        }
        for name in names {
            let counted = text
                .lines()
                .any(|l| l.starts_with(name) && !l.trim_end().ends_with(" 0"));
            if !counted {
                return Err(fail(
                    step,
                    format!("{}/metrics has no non-zero {name}", api.base()),
                ));
            }
        }
    }
    say(
        "metrics: OP and MA count registrations, logins, verifications, mints, refreshes, revocations, JWKS requests",
    );
    Ok(())
}
