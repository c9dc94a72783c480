//! Bad input: each case shows the error code a client gets and that nothing
//! was written. Run on both storage modes.

use authrealm_tokens::testsupport::{claims_for, header_for, sign_hs256, sign_raw};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::{AUDIENCE, Mode, TestResult, s, stack};

async fn registration_input(mode: Mode) -> TestResult {
    let st = stack(mode).await?;
    let api = &st.api;
    let db = st.env.database()?;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("broken JSON", br#"{"email": "a@example.com", "password": "#.to_vec(), 400, "bad_request"),
        ("not an object", b"[1,2,3]".to_vec(), 400, "bad_request"),
        ("empty body", Vec::new(), 400, "bad_request"),
        ("missing password", br#"{"email": "a@example.com"}"#.to_vec(), 400, "bad_request"),
        ("missing email", br#"{"password": "tangerine-oboe-42"}"#.to_vec(), 400, "bad_request"),
        ("wrong type", br#"{"email": 5, "password": "tangerine-oboe-42"}"#.to_vec(), 400, "bad_request"),
        ("bad email", br#"{"email": "not-an-email", "password": "tangerine-oboe-42"}"#.to_vec(), 400, "invalid_email"),
        ("sql email", br#"{"email": "x'); DROP TABLE users;--@example.com", "password": "tangerine-oboe-42"}"#.to_vec(), 400, "invalid_email"),
        ("short password", br#"{"email": "a@example.com", "password": "short"}"#.to_vec(), 400, "password_too_short"),
        ("common password", br#"{"email": "a@example.com", "password": "password1234"}"#.to_vec(), 400, "password_too_common"),
        ("bad display name", br#"{"email": "a@example.com", "password": "tangerine-oboe-42", "display_name": "a\u0000b"}"#.to_vec(), 400, "invalid_display_name"),
    ];
    for (what, body, status, code) in cases {
        let r = api.post_raw("/api/v1/register", body).await?;
        assert_eq!((r.status, r.code()), (status, code), "{what}: {r:?}");
        let msg = r.body["error"]["message"].as_str().unwrap_or("");
        assert!(
            !msg.is_empty() && !msg.contains("tangerine"),
            "{what}: {msg}"
        );
    }
    let missing = api
        .post_raw(
            "/api/v1/register",
            br#"{"email": "a@example.com"}"#.to_vec(),
        )
        .await?;
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("password"),
        "{missing:?}"
    );
    let huge = json!({ "email": "a@example.com", "password": "x".repeat(2000) });
    let r = api.post("/api/v1/register", &huge, None).await?;
    assert_eq!((r.status, r.code()), (400, "password_too_long"));
    let r = api.post("/api/v1/login", &huge, None).await?;
    assert_eq!((r.status, r.code()), (400, "password_too_long"));
    // Over the body limit (64 KiB by default).
    let big = json!({ "email": "a@example.com", "password": "tangerine-oboe-42", "display_name": "x".repeat(100_000) });
    let r = api.post("/api/v1/register", &big, None).await?;
    assert_eq!((r.status, r.code()), (413, "payload_too_large"), "{r:?}");
    assert_eq!(
        db.count_users().await?,
        0,
        "a refused registration wrote something"
    );

    // SQL-ish strings where they are allowed are stored verbatim and harmless.
    let sqlish = "Robert'); DROP TABLE users;-- \" OR 1=1";
    let r = api
        .post(
            "/api/v1/register",
            &json!({ "email": "bobby@example.com", "password": sqlish, "display_name": sqlish }),
            None,
        )
        .await?;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["display_name"], sqlish);
    let l = api.login("bobby@example.com", sqlish).await?;
    assert_eq!(l.status, 200);
    let sqli_login = api.login("' OR '1'='1", "' OR '1'='1").await?;
    assert_eq!(
        (sqli_login.status, sqli_login.code()),
        (401, "invalid_credentials")
    );
    let token = s(&l.body, "access_token")?;
    let n = api
        .post(
            "/api/v1/notes",
            &json!({ "title": sqlish, "body": sqlish }),
            Some(&token),
        )
        .await?;
    assert_eq!((n.status, n.body["title"].as_str()), (201, Some(sqlish)));
    let odd_id = api
        .get("/api/v1/notes/1'%20OR%20'1'%3D'1", Some(&token))
        .await?;
    assert_eq!((odd_id.status, odd_id.code()), (404, "not_found"));
    assert_eq!(db.count_users().await?, 1);
    Ok(())
}

both_modes!(registration_input: registration_input_postgres_redis, registration_input_sqlite_memory);

async fn concurrent_duplicate_registration(mode: Mode) -> TestResult {
    let st = stack(mode).await?;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let api = st.api.clone();
        let email = if i % 2 == 0 {
            "dup@example.com"
        } else {
            "DUP@example.com"
        };
        tasks.push(tokio::spawn(async move {
            api.register(email, "tangerine-oboe-42").await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let r = t.await??;
        if r.status == 409 {
            assert_eq!(r.code(), "email_taken");
        }
        statuses.push(r.status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, vec![201, 409, 409, 409, 409, 409]);
    assert_eq!(st.env.database()?.count_users().await?, 1);
    Ok(())
}

both_modes!(concurrent_duplicate_registration: concurrent_duplicate_registration_postgres_redis, concurrent_duplicate_registration_sqlite_memory);

async fn note_input(mode: Mode) -> TestResult {
    let st = stack(mode).await?;
    let pair = st.api.user("dora@example.com", "tangerine-oboe-42").await?;
    let (token, sub) = (s(&pair, "access_token")?, s(&pair, "sub")?);
    let db = st.env.database()?;
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "title": "" }), "invalid_note"),
        (json!({ "title": "   " }), "invalid_note"),
        (json!({ "title": "x".repeat(201) }), "invalid_note"),
        (json!({ "title": "a\u{7}b" }), "invalid_note"),
        (
            json!({ "title": "ok", "body": "x".repeat(20_001) }),
            "invalid_note",
        ),
        (json!({ "body": "no title" }), "bad_request"),
        (json!({ "title": 7 }), "bad_request"),
    ];
    for (body, code) in cases {
        let r = st.api.post("/api/v1/notes", &body, Some(&token)).await?;
        assert_eq!((r.status, r.code()), (400, code), "{body}: {r:?}");
    }
    let broken = st
        .api
        .send(
            st.api
                .http
                .post(format!("{}/api/v1/notes", st.api.base))
                .bearer_auth(&token)
                .body("{\"title\": "),
        )
        .await?;
    assert_eq!((broken.status, broken.code()), (400, "bad_request"));
    let bad_query = st.api.get("/api/v1/notes?limit=abc", Some(&token)).await?;
    assert_eq!((bad_query.status, bad_query.code()), (400, "bad_request"));
    let bad_limit = st
        .api
        .get("/api/v1/notes?limit=100000", Some(&token))
        .await?;
    assert_eq!((bad_limit.status, bad_limit.code()), (400, "bad_request"));
    assert_eq!(db.count_notes(&sub).await?, 0, "a refused note was written");
    // A refused update leaves the note as it was.
    let n = st
        .api
        .post("/api/v1/notes", &json!({ "title": "keep" }), Some(&token))
        .await?;
    let path = format!("/api/v1/notes/{}", s(&n.body, "id")?);
    let r = st.api.put(&path, &json!({ "title": "" }), &token).await?;
    assert_eq!((r.status, r.code()), (400, "invalid_note"));
    assert_eq!(st.api.get(&path, Some(&token)).await?.body["title"], "keep");
    Ok(())
}

both_modes!(note_input: note_input_postgres_redis, note_input_sqlite_memory);

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

async fn bad_tokens(mode: Mode) -> TestResult {
    let st = stack(mode).await?;
    let key = st.env.active_key()?;
    let iss = st.ma.issuer.as_str();
    let now = authrealm_tokens::unix_now();
    let header = header_for(key);
    let good = sign_raw(key, &header, &claims_for(iss, AUDIENCE, "user-1", now))?;
    // Our own signature with MA's key is accepted: the baseline for the cases below.
    let ok = st.api.get("/api/v1/session", Some(&good)).await?;
    assert_eq!(ok.status, 200, "{ok:?}");

    // Flip one character in the middle of the signature (the last one may
    // only carry padding bits).
    let mut bytes = good.clone().into_bytes();
    let pos = bytes.len() - 20;
    bytes[pos] = if bytes[pos] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes)?;
    let mut swapped_claims = claims_for(iss, AUDIENCE, "user-1", now);
    swapped_claims["sub"] = json!("admin");
    let parts: Vec<&str> = good.split('.').collect();
    let payload_swap = format!("{}.{}.{}", parts[0], b64(&swapped_claims), parts[2]);
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "kid": key.kid, "typ": "JWT" })),
        b64(&claims_for(iss, AUDIENCE, "user-1", now))
    );
    let public_x = key.public_jwk()?;
    let public_json = serde_json::to_vec(&public_x)?;
    let hs256 = sign_hs256(
        &public_json,
        &json!({ "alg": "HS256", "kid": key.kid, "typ": "JWT" }),
        &claims_for(iss, AUDIENCE, "user-1", now),
    );
    let mut expired = claims_for(iss, AUDIENCE, "user-1", now - 1000);
    expired["exp"] = json!(now - 600);
    let mut future = claims_for(iss, AUDIENCE, "user-1", now);
    future["nbf"] = json!(now + 600);
    let wrong_iss = claims_for("https://evil.example", AUDIENCE, "user-1", now);
    let wrong_aud = claims_for(iss, "other-api", "user-1", now);
    let mut missing_sid = claims_for(iss, AUDIENCE, "user-1", now);
    missing_sid.as_object_mut().ok_or("obj")?.remove("sid");

    let cases: Vec<(&str, String, &str)> = vec![
        ("missing", String::new(), "missing_token"),
        (
            "basic",
            format!("Basic {}", b64(&json!("u:p"))),
            "missing_token",
        ),
        (
            "bearer without token",
            "Bearer ".to_owned(),
            "missing_token",
        ),
        ("garbage", "Bearer garbage".to_owned(), "token_malformed"),
        (
            "tampered signature",
            format!("Bearer {tampered}"),
            "token_bad_signature",
        ),
        (
            "swapped payload",
            format!("Bearer {payload_swap}"),
            "token_bad_signature",
        ),
        (
            "alg none",
            format!("Bearer {alg_none}"),
            "token_alg_not_allowed",
        ),
        (
            "HS256 with the public key",
            format!("Bearer {hs256}"),
            "token_alg_not_allowed",
        ),
        (
            "expired",
            format!("Bearer {}", sign_raw(key, &header, &expired)?),
            "token_expired",
        ),
        (
            "not yet valid",
            format!("Bearer {}", sign_raw(key, &header, &future)?),
            "token_not_yet_valid",
        ),
        (
            "wrong issuer",
            format!("Bearer {}", sign_raw(key, &header, &wrong_iss)?),
            "token_wrong_issuer",
        ),
        (
            "wrong audience",
            format!("Bearer {}", sign_raw(key, &header, &wrong_aud)?),
            "token_wrong_audience",
        ),
        (
            "missing claim",
            format!("Bearer {}", sign_raw(key, &header, &missing_sid)?),
            "token_malformed",
        ),
        (
            "sql in header",
            "Bearer ' OR 1=1 --".to_owned(),
            "token_malformed",
        ),
    ];
    for (what, auth, code) in cases {
        for path in ["/api/v1/session", "/api/v1/me", "/api/v1/notes"] {
            let r = if auth.is_empty() {
                st.api.get(path, None).await?
            } else {
                st.api.get_with_auth(path, &auth).await?
            };
            assert_eq!((r.status, r.code()), (401, code), "{what} on {path}: {r:?}");
        }
    }
    // A write with a bad token writes nothing.
    let r = st
        .api
        .post("/api/v1/notes", &json!({ "title": "x" }), Some(&tampered))
        .await?;
    assert_eq!(r.status, 401);
    let m = st.api.metrics().await?;
    for result in [
        "expired",
        "bad_signature",
        "malformed",
        "alg_not_allowed",
        "missing",
        "not_yet_valid",
    ] {
        assert!(
            m.contains(&format!(
                "authrealm_op_token_verifications_total{{result=\"{result}\"}}"
            )),
            "{result}"
        );
    }
    Ok(())
}

both_modes!(bad_tokens: bad_tokens_postgres_redis, bad_tokens_sqlite_memory);
