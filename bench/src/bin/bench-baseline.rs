//! `bench-baseline`: the references the bars are measured against, served
//! the same way as the services (axum on the same stack, pinned to the same
//! CPU): `GET /fixed` returns fixed JSON shaped like OP's `/api/v1/session`
//! answer; `GET /verify` runs the shared verifier on the bearer token (no
//! cache, no revocation) and answers the same shape from its claims; `POST /sign`
//! signs one access token with the run's key; `POST /argon2` runs one
//! argon2id hash on the single hashing thread, one at a time.

use std::sync::Arc;

use anyhow::Context as _;
use authrealm_tokens::AccessClaims;
use authrealm_tokens::keyset::KeySetFile;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use tokio::sync::{mpsc, oneshot};

#[derive(Parser, Debug)]
struct Args {
    /// Listen address.
    #[arg(long)]
    listen: std::net::SocketAddr,
    /// The run's `keyset.json` (its active key signs, its public keys verify).
    #[arg(long)]
    keyset: std::path::PathBuf,
    /// Issuer written and required.
    #[arg(long)]
    issuer: String,
    /// Audience written and required.
    #[arg(long)]
    audience: String,
    /// argon2id memory, KiB (OP's setting).
    #[arg(long)]
    argon2_memory_kib: u32,
    /// argon2id iterations (OP's setting).
    #[arg(long)]
    argon2_iterations: u32,
}

struct App {
    verifier: authrealm_tokens::Verifier,
    signer: jsonwebtoken::EncodingKey,
    header: jsonwebtoken::Header,
    issuer: String,
    audience: String,
    hashes: mpsc::Sender<(Vec<u8>, oneshot::Sender<[u8; 32]>)>,
}

/// The answer of OP's `GET /api/v1/session`, same fields and order.
#[derive(serde::Serialize)]
struct SessionView<'a> {
    sub: &'a str,
    sid: &'a str,
    jti: &'a str,
    iat: i64,
    exp: i64,
    email: Option<&'a str>,
}

async fn fixed() -> Json<SessionView<'static>> {
    // As long as a verified token's view (ids of MA's length).
    Json(SessionView {
        sub: "3f6c1b2e-8d4a-4c1e-9b7f-2a5d6e8f9c01",
        sid: "Xq3vT8pLm2Rk9sWz4yNc1A",
        jti: "Hb7uJd2Kq9Lw3Mx8Pz5Rt1",
        iat: 1_900_000_000,
        exp: 1_900_000_300,
        email: None,
    })
}

/// What any forward-auth answer is: 200 with the identity headers a
/// gateway copies (the seven OP sends, values of a verified token's
/// length) and `Cache-Control: no-store`, no body.
async fn identity() -> Response {
    const HEADERS: [(&str, &str); 8] = [
        ("x-auth-subject", "3f6c1b2e-8d4a-4c1e-9b7f-2a5d6e8f9c01"),
        ("x-auth-session", "Xq3vT8pLm2Rk9sWz4yNc1A"),
        ("x-auth-scope", ""),
        ("x-auth-audience", "authrealm"),
        ("x-auth-email", ""),
        ("x-auth-client-id", ""),
        ("x-auth-expires", "1900000300"),
        ("cache-control", "no-store"),
    ];
    let mut resp = Response::new(axum::body::Body::empty());
    let h = resp.headers_mut();
    h.reserve(HEADERS.len());
    for (name, value) in HEADERS {
        h.insert(
            axum::http::HeaderName::from_static(name),
            axum::http::HeaderValue::from_static(value),
        );
    }
    resp
}

async fn verify(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, StatusCode> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let claims = app
        .verifier
        .verify(token, authrealm_tokens::unix_now())
        .map_err(|_| StatusCode::UNAUTHORIZED)?;
    Ok(Json(SessionView {
        sub: &claims.sub,
        sid: &claims.sid,
        jti: &claims.jti,
        iat: claims.iat,
        exp: claims.exp,
        email: claims.extra.get("email").and_then(|v| v.as_str()),
    })
    .into_response())
}

#[derive(serde::Deserialize)]
struct SignRequest {
    sub: String,
}

async fn sign(
    State(app): State<Arc<App>>,
    Json(req): Json<SignRequest>,
) -> Result<Json<serde_json::Value>, StatusCode> {
    let now = authrealm_tokens::unix_now();
    let random =
        || authrealm_tokens::random_token(16).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR);
    let claims = AccessClaims {
        iss: app.issuer.clone(),
        sub: req.sub,
        aud: app.audience.clone(),
        exp: now + 300,
        iat: now,
        nbf: now,
        jti: random()?,
        sid: random()?,
        extra: serde_json::Map::new(),
    };
    let token = jsonwebtoken::encode(&app.header, &claims, &app.signer)
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(Json(serde_json::json!({"access_token": token})))
}

#[derive(serde::Deserialize)]
struct HashRequest {
    password: String,
}

async fn argon2_hash(
    State(app): State<Arc<App>>,
    Json(req): Json<HashRequest>,
) -> Result<Json<serde_json::Value>, StatusCode> {
    let (tx, rx) = oneshot::channel();
    app.hashes
        .send((req.password.into_bytes(), tx))
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    let out = rx.await.map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(Json(serde_json::json!({"first_byte": out[0]})))
}

/// The one hashing thread: one hash at a time, one reused memory buffer.
fn hashing_thread(
    params: argon2::Params,
    mut jobs: mpsc::Receiver<(Vec<u8>, oneshot::Sender<[u8; 32]>)>,
) {
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut memory = vec![argon2::Block::default(); a.params().block_count()];
    while let Some((password, reply)) = jobs.blocking_recv() {
        let mut out = [0u8; 32];
        if a.hash_password_into_with_memory(&password, b"sixteen byte salt", &mut out, &mut memory)
            .is_ok()
        {
            let _ = reply.send(out);
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let set = KeySetFile::parse(&std::fs::read(&args.keyset).context("reading the key set")?)
        .context("parsing the key set")?;
    let key = set.active().context("the key set has no active key")?;
    let (verifier, _) = authrealm_tokens::Verifier::new(
        &set.jwks().context("public keys of the key set")?,
        authrealm_tokens::VerifierConfig {
            issuer: args.issuer.clone(),
            audience: args.audience.clone(),
            leeway_secs: 5,
        },
    );
    let mut header = jsonwebtoken::Header::new(key.alg.jwt());
    header.kid = Some(key.kid.clone());
    let params = argon2::Params::new(args.argon2_memory_kib, args.argon2_iterations, 1, Some(32))
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let (hashes, jobs) = mpsc::channel(1024);
    std::thread::spawn(move || hashing_thread(params, jobs));
    let app = Arc::new(App {
        verifier,
        signer: key.encoding_key().context("the signing key")?,
        header,
        issuer: args.issuer,
        audience: args.audience,
        hashes,
    });
    let router = Router::new()
        .route("/fixed", get(fixed))
        .route("/identity", get(identity))
        .route("/verify", get(verify))
        .route("/sign", post(sign))
        .route("/argon2", post(argon2_hash))
        .route("/readyz", get(|| async { "ok" }))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    axum::serve(listener, router).await?;
    Ok(())
}
