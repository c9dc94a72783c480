//! What the code-flow tests share: MA with a client registry and OP's
//! public URL, OP with a fixed session cookie key, and a small "browser"
//! (a cookie jar over reqwest that does not follow redirects) that reads
//! OP's login form.

use std::collections::BTreeMap;

use authrealm_tokens::ServiceCredential;
use authrealm_tokens::clients::{
    ClientEntry, ClientRegistryFile, ClientType, FORMAT_VERSION, GrantType, SecretHash, hash_secret,
};

use crate::helpers::{Api, Env, Ma, Mode, Running, TestResult, op_config, start_ma_with, start_op};

pub const APP_SECRET: &str = "app-secret-0123456789abcdefghijklmnopqrstu";
pub const APP_REDIRECT: &str = "https://app.example.test/callback";
pub const APP_LOGOUT: &str = "https://app.example.test/bye";
pub const OTHER_REDIRECT: &str = "https://other.example.test/cb?tenant=1";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const PASSWORD: &str = "correct horse battery staple";
pub const SESSION_KEY: &str = "session-cookie-key-0123456789abcdefghijklmnop";

fn client(id: &str, redirect: &str, secret: Option<&str>) -> ClientEntry {
    ClientEntry {
        client_id: id.to_owned(),
        client_type: if secret.is_some() {
            ClientType::Confidential
        } else {
            ClientType::Public
        },
        secret_hashes: secret
            .map(|s| {
                vec![SecretHash {
                    sha256: hash_secret(s),
                    not_after: None,
                }]
            })
            .unwrap_or_default(),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: vec![redirect.to_owned()],
        post_logout_redirect_uris: vec![APP_LOGOUT.to_owned()],
        scopes: ["openid", "email", "profile"].map(str::to_owned).to_vec(),
        audiences: vec![],
        access_token_ttl_secs: None,
        refresh_token_ttl_secs: None,
        introspection: false,
        display_name: Some(format!("<{id}>")),
    }
}

/// A realm with two code-flow clients: `app` (confidential) and `other`
/// (public), OP's public URL set at MA.
pub struct Realm {
    pub env: Env,
    pub ma: Ma,
    pub op: Running,
    pub api: Api,
    _clients: tempfile::TempDir,
}

pub async fn realm(mode: Mode, tweak: impl FnOnce(&mut main_project::Config)) -> TestResult<Realm> {
    let env = Env::new(mode).await?;
    let clients = tempfile::tempdir()?;
    let file = ClientRegistryFile {
        version: FORMAT_VERSION,
        clients: vec![
            client("app", APP_REDIRECT, Some(APP_SECRET)),
            client("other", OTHER_REDIRECT, None),
        ],
    };
    std::fs::write(
        clients.path().join(authrealm_tokens::clients::FILE_NAME),
        file.to_json()?,
    )?;
    let dir = clients.path().to_path_buf();
    let ma = start_ma_with(&env, |c| {
        c.clients_dir = Some(dir);
        c.op_public_url = Some("http://127.0.0.1:1".to_owned());
    })
    .await?;
    let op = start_op(realm_op_config(&env, &ma, tweak)?).await?;
    let api = Api::new(&op.base);
    Ok(Realm {
        env,
        ma,
        op,
        api,
        _clients: clients,
    })
}

/// OP's configuration in a realm: plain-HTTP cookies on loopback, a fixed key.
pub fn realm_op_config(
    env: &Env,
    ma: &Ma,
    tweak: impl FnOnce(&mut main_project::Config),
) -> TestResult<main_project::Config> {
    let mut c = op_config(env, ma);
    c.session_cookie_secure = false;
    c.session_cookie_key = Some(ServiceCredential::new(SESSION_KEY)?);
    tweak(&mut c);
    Ok(c)
}

/// The query of an authorization request of `client_id`.
pub fn authorize_query(client_id: &str, redirect: &str, state: Option<&str>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid email profile")
        .append_pair("nonce", "n-0S6_WzA2Mj")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    if let Some(st) = state {
        s.append_pair("state", st);
    }
    s.finish()
}

/// One answer as a browser sees it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Location` of a redirect.
    pub fn location(&self) -> TestResult<String> {
        Ok(self
            .header("location")
            .ok_or_else(|| format!("no redirect: {} {}", self.status, self.body))?
            .to_owned())
    }

    /// The query parameters of the redirect's target.
    pub fn redirect_params(&self) -> TestResult<BTreeMap<String, String>> {
        let loc = self.location()?;
        let query = loc.split_once('?').map_or("", |(_, q)| q);
        Ok(form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect())
    }

    /// The fields of the page's form (`name` → `value`).
    pub fn form_fields(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for input in self.body.split("<input").skip(1) {
            let attr = |name: &str| {
                let key = format!("{name}=\"");
                input
                    .split_once(&key)
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(v, _)| unescape(v))
            };
            if let Some(n) = attr("name") {
                out.insert(n, attr("value").unwrap_or_default());
            }
        }
        out
    }

    /// Asserts the headers every page and redirect of the flow has.
    pub fn assert_secure(&self) {
        assert_eq!(self.header("cache-control"), Some("no-store"), "{self:?}");
        assert_eq!(self.header("x-frame-options"), Some("DENY"));
        assert_eq!(self.header("referrer-policy"), Some("no-referrer"));
        let csp = self.header("content-security-policy").unwrap_or("");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A browser: a cookie jar, no redirects followed.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(base: &str) -> TestResult<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            base: base.to_owned(),
            cookies: BTreeMap::new(),
        })
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> TestResult<Page> {
        let req = if self.cookies.is_empty() {
            req
        } else {
            req.header("cookie", self.cookie_header())
        };
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for sc in headers.get_all("set-cookie") {
            let sc = sc.to_str()?;
            let first = sc.split(';').next().unwrap_or("");
            if let Some((k, v)) = first.split_once('=') {
                if v.is_empty() || sc.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let body = resp.text().await?;
        Ok(Page {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&mut self, path_and_query: &str) -> TestResult<Page> {
        let r = self.http.get(format!("{}{path_and_query}", self.base));
        self.send(r).await
    }

    pub async fn post_form(
        &mut self,
        path: &str,
        fields: &BTreeMap<String, String>,
    ) -> TestResult<Page> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter())
            .finish();
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(r).await
    }

    /// Opens the login page of an authorization request and submits it.
    pub async fn log_in(&mut self, query: &str, email: &str, password: &str) -> TestResult<Page> {
        let page = self.get(&format!("/oauth2/authorize?{query}")).await?;
        if page.status != 200 {
            return Err(format!("no login page: {page:?}").into());
        }
        let mut fields = page.form_fields();
        fields.insert("email".into(), email.into());
        fields.insert("password".into(), password.into());
        self.post_form("/oauth2/authorize/login", &fields).await
    }
}

/// Exchanges a code at MA's token endpoint for `app`.
pub async fn exchange(
    ma: &Ma,
    code: &str,
    redirect: &str,
    client: (&str, Option<&str>),
) -> TestResult<serde_json::Value> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", VERIFIER),
        ("client_id", client.0),
    ];
    if let Some(secret) = client.1 {
        form.push(("client_secret", secret));
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let resp = reqwest::Client::new()
        .post(format!(
            "{}{}",
            ma.base(),
            authrealm_tokens::oauth::PATH_TOKEN
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        return Err(format!("token endpoint: {status} {v}").into());
    }
    Ok(v)
}
