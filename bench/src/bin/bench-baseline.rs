//! The baseline of the load harness: a bare axum server on the same stack as
//! the services. `GET /fixed` returns a fixed JSON body; `GET /verify` only
//! runs the shared EdDSA verifier on the bearer token (no revocation, no cache).

use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;

#[derive(Parser, Debug)]
struct Args {
    /// Listen address.
    #[arg(long)]
    listen: std::net::SocketAddr,
    /// JWKS file for `/verify`.
    #[arg(long)]
    jwks: std::path::PathBuf,
    /// Expected issuer.
    #[arg(long)]
    issuer: String,
    /// Expected audience.
    #[arg(long)]
    audience: String,
}

async fn fixed() -> Json<serde_json::Value> {
    Json(serde_json::json!({"sub": "user-1", "sid": "session-1", "exp": 1_900_000_000}))
}

async fn verify(
    State(v): State<Arc<authrealm_tokens::Verifier>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, StatusCode> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let claims = v
        .verify(token, authrealm_tokens::unix_now())
        .map_err(|_| StatusCode::UNAUTHORIZED)?;
    Ok(Json(
        serde_json::json!({"sub": claims.sub, "sid": claims.sid, "exp": claims.exp}),
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let jwks: authrealm_tokens::JwkSet =
        serde_json::from_slice(&std::fs::read(&args.jwks).context("reading the JWKS file")?)
            .context("parsing the JWKS")?;
    let (verifier, _) = authrealm_tokens::Verifier::new(
        &jwks,
        authrealm_tokens::VerifierConfig {
            issuer: args.issuer,
            audience: args.audience,
            leeway_secs: 5,
        },
    );
    let app = Router::new()
        .route("/fixed", get(fixed))
        .route("/verify", get(verify))
        .route("/readyz", get(|| async { "ok" }))
        .with_state(Arc::new(verifier));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
