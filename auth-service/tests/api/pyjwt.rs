//! Tokens verify with an independent JWT library: PyJWT (with `cryptography`)
//! fetches the discovery document and JWKS over HTTP and checks each token,
//! for every algorithm MA signs with. The test installs PyJWT when missing
//! and fails (never skips) when it cannot run it.

use std::path::PathBuf;
use std::process::Command;

use auth_service::Clock;
use authrealm_tokens::SigningAlgorithm;

use crate::helpers::{Backend, TestResult, err, spawn_with, test_config};

fn python_has_pyjwt() -> bool {
    Command::new("python3")
        .args(["-c", "import jwt, cryptography; jwt.PyJWKClient"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ensure_pyjwt() -> TestResult {
    if python_has_pyjwt() {
        return Ok(());
    }
    let base = ["-m", "pip", "install", "--quiet", "pyjwt", "cryptography"];
    for extra in [None, Some("--break-system-packages")] {
        let mut cmd = Command::new("python3");
        cmd.args(base);
        if let Some(flag) = extra {
            cmd.arg(flag);
        }
        let _ = cmd.status();
        if python_has_pyjwt() {
            return Ok(());
        }
    }
    Err(err(
        "PyJWT cannot be imported or installed (python3 -m pip install pyjwt cryptography): \
         the independent verification test cannot run",
    ))
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/verify_pyjwt.py")
}

fn run_pyjwt(issuer: &str, audience: &str, token: &str) -> TestResult<(bool, String)> {
    let out = Command::new("python3")
        .arg(script())
        .args([issuer, audience, token])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => Ok((true, stdout)),
        Some(1) => Ok((false, stderr)),
        _ => Err(err(format!("verify_pyjwt.py failed to run: {stderr}"))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_verify_with_pyjwt_for_every_algorithm() -> TestResult {
    ensure_pyjwt()?;
    for alg in [
        SigningAlgorithm::EdDSA,
        SigningAlgorithm::ES256,
        SigningAlgorithm::RS256,
    ] {
        let mut config = test_config(Backend::Memory)?;
        config.ephemeral_key_alg = alg;
        let app = spawn_with(config, Clock::System).await?;
        let pair = app.mint("olga").await?;
        let refreshed = app.refresh_ok(&pair.refresh_token).await?;
        for token in [&pair.access_token, &refreshed.access_token] {
            // The shared verifier (jsonwebtoken) ...
            let claims = app
                .verifier()
                .await?
                .verify(token, authrealm_tokens::unix_now())?;
            assert_eq!(claims.sub, "olga");
            // ... and PyJWT agree.
            let base = app.base.clone();
            let aud = app.config.audience.clone();
            let t = token.clone();
            let (ok, out) =
                tokio::task::spawn_blocking(move || run_pyjwt(&base, &aud, &t)).await??;
            assert!(ok, "PyJWT refused a {alg:?} token: {out}");
            let parsed: serde_json::Value = serde_json::from_str(&out)?;
            assert_eq!(parsed["claims"]["sub"], "olga");
            assert_eq!(parsed["claims"]["sid"], pair.session_id.as_str());
            assert_eq!(parsed["claims"]["email"], "olga@example.test");
        }
        // PyJWT really checks: a token with a changed payload is refused.
        let mut parts: Vec<String> = pair.access_token.split('.').map(str::to_owned).collect();
        let claims = app
            .verifier()
            .await?
            .verify(&pair.access_token, authrealm_tokens::unix_now())?;
        let mut forged = serde_json::to_value(&claims)?;
        forged["sub"] = serde_json::json!("mallory");
        use base64::Engine as _;
        parts[1] =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged)?);
        let tampered = parts.join(".");
        let base = app.base.clone();
        let aud = app.config.audience.clone();
        let (ok, out) =
            tokio::task::spawn_blocking(move || run_pyjwt(&base, &aud, &tampered)).await??;
        assert!(!ok, "PyJWT accepted a tampered {alg:?} token: {out}");
    }
    Ok(())
}
