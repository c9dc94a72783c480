//! Hostile input found by an attacker's test: control characters in emails,
//! look-alike spellings of one mailbox, two `Authorization` headers, token
//! answers a cache could keep, and made-up methods and paths that grew the
//! metrics. Each gets a clear 4xx (or a bounded label) and changes nothing.

use serde_json::json;

use crate::helpers::{Mode, TestResult, s, stack};

async fn control_characters_in_emails(mode: Mode) -> TestResult {
    let st = stack(mode).await?;
    let (api, db) = (&st.api, st.env.database()?);
    for email in [
        "al\u{0}ice@example.com",
        "alice@exam\u{0}ple.com",
        "al\u{7}ice@example.com",
        "al\u{1b}[31mice@example.com",
        "al\u{200b}ice@example.com",
        "\u{feff}alice@example.com",
        "al\u{202e}ice@example.com",
    ] {
        let r = api.register(email, "tangerine-oboe-42").await?;
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_email"),
            "{email:?}: {r:?}"
        );
        let l = api.login(email, "tangerine-oboe-42").await?;
        assert_eq!(
            (l.status, l.code()),
            (401, "invalid_credentials"),
            "{email:?}: {l:?}"
        );
    }
    assert_eq!(db.count_users().await?, 0);
    Ok(())
}

both_modes!(control_characters_in_emails: control_characters_in_emails_postgres_redis, control_characters_in_emails_sqlite_memory);

async fn look_alike_emails(mode: Mode) -> TestResult {
    let st = stack(mode).await?;
    let (api, db) = (&st.api, st.env.database()?);
    let pw = "tangerine-oboe-42";
    for (first, again) in [
        ("alice@example.com", "ａｌｉｃｅ@example.com"),
        ("jos\u{e9}@example.com", "jose\u{301}@example.com"),
        ("ada@bücher.example", "ada@xn--bcher-kva.example"),
        ("bob@xn--bcher-kva.example", "BOB@BÜCHER.example"),
    ] {
        let r = api.register(first, pw).await?;
        assert_eq!(r.status, 201, "{first:?}: {r:?}");
        let dup = api.register(again, pw).await?;
        assert_eq!(
            (dup.status, dup.code()),
            (409, "email_taken"),
            "{again:?}: {dup:?}"
        );
        // Either spelling logs in to the one account.
        let l = api.login(again, pw).await?;
        assert_eq!(l.status, 200, "{again:?}: {l:?}");
        assert_eq!(s(&l.body, "sub")?, s(&r.body, "id")?);
    }
    let stored = api.register("zoë@bücher.example", pw).await?;
    assert_eq!(stored.body["email"], "zoë@xn--bcher-kva.example");
    assert_eq!(db.count_users().await?, 5);
    Ok(())
}

both_modes!(look_alike_emails: look_alike_emails_postgres_redis, look_alike_emails_sqlite_memory);

async fn headers_and_caching(mode: Mode) -> TestResult {
    let st = stack(mode).await?;
    let api = &st.api;
    let pair = api.user("cy@example.com", "tangerine-oboe-42").await?;
    let token = s(&pair, "access_token")?;

    // Two Authorization headers, a valid one first and a forged one second.
    let r = api
        .send(
            api.http
                .get(format!("{}/api/v1/session", api.base))
                .header("authorization", format!("Bearer {token}"))
                .header("authorization", "Bearer forged.token.value"),
        )
        .await?;
    assert_eq!((r.status, r.code()), (400, "bad_request"), "{r:?}");
    assert_eq!(api.get("/api/v1/session", Some(&token)).await?.status, 200);

    // Nothing that carries a token or a user's data may be stored by a cache.
    let login = api.login("cy@example.com", "tangerine-oboe-42").await?;
    let refresh = api
        .post(
            "/api/v1/token/refresh",
            &json!({ "refresh_token": s(&login.body, "refresh_token")? }),
            None,
        )
        .await?;
    let refused = api.login("cy@example.com", "wrong-password-000").await?;
    let me = api.get("/api/v1/me", Some(&token)).await?;
    let session = api.get("/api/v1/session", Some(&token)).await?;
    for (what, a) in [
        ("login", &login),
        ("refresh", &refresh),
        ("refused login", &refused),
        ("me", &me),
        ("session", &session),
    ] {
        assert_eq!(
            a.cache_control.as_deref(),
            Some("no-store"),
            "{what}: {a:?}"
        );
    }
    assert_eq!((login.status, refresh.status), (200, 200));
    Ok(())
}

both_modes!(headers_and_caching: headers_and_caching_postgres_redis, headers_and_caching_sqlite_memory);

/// The label values of `label` in the exposition text.
fn label_values(text: &str, label: &str) -> std::collections::BTreeSet<String> {
    let key = format!("{label}=\"");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(&key).map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once('"').map(|(v, _)| v.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() -> TestResult {
    let st = stack(Mode::SqliteMemory).await?;
    let api = &st.api;
    let warm = api.metrics().await?;
    let one = |i: usize| -> TestResult<reqwest::RequestBuilder> {
        let method = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes())?;
        Ok(api
            .http
            .request(method, format!("{}/api/v1/no-such-thing-{i}", api.base)))
    };
    // Once to create the `other` / `unmatched` series, then 50 more.
    api.send(one(0)?).await?;
    let before = api.metrics().await?.lines().count();
    for i in 1..=50 {
        let r = api.send(one(i)?).await?;
        assert_eq!(r.status, 404, "{r:?}");
        let r = api
            .send(api.http.request(
                reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes())?,
                format!("{}/api/v1/notes", api.base),
            ))
            .await?;
        assert_eq!((r.status, r.code()), (405, "method_not_allowed"));
    }
    let after = api.metrics().await?;
    let methods = label_values(&after, "method");
    let known = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "other",
    ];
    assert!(
        methods.iter().all(|m| known.contains(&m.as_str())),
        "{methods:?}"
    );
    let routes = label_values(&after, "route");
    assert!(
        !routes.iter().any(|r| r.contains("no-such-thing")),
        "{routes:?}"
    );
    // 100 made-up requests add at most the series of one new route (the 405s).
    let grown = after.lines().count().saturating_sub(before);
    assert!(
        grown <= 40,
        "metrics grew by {grown} lines ({} before warm-up)",
        warm.lines().count()
    );
    Ok(())
}
