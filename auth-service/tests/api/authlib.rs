//! MA checked by Authlib (PyPI), an independent OAuth 2.0 / OpenID Connect
//! library: the discovery document validates as OpenID Provider Metadata,
//! and the ID and access tokens of a real code exchange validate as a
//! code-flow ID token and an RFC 9068 access token, for every algorithm the
//! realm may sign access tokens with. The test installs Authlib with pip
//! when missing and fails (never skips) when it cannot run it.

use std::path::PathBuf;
use std::process::Command;

use authrealm_tokens::SigningAlgorithm;

use crate::helpers::{Backend, TestResult, err};
use crate::oauth_support::{Auth, VERIFIER, WEB_REDIRECT, WEB_SECRET};

fn python_has_authlib() -> bool {
    Command::new("python3")
        .args([
            "-c",
            "import authlib.oidc.discovery, authlib.oidc.rpinitiated, authlib.oauth2.rfc9068, joserfc",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ensure_authlib() -> TestResult {
    if python_has_authlib() {
        return Ok(());
    }
    for extra in [None, Some("--break-system-packages")] {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "pip", "install", "--quiet", "authlib>=1.6"]);
        if let Some(flag) = extra {
            cmd.arg(flag);
        }
        let _ = cmd.status();
        if python_has_authlib() {
            return Ok(());
        }
    }
    Err(err(
        "Authlib cannot be imported or installed (python3 -m pip install authlib): \
         the OpenID conformance check cannot run",
    ))
}

fn run(args: Vec<String>) -> TestResult<(bool, String)> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/verify_authlib.py");
    let out = Command::new("python3").arg(script).args(args).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => Ok((true, stdout)),
        Some(1) => Ok((false, stderr)),
        _ => Err(err(format!("verify_authlib.py failed to run: {stderr}"))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_validates_discovery_id_tokens_and_access_tokens() -> TestResult {
    ensure_authlib()?;
    for alg in [
        SigningAlgorithm::EdDSA,
        SigningAlgorithm::ES256,
        SigningAlgorithm::RS256,
    ] {
        let app = spawn_oauth_with(alg).await?;
        let code = app
            .code_for("default.web", WEB_REDIRECT, "openid email")
            .await?;
        let web = Auth::Basic("default.web", WEB_SECRET);
        let answer = app
            .exchange(web, &code.code, WEB_REDIRECT, VERIFIER)
            .await?;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let args = |nonce: &str, id: String, access: String| {
            vec![
                app.base.clone(),
                "default.web".to_owned(),
                nonce.to_owned(),
                "authrealm".to_owned(),
                id,
                access,
            ]
        };
        let (id, access) = (answer.str("id_token")?, answer.str("access_token")?);
        let a = args("n-0S6_WzA2Mj", id.clone(), access.clone());
        let (ok, out) = tokio::task::spawn_blocking(move || run(a)).await??;
        assert!(ok, "Authlib refused MA ({alg:?}): {out}");
        let checked: serde_json::Value = serde_json::from_str(&out)?;
        assert_eq!(checked["id_token"]["alg"], "RS256");
        assert_eq!(checked["id_token"]["email"], "ada@example.test");
        assert_eq!(checked["access_token"]["typ"], "at+jwt");
        // Authlib really checks: another nonce, or the tokens swapped, are refused.
        let a = args("another-nonce", id.clone(), access.clone());
        let (ok, out) = tokio::task::spawn_blocking(move || run(a)).await??;
        assert!(!ok, "Authlib accepted an ID token for another nonce: {out}");
        let a = args("n-0S6_WzA2Mj", id.clone(), id);
        let (ok, out) = tokio::task::spawn_blocking(move || run(a)).await??;
        assert!(
            !ok,
            "Authlib accepted an ID token as an access token: {out}"
        );
    }
    Ok(())
}

async fn spawn_oauth_with(alg: SigningAlgorithm) -> TestResult<crate::oauth_support::OAuthApp> {
    crate::oauth_support::spawn_oauth_config(Backend::Memory, |c| c.ephemeral_key_alg = alg).await
}
