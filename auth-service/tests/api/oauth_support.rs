//! What the OAuth tests share: a client registry written into a directory
//! the way the operator's Secret is mounted, an auth-service started on it
//! (with OP's public URL, so the code flow exists), and the requests a
//! relying party and OP make, over real HTTP.

use std::path::Path;

use auth_service::Clock;
use authrealm_tokens::clients::{
    ClientEntry, ClientRegistryFile, ClientType, FORMAT_VERSION, GrantType, SecretHash, hash_secret,
};
use authrealm_tokens::oauth::{self, AuthorizeRequest, CodeRequest, CodeResponse};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestResult, err, spawn_with, test_config};

pub const WEB_SECRET: &str = "web-secret-0123456789abcdefghijklmnopqrstuv";
pub const WORKER_SECRET: &str = "worker-secret-0123456789abcdefghijklmnopqr";
pub const OTHER_SECRET: &str = "other-secret-0123456789abcdefghijklmnopqrs";
pub const WEB_REDIRECT: &str = "https://app.example.test/callback";
pub const SPA_REDIRECT: &str = "http://127.0.0.1:4000/cb";
pub const OP_URL: &str = "https://login.example.test";
/// An RFC 7636 verifier and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn client(id: &str, kind: ClientType, grants: Vec<GrantType>) -> ClientEntry {
    ClientEntry {
        client_id: id.to_owned(),
        client_type: kind,
        secret_hashes: vec![],
        grant_types: grants,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        scopes: vec![],
        audiences: vec![],
        access_token_ttl_secs: None,
        refresh_token_ttl_secs: None,
        introspection: false,
        display_name: None,
    }
}

fn secret(s: &str) -> Vec<SecretHash> {
    vec![SecretHash {
        sha256: hash_secret(s),
        not_after: None,
    }]
}

/// The clients every OAuth test has: `default.web` (confidential, code
/// flow), `default.spa` (public, code flow), `default.worker`
/// (confidential, client_credentials, introspection, own audience and a
/// 60 s access token), `default.other` (confidential, code flow).
pub fn clients() -> Vec<ClientEntry> {
    use ClientType::{Confidential, Public};
    use GrantType::{AuthorizationCode, ClientCredentials, RefreshToken};
    let scopes = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let web = ClientEntry {
        secret_hashes: secret(WEB_SECRET),
        redirect_uris: vec![WEB_REDIRECT.to_owned()],
        post_logout_redirect_uris: vec!["https://app.example.test/bye".to_owned()],
        scopes: scopes(&["openid", "email", "profile", "offline_access", "notes.read"]),
        display_name: Some("The Web App".to_owned()),
        ..client(
            "default.web",
            Confidential,
            vec![AuthorizationCode, RefreshToken],
        )
    };
    let spa = ClientEntry {
        redirect_uris: vec![SPA_REDIRECT.to_owned()],
        scopes: scopes(&["openid", "email"]),
        ..client("default.spa", Public, vec![AuthorizationCode, RefreshToken])
    };
    let worker = ClientEntry {
        secret_hashes: secret(WORKER_SECRET),
        scopes: scopes(&["notes.read", "notes.write"]),
        audiences: vec!["https://api.example.test".to_owned()],
        access_token_ttl_secs: Some(60),
        introspection: true,
        ..client("default.worker", Confidential, vec![ClientCredentials])
    };
    let other = ClientEntry {
        secret_hashes: secret(OTHER_SECRET),
        redirect_uris: vec!["https://other.example.test/cb".to_owned()],
        scopes: scopes(&["openid"]),
        ..client("default.other", Confidential, vec![AuthorizationCode])
    };
    vec![web, spa, worker, other]
}

/// Writes `clients` as the registry of `dir`, replacing the file atomically.
pub fn write_registry(dir: &Path, clients: Vec<ClientEntry>) -> TestResult {
    let file = ClientRegistryFile {
        version: FORMAT_VERSION,
        clients,
    };
    let tmp = dir.join(".clients.json.tmp");
    std::fs::write(&tmp, file.to_json()?)?;
    std::fs::rename(&tmp, dir.join(oauth_file()))?;
    Ok(())
}

fn oauth_file() -> &'static str {
    authrealm_tokens::clients::FILE_NAME
}

/// An auth-service with the standard clients and OP's public URL.
pub struct OAuthApp {
    pub app: TestApp,
    pub dir: tempfile::TempDir,
}

impl std::ops::Deref for OAuthApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

pub async fn spawn_oauth(backend: Backend) -> TestResult<OAuthApp> {
    spawn_oauth_config(backend, |_| {}).await
}

/// [`spawn_oauth`] with a change to the configuration.
pub async fn spawn_oauth_config(
    backend: Backend,
    change: impl FnOnce(&mut auth_service::Config),
) -> TestResult<OAuthApp> {
    let dir = tempfile::tempdir()?;
    write_registry(dir.path(), clients())?;
    let mut config = test_config(backend)?;
    config.clients_dir = Some(dir.path().to_path_buf());
    config.clients_poll_interval = std::time::Duration::from_millis(100);
    config.op_public_url = Some(OP_URL.to_owned());
    change(&mut config);
    let app = spawn_with(config, Clock::manual(authrealm_tokens::unix_now())).await?;
    Ok(OAuthApp { app, dir })
}

/// An answer: status, the headers that matter, the JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Asserts an RFC 6749 §5.2 error with this status and code.
    pub fn assert_oauth_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "unexpected answer {}", self.body);
        assert_eq!(
            self.body["error"],
            json!(code),
            "unexpected answer {}",
            self.body
        );
        assert!(
            self.body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "no error_description: {}",
            self.body
        );
        assert_eq!(self.header("cache-control"), Some("no-store"));
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn str(&self, field: &str) -> TestResult<String> {
        self.body[field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| err(format!("no `{field}` in {}", self.body)))
    }
}

/// Form parameters.
pub type Params<'a> = Vec<(&'a str, &'a str)>;

/// How a request authenticates its client.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// `client_secret_basic`.
    Basic(&'a str, &'a str),
    /// `client_secret_post`.
    Post(&'a str, &'a str),
    /// `none`: `client_id` in the body.
    Public(&'a str),
    /// Nothing.
    Anonymous,
}

impl TestApp {
    /// POSTs a form to a public OAuth endpoint.
    pub async fn form(
        &self,
        path: &str,
        auth: Auth<'_>,
        params: &[(&str, &str)],
    ) -> TestResult<Answer> {
        let mut body: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut req = self.client.post(format!("{}{path}", self.base));
        match auth {
            Auth::Basic(id, secret) => {
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let raw = format!("{}:{}", enc(id), enc(secret));
                let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
                req = req.header("authorization", format!("Basic {b64}"));
            }
            Auth::Post(id, secret) => {
                body.push(("client_id".into(), id.into()));
                body.push(("client_secret".into(), secret.into()));
            }
            Auth::Public(id) => body.push(("client_id".into(), id.into())),
            Auth::Anonymous => {}
        }
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(body)
            .finish();
        let resp = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encoded)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| err(format!("non-JSON {text:?}: {e}")))?
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// OP asks for a code for `sub` (an authorization request of `client`).
    pub async fn code_for(
        &self,
        client: &str,
        redirect: &str,
        scope: &str,
    ) -> TestResult<CodeResponse> {
        let req = CodeRequest {
            request: authorize_request(client, redirect, scope),
            sub: "user-42".to_owned(),
            auth_time: self.clock.now() - 5,
            claims: serde_json::from_value(json!({
                "email": "ada@example.test", "email_verified": true, "name": "Ada"
            }))?,
        };
        let (status, body) = self
            .post(oauth::PATH_INTERNAL_CODES, &serde_json::to_value(&req)?)
            .await?;
        if status != 200 {
            return Err(err(format!("codes answered {status}: {body}")));
        }
        Ok(serde_json::from_value(body)?)
    }

    /// The relying party's code exchange.
    pub async fn exchange(
        &self,
        auth: Auth<'_>,
        code: &str,
        redirect: &str,
        verifier: &str,
    ) -> TestResult<Answer> {
        self.form(
            oauth::PATH_TOKEN,
            auth,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    /// Whether the public introspection (as `default.worker`) says active.
    pub async fn active(&self, token: &str) -> TestResult<bool> {
        let a = self
            .form(
                oauth::PATH_INTROSPECT,
                Auth::Basic("default.worker", WORKER_SECRET),
                &[("token", token)],
            )
            .await?;
        if a.status != 200 {
            return Err(err(format!(
                "introspection answered {}: {}",
                a.status, a.body
            )));
        }
        Ok(a.body["active"] == json!(true))
    }
}

/// A complete, valid authorization request.
pub fn authorize_request(client: &str, redirect: &str, scope: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        response_type: Some("code".into()),
        client_id: Some(client.into()),
        redirect_uri: Some(redirect.into()),
        scope: (!scope.is_empty()).then(|| scope.into()),
        state: Some("af0ifjsldkj".into()),
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: Some(CHALLENGE.into()),
        code_challenge_method: Some("S256".into()),
    }
}

/// The JSON of a JWT's header and claims (no verification).
pub fn jwt_parts(token: &str) -> TestResult<(Value, Value)> {
    let mut parts = token.split('.');
    let mut decode = || -> TestResult<Value> {
        let part = parts.next().ok_or_else(|| err("not a JWT"))?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part)?;
        Ok(serde_json::from_slice(&bytes)?)
    };
    let header = decode()?;
    let claims = decode()?;
    Ok((header, claims))
}
