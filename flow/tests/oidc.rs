//! A third-party OpenID Connect relying party against real processes: the
//! `auth-service` binary with a client registry in the operator's format
//! (hashed secrets), a `main-project` whose login page the client's browser
//! uses, Postgres and Redis. `e2e/oidc/flow.mjs` (openid-client, and
//! headless Chromium through playwright-core) does the talking; this test
//! starts the realm, runs it and requires its "e2e ok".

mod realm;

use std::path::{Path, PathBuf};

use authrealm_flow::processes::free_port;
use authrealm_runtime::env;
use authrealm_tokens::clients::{
    ClientEntry, ClientRegistryFile, ClientType, FORMAT_VERSION, GrantType, SecretHash, hash_secret,
};

use realm::TestResult;

const EMAIL: &str = "grace@example.com";
const PASSWORD: &str = "a long enough e2e password";

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        .join("e2e")
        .join("oidc")
}

fn client(id: &str, secret: &str, grants: Vec<GrantType>) -> ClientEntry {
    ClientEntry {
        client_id: id.to_owned(),
        client_type: ClientType::Confidential,
        secret_hashes: vec![SecretHash {
            sha256: hash_secret(secret),
            not_after: None,
        }],
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

/// The realm of the flow tests, with a client registry for MA and the
/// login page's cookie settings for OP.
struct Oidc {
    realm: realm::Realm,
    _clients: tempfile::TempDir,
    app_secret: String,
    worker_secret: String,
    /// The app's redirect URI: a free loopback port nothing listens on (the
    /// relying party captures the navigation or reads `Location`).
    redirect: String,
}

async fn start_oidc() -> TestResult<Oidc> {
    let app_secret = authrealm_tokens::random_token(32)?;
    let worker_secret = authrealm_tokens::random_token(32)?;
    let redirect = format!("http://127.0.0.1:{}/callback", free_port()?);

    // The registry as the operator writes it: hashes only.
    let clients = tempfile::tempdir()?;
    let registry = ClientRegistryFile {
        version: FORMAT_VERSION,
        clients: vec![
            ClientEntry {
                redirect_uris: vec![redirect.clone()],
                scopes: ["openid", "email", "profile"].map(str::to_owned).to_vec(),
                display_name: Some("E2E App".to_owned()),
                ..client(
                    "e2e.app",
                    &app_secret,
                    vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
                )
            },
            ClientEntry {
                scopes: vec!["notes.read".to_owned()],
                introspection: true,
                ..client(
                    "e2e.worker",
                    &worker_secret,
                    vec![GrantType::ClientCredentials],
                )
            },
        ],
    };
    std::fs::write(
        clients.path().join(authrealm_tokens::clients::FILE_NAME),
        registry.to_json()?,
    )?;

    let extras = realm::Extras {
        ma_env: vec![(env::ma::CLIENTS_DIR, clients.path().display().to_string())],
        op_env: vec![
            (
                env::op::SESSION_COOKIE_KEY,
                authrealm_tokens::random_token(32)?,
            ),
            // Plain http://127.0.0.1: the only case `Secure` may be off.
            (env::op::SESSION_COOKIE_SECURE, "false".into()),
        ],
        op_public_url: true,
    };
    let realm = realm::start_realm_with(1, extras).await?;
    let op = realm.ops.first().ok_or("the realm has one OP")?;
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/register", op.url))
        .json(&serde_json::json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await?;
    if resp.status().as_u16() != 201 {
        return Err(format!("register: {}", resp.status()).into());
    }
    Ok(Oidc {
        realm,
        _clients: clients,
        app_secret,
        worker_secret,
        redirect,
    })
}

/// Runs `e2e/oidc/flow.mjs` against the realm with the browser `mode`.
async fn run_relying_party(mode: &str) -> TestResult {
    let dir = e2e_dir();
    if !dir.join("node_modules").join("openid-client").is_dir() {
        return Err(format!(
            "{}/node_modules is missing: run `npm ci` there (./scripts/test does)",
            dir.display()
        )
        .into());
    }
    let oidc = start_oidc().await?;
    let out = tokio::process::Command::new("node")
        .arg("flow.mjs")
        .current_dir(&dir)
        .env("AUTHREALM_E2E_ISSUER", &oidc.realm.ma.url)
        .env("AUTHREALM_E2E_CLIENT_ID", "e2e.app")
        .env("AUTHREALM_E2E_CLIENT_SECRET", &oidc.app_secret)
        .env("AUTHREALM_E2E_WORKER_ID", "e2e.worker")
        .env("AUTHREALM_E2E_WORKER_SECRET", &oidc.worker_secret)
        .env("AUTHREALM_E2E_REDIRECT_URI", &oidc.redirect)
        .env("AUTHREALM_E2E_EMAIL", EMAIL)
        .env("AUTHREALM_E2E_PASSWORD", PASSWORD)
        .env("AUTHREALM_E2E_BROWSER", mode)
        .kill_on_drop(true)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    // The processes end here, before the verdict.
    drop(oidc);
    if !out.status.success() || !stdout.lines().any(|l| l == "e2e ok") {
        return Err(format!("the relying party failed ({}): {stderr}", out.status).into());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_runs_every_flow_with_a_plain_form_submit() -> TestResult {
    run_relying_party("http").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_runs_every_flow_with_headless_chromium_on_the_login_page() -> TestResult {
    if !Path::new("/usr/bin/chromium").is_file() {
        return Err(
            "/usr/bin/chromium is missing: ./scripts/test installs it (apt chromium)".into(),
        );
    }
    run_relying_party("chromium").await
}
