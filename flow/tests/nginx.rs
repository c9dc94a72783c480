//! A real nginx (Debian's package, started on a free port with its own
//! configuration in a temporary directory) in front of a small upstream,
//! asking OP's `/auth/verify` through `auth_request` before each request:
//! a valid token reaches the upstream with OP's identity headers; a
//! missing, forged, expired or revoked token is stopped at nginx; a logout
//! through OP replica 1 is enforced by an nginx fronting replica 2; and the
//! identity headers a client sends never reach the upstream.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authrealm_flow::processes::free_port;
use authrealm_tokens::testsupport::{claims_for, header_for, sign_raw};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

mod realm;

use realm::{AUDIENCE, TestResult, start_realm};

/// Where Debian's package puts the binary (`/usr/sbin` is not on every PATH).
const NGINX_PATHS: [&str; 2] = ["/usr/sbin/nginx", "/usr/bin/nginx"];

/// The identity headers OP answers with (under the default prefix).
const IDENTITY: [&str; 7] = [
    "Subject",
    "Session",
    "Scope",
    "Audience",
    "Expires",
    "Email",
    "Client-Id",
];

/// Generous: propagation is measured in the benchmarks, not asserted here.
const PROPAGATION_DEADLINE: Duration = Duration::from_secs(5);

fn nginx_binary() -> Result<PathBuf, String> {
    NGINX_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "nginx is not installed (looked in /usr/sbin and /usr/bin): run the tests with \
             ./scripts/test, which installs Debian's nginx"
                .to_owned()
        })
}

/// The requests the upstream received: the headers of each.
type Seen = Arc<Mutex<Vec<HeaderMap>>>;

/// An upstream that records the headers of each request and answers them as JSON.
async fn start_upstream() -> TestResult<(String, Seen, tokio::task::JoinHandle<()>)> {
    async fn echo(State(seen): State<Seen>, headers: HeaderMap) -> Json<Value> {
        let body: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                )
            })
            .collect();
        if let Ok(mut s) = seen.lock() {
            s.push(headers);
        }
        Json(Value::Object(body))
    }
    let seen: Seen = Arc::default();
    let app = axum::Router::new().fallback(echo).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}"), seen, handle))
}

/// nginx in the foreground, one process, everything in its own directory.
struct Nginx {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `auth_request` wiring: each identity header OP answers with is
/// taken from the subrequest and set on the proxied request; an empty value
/// (the token has no such claim) removes the header, so whatever the client
/// sent under that name never reaches the upstream. The requirement headers
/// are cleared too.
fn identity_wiring() -> String {
    let mut out = String::new();
    for name in IDENTITY {
        let var = name.to_lowercase().replace('-', "_");
        out.push_str(&format!(
            "            auth_request_set $auth_{var} $upstream_http_x_auth_{var};\n            \
             proxy_set_header X-Auth-{name} $auth_{var};\n"
        ));
    }
    out.push_str("            proxy_set_header X-Auth-Require-Scope \"\";\n");
    out.push_str("            proxy_set_header X-Auth-Require-Audience \"\";\n");
    out
}

fn config(dir: &Path, port: u16, op: &str, upstream: &str) -> String {
    let auth_location = |name: &str, query: &str| {
        format!(
            "        location = /{name} {{\n            internal;\n            \
             proxy_pass {op}/auth/verify{query};\n            \
             proxy_pass_request_body off;\n            \
             proxy_set_header Content-Length \"\";\n        }}\n"
        )
    };
    let protected = |path: &str, auth: &str| {
        format!(
            "        location {path} {{\n            auth_request /{auth};\n{}            \
             proxy_pass {upstream};\n        }}\n",
            identity_wiring()
        )
    };
    let d = dir.display();
    format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n    access_log off;\n    proxy_http_version 1.1;\n    \
         client_body_temp_path {d}/client_body;\n    proxy_temp_path {d}/proxy;\n    \
         fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    \
         scgi_temp_path {d}/scgi;\n    \
         server {{\n        listen 127.0.0.1:{port};\n        \
         location = /nginx-ready {{ return 204; }}\n{}{}{}{}    }}\n}}\n",
        auth_location("_auth", ""),
        auth_location("_auth_admin", "?scope=admin"),
        protected("/", "_auth"),
        protected("/admin/", "_auth_admin"),
    )
}

async fn start_nginx(bin: &Path, op: &str, upstream: &str) -> TestResult<Nginx> {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, config(dir.path(), port, op, upstream))?;
    let child = Command::new(bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut nginx = Nginx {
        child,
        url: format!("http://127.0.0.1:{port}"),
        dir,
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log =
            || std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default();
        if let Ok(Some(status)) = nginx.child.try_wait() {
            return Err(format!("nginx exited during start ({status}): {}", log()).into());
        }
        let ready = http
            .get(format!("{}/nginx-ready", nginx.url))
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 204);
        if ready {
            return Ok(nginx);
        }
        if Instant::now() > deadline {
            return Err(format!("nginx not ready within 20s: {}", log()).into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn seen_count(seen: &Seen) -> usize {
    seen.lock().map(|s| s.len()).unwrap_or(usize::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_enforces_tokens_and_logout_at_the_edge() -> TestResult {
    let bin = nginx_binary()?;
    let realm = start_realm(2).await?;
    let (upstream, seen, _upstream_task) = start_upstream().await?;
    let edge1 = start_nginx(&bin, &realm.ops[0].url, &upstream).await?;
    let edge2 = start_nginx(&bin, &realm.ops[1].url, &upstream).await?;
    let http = reqwest::Client::new();

    // A user of the realm, through OP replica 1.
    let email = format!(
        "edge-{}@example.com",
        authrealm_tokens::random_token(6)?.to_lowercase()
    );
    let password = "tangerine-oboe-42";
    let op1 = &realm.ops[0].url;
    let r = http
        .post(format!("{op1}/api/v1/register"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 201, "register: {}", r.text().await?);
    let pair: Value = http
        .post(format!("{op1}/api/v1/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await?
        .json()
        .await?;
    let access = pair["access_token"]
        .as_str()
        .ok_or("no access token")?
        .to_owned();
    let sub = pair["sub"].as_str().ok_or("no sub")?;
    let sid = pair["session_id"].as_str().ok_or("no session_id")?;

    // Valid: the upstream sees OP's identity headers, never the client's.
    let mut spoofed = http
        .get(format!("{}/app/orders?x=1", edge1.url))
        .bearer_auth(&access);
    for name in IDENTITY {
        spoofed = spoofed.header(format!("X-Auth-{name}"), "admin");
    }
    let r = spoofed.send().await?;
    assert_eq!(r.status().as_u16(), 200);
    let got: Value = r.json().await?;
    assert_eq!(got["x-auth-subject"], sub, "{got}");
    assert_eq!(got["x-auth-session"], sid, "{got}");
    assert_eq!(got["x-auth-audience"], AUDIENCE, "{got}");
    assert_eq!(got["x-auth-email"], email.as_str(), "{got}");
    assert!(
        got["x-auth-expires"]
            .as_str()
            .is_some_and(|e| e.parse::<i64>().is_ok()),
        "{got}"
    );
    // A login token has no scope and no client id: the client's values are gone.
    for absent in ["x-auth-scope", "x-auth-client-id"] {
        assert!(
            got.get(absent).is_none(),
            "{absent} reached the upstream: {got}"
        );
    }
    assert!(
        got.as_object()
            .is_some_and(|h| h.values().all(|v| v != "admin")),
        "a client-sent identity header reached the upstream: {got}"
    );
    assert_eq!(seen_count(&seen), 1);

    // Missing, forged, expired: stopped at nginx with OP's challenge.
    let mut forged = access.clone().into_bytes();
    let i = forged.len() - 10;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged)?;
    let key = &realm.active_key;
    let now = authrealm_tokens::unix_now();
    let mut claims = claims_for(&realm.ma.url, AUDIENCE, sub, now - 1000);
    claims["exp"] = json!(now - 600);
    let expired = sign_raw(key, &header_for(key), &claims)?;
    for (what, token) in [
        ("missing", None),
        ("forged", Some(&forged)),
        ("expired", Some(&expired)),
    ] {
        let mut req = http.get(format!("{}/app/orders", edge1.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await?;
        assert_eq!(r.status().as_u16(), 401, "{what}");
        let challenge = r
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok());
        assert!(
            challenge.is_some_and(|c| c.starts_with("Bearer ")),
            "{what}: {challenge:?}"
        );
    }
    // A route that requires a scope the token lacks: 403 at nginx.
    let r = http
        .get(format!("{}/admin/panel", edge1.url))
        .bearer_auth(&access)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        seen_count(&seen),
        1,
        "a refused request reached the upstream"
    );

    // Logout through OP replica 1; the nginx in front of replica 2 enforces it.
    let r = http
        .get(format!("{}/app", edge2.url))
        .bearer_auth(&access)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .post(format!("{op1}/api/v1/logout"))
        .bearer_auth(&access)
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 204);
    let r = http
        .get(format!("{}/app", edge1.url))
        .bearer_auth(&access)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 401, "the replica that logged out");
    let deadline = Instant::now() + PROPAGATION_DEADLINE;
    loop {
        let r = http
            .get(format!("{}/app", edge2.url))
            .bearer_auth(&access)
            .send()
            .await?;
        if r.status().as_u16() == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nginx on replica 2 still lets the revoked token in"
        );
        tokio::task::yield_now().await;
    }
    // Once refused, refused for good.
    let before = seen_count(&seen);
    for edge in [&edge1, &edge2] {
        let r = http
            .get(format!("{}/app", edge.url))
            .bearer_auth(&access)
            .send()
            .await?;
        assert_eq!(r.status().as_u16(), 401);
    }
    assert_eq!(seen_count(&seen), before);
    Ok(())
}
