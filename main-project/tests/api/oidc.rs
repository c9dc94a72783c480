//! The code flow on OP's side over real HTTP: the login page, the browser
//! session (SSO) a second client uses, UserInfo, RP-initiated logout, and
//! every bad input that belongs to OP.

use serde_json::Value;

use crate::helpers::{Api, Mode, TestResult, s, start_op};
use crate::oidc_support::{
    APP_LOGOUT, APP_REDIRECT, APP_SECRET, Browser, OTHER_REDIRECT, PASSWORD, Page, authorize_query,
    exchange, realm, realm_op_config,
};

async fn register(api: &Api, email: &str) -> TestResult {
    let r = api.register(email, PASSWORD).await?;
    assert_eq!(r.status, 201, "{r:?}");
    Ok(())
}

async fn userinfo(api: &Api, token: &str) -> TestResult<(u16, Option<String>, Value)> {
    let resp = api
        .http
        .get(format!("{}/oauth2/userinfo", api.base))
        .bearer_auth(token)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((status, challenge, resp.json().await.unwrap_or(Value::Null)))
}

fn code_of(page: &Page, state: &str) -> TestResult<String> {
    assert_eq!(page.status, 302, "{page:?}");
    page.assert_secure();
    let p = page.redirect_params()?;
    assert_eq!(p.get("state").map(String::as_str), Some(state), "{p:?}");
    assert!(p.contains_key("iss"), "{p:?}");
    Ok(p.get("code").ok_or("no code")?.clone())
}

async fn login_sso_userinfo_logout(mode: Mode) -> TestResult {
    let realm = realm(mode, |_| {}).await?;
    register(&realm.api, "ada@example.com").await?;
    let mut browser = Browser::new(&realm.op.base)?;

    // The login page: accessible, script-free, bound to the request.
    let query = authorize_query("app", APP_REDIRECT, Some("st-1"));
    let page = browser.get(&format!("/oauth2/authorize?{query}")).await?;
    assert_eq!(page.status, 200, "{page:?}");
    page.assert_secure();
    assert!(page.body.contains("<html lang=\"en\">"));
    assert!(page.body.contains("<label for=\"email\">"));
    assert!(page.body.contains("&lt;app&gt;"), "client name, escaped");
    assert!(!page.body.contains("<script"));
    assert!(browser.cookies.contains_key("authrealm_csrf"));
    let fields = page.form_fields();
    assert_eq!(fields.get("state").map(String::as_str), Some("st-1"));
    assert!(fields.contains_key("csrf_token"));

    let redirect = browser.log_in(&query, "Ada@Example.com", PASSWORD).await?;
    let code = code_of(&redirect, "st-1")?;
    assert!(redirect.location()?.starts_with(APP_REDIRECT));
    let set_cookie = redirect.header("set-cookie").unwrap_or("");
    assert!(
        set_cookie.contains("HttpOnly")
            && set_cookie.contains("SameSite=Lax")
            && set_cookie.contains("Path=/oauth2"),
        "{set_cookie}"
    );
    let tokens = exchange(&realm.ma, &code, APP_REDIRECT, ("app", Some(APP_SECRET))).await?;
    let access = s(&tokens, "access_token")?;
    let id_token = s(&tokens, "id_token")?;

    // UserInfo: the user's claims per scope, from OP's database.
    let (status, _, info) = userinfo(&realm.api, &access).await?;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["email"], "ada@example.com");
    assert_eq!(info["email_verified"], false);
    assert!(info["sub"].as_str().is_some_and(|s| !s.is_empty()));

    // SSO: the second client gets a code without a login.
    let other = authorize_query("other", OTHER_REDIRECT, Some("st-2"));
    let sso = browser.get(&format!("/oauth2/authorize?{other}")).await?;
    let other_code = code_of(&sso, "st-2")?;
    assert!(
        sso.location()?.starts_with(&format!("{OTHER_REDIRECT}&")),
        "registered query kept"
    );
    let other_tokens = exchange(&realm.ma, &other_code, OTHER_REDIRECT, ("other", None)).await?;
    let other_access = s(&other_tokens, "access_token")?;
    assert_eq!(userinfo(&realm.api, &other_access).await?.0, 200);
    // prompt=login asks again even so; a browser without the cookie and
    // prompt=none gets login_required.
    let again = browser
        .get(&format!("/oauth2/authorize?{other}&prompt=login"))
        .await?;
    assert_eq!(again.status, 200);
    let mut stranger = Browser::new(&realm.op.base)?;
    let none = stranger
        .get(&format!("/oauth2/authorize?{other}&prompt=none"))
        .await?;
    assert_eq!(none.status, 302);
    let p = none.redirect_params()?;
    assert_eq!(p.get("error").map(String::as_str), Some("login_required"));
    assert_eq!(p.get("state").map(String::as_str), Some("st-2"));

    // Logout: back to the registered URI with state, the cookie cleared,
    // both clients' tokens revoked, the next request shows the login page.
    let logout = browser
        .get(&format!(
            "/oauth2/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye-1",
            form_urlencoded::byte_serialize(APP_LOGOUT.as_bytes()).collect::<String>()
        ))
        .await?;
    assert_eq!(logout.status, 302, "{logout:?}");
    logout.assert_secure();
    assert_eq!(logout.location()?, format!("{APP_LOGOUT}?state=bye-1"));
    assert!(!browser.cookies.contains_key("authrealm_session"));
    for token in [&access, &other_access] {
        let (status, challenge, _) = userinfo(&realm.api, token).await?;
        assert_eq!(status, 401);
        assert!(
            challenge
                .unwrap_or_default()
                .contains("error=\"invalid_token\"")
        );
    }
    let after = browser.get(&format!("/oauth2/authorize?{other}")).await?;
    assert_eq!(after.status, 200, "SSO ended: {after:?}");
    Ok(())
}

both_modes!(login_sso_userinfo_logout: login_sso_userinfo_logout_postgres_redis, login_sso_userinfo_logout_sqlite_memory);

/// A second replica (same key, same Redis) honours the browser session and
/// its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_on_one_replica_ends_the_session_on_another() -> TestResult {
    let realm = realm(Mode::PostgresRedis, |_| {}).await?;
    let op2 = start_op(realm_op_config(&realm.env, &realm.ma, |_| {})?).await?;
    register(&realm.api, "bob@example.com").await?;
    let mut b1 = Browser::new(&realm.op.base)?;
    let query = authorize_query("app", APP_REDIRECT, Some("r1"));
    code_of(&b1.log_in(&query, "bob@example.com", PASSWORD).await?, "r1")?;
    let mut b2 = Browser::new(&op2.base)?;
    b2.cookies = b1.cookies.clone();
    let other = authorize_query("other", OTHER_REDIRECT, Some("r2"));
    code_of(&b2.get(&format!("/oauth2/authorize?{other}")).await?, "r2")?;
    let out = b1.get("/oauth2/logout").await?;
    assert_eq!(out.status, 200);
    assert!(out.body.contains("Signed out"));
    // The old cookie, replayed at the other replica, no longer works there.
    let (base, cookies) = (op2.base.clone(), b2.cookies.clone());
    crate::helpers::eventually(
        "the other replica sees the logout",
        std::time::Duration::from_secs(20),
        || {
            let (base, cookies, other) = (base.clone(), cookies.clone(), other.clone());
            async move {
                let mut b = Browser::new(&base)?;
                b.cookies = cookies;
                Ok(b.get(&format!("/oauth2/authorize?{other}")).await?.status == 200)
            }
        },
    )
    .await
}

async fn bad_requests_never_redirect_where_they_must_not(mode: Mode) -> TestResult {
    let realm = realm(mode, |c| c.login_max_failures = 2).await?;
    register(&realm.api, "eve@example.com").await?;
    let mut b = Browser::new(&realm.op.base)?;

    // Unregistered redirect URI and unknown client: a page, no redirect.
    for query in [
        authorize_query("app", "https://evil.example/cb", Some("x")),
        authorize_query("nobody", APP_REDIRECT, Some("x")),
        authorize_query("app", "https://app.example.test/callback/", Some("x")),
    ] {
        let page = b.get(&format!("/oauth2/authorize?{query}")).await?;
        assert_eq!(page.status, 400, "{page:?}");
        assert!(page.header("location").is_none());
        assert!(
            page.header("content-type")
                .unwrap_or("")
                .starts_with("text/html")
        );
        page.assert_secure();
    }
    // A repeated parameter: a page too.
    let dup = format!(
        "/oauth2/authorize?{}&client_id=other",
        authorize_query("app", APP_REDIRECT, Some("x"))
    );
    assert_eq!(b.get(&dup).await?.status, 400);
    // A parameter too long for any real request: a page, MA never asked.
    let long = format!(
        "/oauth2/authorize?{}&scope={}",
        authorize_query("other", OTHER_REDIRECT, Some("x"))
            .replace("&scope=openid+email+profile", ""),
        "a".repeat(20_000)
    );
    let page = b.get(&long).await?;
    assert_eq!(page.status, 400, "{page:?}");
    assert!(page.header("location").is_none());
    // `state` missing: back to the client with invalid_request, no state.
    let page = b
        .get(&format!(
            "/oauth2/authorize?{}",
            authorize_query("app", APP_REDIRECT, None)
        ))
        .await?;
    assert_eq!(page.status, 302);
    let p = page.redirect_params()?;
    assert_eq!(p.get("error").map(String::as_str), Some("invalid_request"));
    assert!(!p.contains_key("state") && !p.contains_key("code"));

    // CSRF: the form without its cookie, or with a token of another request.
    let query = authorize_query("app", APP_REDIRECT, Some("c1"));
    let form = b.get(&format!("/oauth2/authorize?{query}")).await?;
    let mut fields = form.form_fields();
    fields.insert("email".into(), "eve@example.com".into());
    fields.insert("password".into(), PASSWORD.into());
    let mut no_cookie = Browser::new(&realm.op.base)?;
    let r = no_cookie
        .post_form("/oauth2/authorize/login", &fields)
        .await?;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("csrf_token_invalid"));
    let mut other_state = fields.clone();
    other_state.insert("state".into(), "c2".into());
    assert_eq!(
        b.post_form("/oauth2/authorize/login", &other_state)
            .await?
            .status,
        403
    );
    let mut no_token = fields.clone();
    no_token.remove("csrf_token");
    assert_eq!(
        b.post_form("/oauth2/authorize/login", &no_token)
            .await?
            .status,
        403
    );
    assert!(
        !b.cookies.contains_key("authrealm_session"),
        "nothing logged in"
    );

    // Wrong password: the page again, 401, the error announced; then lockout.
    let mut wrong = fields.clone();
    wrong.insert("password".into(), "not the password at all".into());
    let r = b.post_form("/oauth2/authorize/login", &wrong).await?;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("role=\"alert\"") && r.body.contains("Wrong email or password."));
    assert!(r.body.contains("value=\"eve@example.com\""), "email kept");
    r.assert_secure();
    let mut wrong2 = r.form_fields();
    wrong2.insert("password".into(), "still not the password".into());
    assert_eq!(
        b.post_form("/oauth2/authorize/login", &wrong2)
            .await?
            .status,
        401
    );
    let mut right = r.form_fields();
    right.insert("password".into(), PASSWORD.into());
    let locked = b.post_form("/oauth2/authorize/login", &right).await?;
    assert_eq!(locked.status, 429, "{locked:?}");
    assert!(locked.body.contains("Too many failed sign-in attempts"));
    assert!(locked.header("retry-after").is_some());
    assert!(!b.cookies.contains_key("authrealm_session"));

    // UserInfo: no token, a bad token, a token without `openid`.
    let resp = realm
        .api
        .http
        .get(format!("{}/oauth2/userinfo", realm.api.base))
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    let (status, challenge, _) = userinfo(&realm.api, "not.a.token").await?;
    assert_eq!(status, 401);
    assert!(
        challenge
            .unwrap_or_default()
            .contains("error=\"invalid_token\"")
    );
    register(&realm.api, "fay@example.com").await?;
    let pair = realm.api.login("fay@example.com", PASSWORD).await?;
    let (status, challenge, _) = userinfo(&realm.api, &s(&pair.body, "access_token")?).await?;
    assert_eq!(status, 403);
    assert!(challenge.unwrap_or_default().contains("insufficient_scope"));

    // Logout with a hint that is not an ID token of this provider.
    let bad = b.get("/oauth2/logout?id_token_hint=abc.def.ghi").await?;
    assert_eq!(bad.status, 400);
    // A logout without a registered redirect shows the page, never redirects.
    let page = b
        .get("/oauth2/logout?client_id=app&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F")
        .await?;
    assert_eq!(page.status, 200);
    assert!(page.header("location").is_none());
    Ok(())
}

both_modes!(bad_requests_never_redirect_where_they_must_not: bad_requests_postgres_redis, bad_requests_sqlite_memory);
