//! The forward-auth endpoint (`/auth/verify`) as a gateway calls it: 200
//! with identity headers for a valid token, 401 with an RFC 6750 challenge
//! for a missing, forged, expired or revoked one (also on a second replica
//! after a logout on the first), 403 for unmet route requirements, and 4xx,
//! never 5xx, for hostile input. Client-sent `X-Auth-*` headers are never
//! echoed.

use std::time::Duration;

use authrealm_tokens::testsupport::{claims_for, header_for, sign_raw};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::json;

use crate::helpers::{
    AUDIENCE, Api, Mode, TestResult, eventually, metric_value, op_config, s, stack, start_op,
};

/// Generous: propagation is measured in the benchmarks, not asserted here.
const PROPAGATION_DEADLINE: Duration = Duration::from_secs(5);

/// Extra request headers, by name and value.
type Extra<'a> = &'a [(&'a str, &'a str)];

/// Request headers with raw (possibly non-ASCII) values.
type RawHeaders = Vec<(&'static str, Vec<u8>)>;

/// One answer of `/auth/verify`: status, headers, error code.
#[derive(Debug)]
struct Verdict {
    status: u16,
    headers: HeaderMap,
    code: String,
}

impl Verdict {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `method path` to OP with `token` as bearer (if any) and `extra` headers.
async fn ask(
    api: &Api,
    method: Method,
    path: &str,
    token: Option<&str>,
    extra: Extra<'_>,
) -> TestResult<Verdict> {
    let mut r = api.http.request(method, format!("{}{path}", api.base));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    let resp = r.send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
    Ok(Verdict {
        status,
        headers,
        code,
    })
}

async fn verify(api: &Api, token: Option<&str>) -> TestResult<Verdict> {
    ask(api, Method::GET, "/auth/verify", token, &[]).await
}

/// A refused answer: 401, the code, and a Bearer challenge (with
/// `error="invalid_token"` whenever a token was sent).
fn assert_refused(v: &Verdict, code: &str, token_sent: bool) {
    assert_eq!((v.status, v.code.as_str()), (401, code), "{v:?}");
    let challenge = v.header("www-authenticate").unwrap_or("");
    assert!(challenge.starts_with("Bearer "), "{v:?}");
    assert_eq!(
        challenge.contains(r#"error="invalid_token""#),
        token_sent,
        "{v:?}"
    );
    assert!(v.header("x-auth-subject").is_none(), "{v:?}");
    assert_eq!(v.header("cache-control"), Some("no-store"), "{v:?}");
}

async fn answers_like_a_gateway_expects(mode: Mode) -> TestResult {
    let st = stack(mode).await?;
    let op2 = start_op(op_config(&st.env, &st.ma)).await?;
    let api = &st.api;
    let api2 = Api::new(&op2.base);
    let pair = api.user("edge@example.com", "tangerine-oboe-42").await?;
    let access = s(&pair, "access_token")?;

    // Valid: 200, the identity headers, nothing cached, never the token.
    let ok = verify(api, Some(&access)).await?;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.header("x-auth-subject"), pair["sub"].as_str(), "{ok:?}");
    assert_eq!(ok.header("x-auth-session"), pair["session_id"].as_str());
    assert_eq!(ok.header("x-auth-audience"), Some(AUDIENCE));
    assert_eq!(ok.header("x-auth-scope"), Some(""));
    assert_eq!(ok.header("x-auth-email"), Some("edge@example.com"));
    assert!(
        ok.header("x-auth-expires")
            .is_some_and(|e| e.parse::<i64>().is_ok())
    );
    assert_eq!(ok.header("cache-control"), Some("no-store"));
    let signature = access.rsplit('.').next().unwrap_or(&access);
    for (name, value) in &ok.headers {
        let v = String::from_utf8_lossy(value.as_bytes());
        assert!(!v.contains(signature), "{name} carries the token");
    }
    // Any method, and the Envoy prefix form with the original path.
    for (method, path) in [
        (Method::POST, "/auth/verify"),
        (Method::HEAD, "/auth/verify"),
        (
            Method::DELETE,
            "/auth/verify/app/orders/7?scope=not-read-here",
        ),
    ] {
        let v = ask(api, method.clone(), path, Some(&access), &[]).await?;
        assert_eq!(v.status, 200, "{method} {path}: {v:?}");
        // Seen again: the headers come from the identity cache, no-store included.
        assert_eq!(v.header("cache-control"), Some("no-store"), "{v:?}");
    }
    // Spoofed identity headers are never echoed: OP sets its own.
    let spoof = [("x-auth-subject", "admin"), ("x-auth-scope", "admin")];
    let v = ask(api, Method::GET, "/auth/verify", Some(&access), &spoof).await?;
    assert_eq!(v.header("x-auth-subject"), pair["sub"].as_str());
    assert_eq!(v.header("x-auth-scope"), Some(""));
    let v = ask(api, Method::GET, "/auth/verify", None, &spoof).await?;
    assert_refused(&v, "missing_token", false);
    assert!(v.header("x-auth-scope").is_none());

    // Missing, forged, expired.
    assert_refused(&verify(api, None).await?, "missing_token", false);
    let v = ask(
        api,
        Method::GET,
        "/auth/verify",
        None,
        &[("authorization", "Basic YTpi")],
    )
    .await?;
    assert_refused(&v, "missing_token", false);
    let mut forged = access.clone().into_bytes();
    let i = forged.len() - 10;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged)?;
    assert_refused(
        &verify(api, Some(&forged)).await?,
        "token_bad_signature",
        true,
    );
    let key = st.env.active_key()?;
    let now = authrealm_tokens::unix_now();
    let mut expired = claims_for(&st.ma.issuer, AUDIENCE, "user-x", now - 1000);
    expired["exp"] = json!(now - 600);
    let expired = sign_raw(key, &header_for(key), &expired)?;
    assert_refused(&verify(api, Some(&expired)).await?, "token_expired", true);

    // Revoked: a logout on replica 1 is enforced by replica 2's endpoint.
    assert_eq!(verify(&api2, Some(&access)).await?.status, 200);
    let out = api
        .post("/api/v1/logout", &json!({}), Some(&access))
        .await?;
    assert_eq!(out.status, 204, "{out:?}");
    assert_refused(&verify(api, Some(&access)).await?, "token_revoked", true);
    eventually(
        "the second replica's forward auth refuses the logged-out token",
        PROPAGATION_DEADLINE,
        || {
            let api2 = api2.clone();
            let access = access.clone();
            async move { Ok(verify(&api2, Some(&access)).await?.status == 401) }
        },
    )
    .await?;
    assert_refused(&verify(&api2, Some(&access)).await?, "token_revoked", true);

    // The results are counted with a bounded label set.
    let text = api.metrics().await?;
    assert!(metric_value(&text, "authrealm_op_forward_auth_total{result=\"allowed\"}")? >= 5);
    assert!(
        metric_value(
            &text,
            "authrealm_op_forward_auth_total{result=\"unauthenticated\"}"
        )? >= 5
    );
    Ok(())
}

both_modes!(answers_like_a_gateway_expects: forward_auth_postgres_redis, forward_auth_sqlite_memory);

async fn route_requirements(mode: Mode) -> TestResult {
    let st = stack(mode).await?;
    let api = &st.api;
    let key = st.env.active_key()?;
    let now = authrealm_tokens::unix_now();
    let mut claims = claims_for(&st.ma.issuer, AUDIENCE, "client-7", now);
    claims["scope"] = json!("orders:read orders:write");
    claims["client_id"] = json!("shop");
    let token = sign_raw(key, &header_for(key), &claims)?;

    let ok = verify(api, Some(&token)).await?;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.header("x-auth-scope"), Some("orders:read orders:write"));
    assert_eq!(ok.header("x-auth-client-id"), Some("shop"));
    let met: [(&str, Extra<'_>); 4] = [
        ("/auth/verify?scope=orders:read", &[]),
        (
            "/auth/verify?scope=orders:read+orders:write&audience=authrealm-test",
            &[],
        ),
        ("/auth/verify", &[("x-auth-require-scope", "orders:write")]),
        ("/auth/verify", &[("x-auth-require-audience", AUDIENCE)]),
    ];
    for (path, headers) in met {
        let v = ask(api, Method::GET, path, Some(&token), headers).await?;
        assert_eq!(v.status, 200, "{path} {headers:?}: {v:?}");
    }
    let unmet: [(&str, Extra<'_>, &str); 4] = [
        (
            "/auth/verify?scope=orders:read+admin",
            &[],
            "insufficient_scope",
        ),
        (
            "/auth/verify?scope=orders:read",
            &[("x-auth-require-scope", "admin")],
            "insufficient_scope",
        ),
        (
            "/auth/verify?audience=billing",
            &[],
            "audience_not_accepted",
        ),
        (
            "/auth/verify",
            &[("x-auth-require-audience", "billing")],
            "audience_not_accepted",
        ),
    ];
    for (path, headers, code) in unmet {
        let v = ask(api, Method::GET, path, Some(&token), headers).await?;
        assert_eq!((v.status, v.code.as_str()), (403, code), "{path}: {v:?}");
        let challenge = v.header("www-authenticate").unwrap_or("");
        assert!(challenge.contains(r#"error="insufficient_scope""#), "{v:?}");
        assert!(v.header("x-auth-subject").is_none(), "{v:?}");
    }
    let v = ask(
        api,
        Method::GET,
        "/auth/verify?scope=admin",
        Some(&token),
        &[],
    )
    .await?;
    assert!(
        v.header("www-authenticate")
            .is_some_and(|c| c.ends_with(r#"scope="admin""#)),
        "{v:?}"
    );
    // A token without requirements' scopes (OP's own login) is 403 there too;
    // a bad token is 401 before any requirement matters.
    let v = ask(api, Method::GET, "/auth/verify?scope=x", None, &[]).await?;
    assert_eq!(v.status, 401, "{v:?}");
    let text = api.metrics().await?;
    assert!(
        metric_value(
            &text,
            "authrealm_op_forward_auth_total{result=\"forbidden\"}"
        )? >= 4
    );
    Ok(())
}

both_modes!(route_requirements: forward_auth_requirements_postgres_redis, forward_auth_requirements_sqlite_memory);

async fn hostile_input(mode: Mode) -> TestResult {
    let st = stack(mode).await?;
    let api = &st.api;
    let pair = api.user("hostile@example.com", "tangerine-oboe-42").await?;
    let access = s(&pair, "access_token")?;
    let long = "a".repeat(6000);
    let bearer_long = format!("Bearer {long}");
    let bearer = format!("Bearer {access}");
    let auth = |extra: &[(&'static str, &[u8])]| {
        let mut h: RawHeaders = vec![("authorization", bearer.clone().into())];
        h.extend(extra.iter().map(|(k, v)| (*k, v.to_vec())));
        h
    };
    let only = |v: &[u8]| vec![("authorization", v.to_vec())];
    // (path, headers, the status expected): 4xx for everything hostile,
    // 200 where a valid token meets no requirement.
    let cases: Vec<(&str, RawHeaders, u16)> = vec![
        (
            "/auth/verify",
            auth(&[("authorization", bearer.as_bytes())]),
            400,
        ),
        ("/auth/verify", only(b"Bearer"), 401),
        ("/auth/verify", only(b"Bearer \xff\xfe"), 401),
        ("/auth/verify", only(bearer_long.as_bytes()), 401),
        ("/auth/verify", only(b"Bearer a.b.c"), 401),
        ("/auth/verify", only(b"Bearer .."), 401),
        ("/auth/verify?scope=%ff%fe", auth(&[]), 400),
        ("/auth/verify?scope=a%22b", auth(&[]), 400),
        ("/auth/verify?audience=a%00b", auth(&[]), 400),
        ("/auth/verify?scope=%", auth(&[]), 403),
        ("/auth/verify?audience=&scope=", auth(&[]), 200),
        (
            "/auth/verify",
            auth(&[("x-auth-require-scope", b"\xff")]),
            400,
        ),
        (
            "/auth/verify",
            auth(&[("x-auth-require-scope", long.as_bytes())]),
            400,
        ),
        (
            "/auth/verify",
            auth(&[("x-auth-require-audience", long.as_bytes())]),
            400,
        ),
        ("/auth/verify/..%2f..%2fmetrics", vec![], 401),
        ("/auth/verify/%00?audience=%00", auth(&[]), 200),
    ];
    for (path, headers, want) in cases {
        let mut r = api.http.get(format!("{}{path}", api.base));
        for (k, v) in &headers {
            r = r.header(*k, reqwest::header::HeaderValue::from_bytes(v)?);
        }
        let resp = r.send().await?;
        let status = resp.status().as_u16();
        assert_eq!(status, want, "{path} {headers:?}");
        assert_eq!(
            resp.headers().get("x-auth-subject").is_some(),
            status == 200,
            "{path}"
        );
    }
    let many = (0..40)
        .map(|i| format!("s{i}"))
        .collect::<Vec<_>>()
        .join("+");
    let v = ask(
        api,
        Method::GET,
        &format!("/auth/verify?scope={many}"),
        Some(&access),
        &[],
    )
    .await?;
    assert_eq!((v.status, v.code.as_str()), (400, "bad_request"), "{v:?}");
    let v = ask(
        api,
        Method::from_bytes(b"FROB")?,
        "/auth/verify",
        Some(&access),
        &[],
    )
    .await?;
    assert_eq!(v.status, 200, "{v:?}");
    Ok(())
}

both_modes!(hostile_input: forward_auth_hostile_postgres_redis, forward_auth_hostile_sqlite_memory);
