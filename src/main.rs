//! `cargo run --release` at the repository root: the whole platform on one
//! machine. Starts the auth-service (MA) and the main project (OP) as two HTTP
//! services on 127.0.0.1 with the embedded defaults — SQLite in a data
//! directory, in-memory refresh and revocation store, an ephemeral signing key,
//! a generated service credential — or Postgres/Redis when `DATABASE_URL` /
//! `REDIS_URL` are set. Prints a copy-paste walkthrough; Ctrl-C stops both.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use authrealm_runtime::env;
use clap::Parser;
use tokio::sync::watch;

/// Run AuthRealm locally: auth-service and main-project in one process.
#[derive(Parser, Debug)]
#[command(name = "authrealm", version)]
struct Args {
    /// Where the main project (OP) listens.
    #[arg(long, env = env::local::OP_LISTEN, default_value = "127.0.0.1:8080")]
    op_listen: SocketAddr,
    /// Where the auth-service (MA) listens.
    #[arg(long, env = env::local::MA_LISTEN, default_value = "127.0.0.1:8081")]
    ma_listen: SocketAddr,
    /// Directory for the SQLite database (created on first start, kept across restarts).
    #[arg(long, env = env::local::DATA_DIR, default_value = "data")]
    data_dir: PathBuf,
    /// Postgres instead of SQLite.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Redis for refresh families and revocations instead of memory.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    authrealm_runtime::logging::init(authrealm_runtime::LogFormat::Text);

    let credential = authrealm_tokens::ServiceCredential::generate()
        .map_err(|_| anyhow::anyhow!("the system random source is unavailable"))?;
    let ma_url = format!("http://{}", args.ma_listen);
    let op_url = format!("http://{}", args.op_listen);

    let mut ma = auth_service::Config::local()?;
    ma.listen = args.ma_listen;
    ma.issuer.clone_from(&ma_url);
    ma.service_credential = Some(credential.clone());
    ma.redis_url = args.redis_url.clone().map(Into::into);

    let mut op = main_project::Config::local();
    op.listen = args.op_listen;
    op.auth_service_url.clone_from(&ma_url);
    op.issuer.clone_from(&ma_url);
    op.service_credential = Some(credential);
    op.redis_url.clone_from(&args.redis_url);
    // Plain http:// on loopback: browsers drop `Secure` cookies there, and
    // OP accepts the setting only on a loopback listener.
    op.session_cookie_secure = !args.op_listen.ip().is_loopback();
    let database = if let Some(url) = &args.database_url {
        op.database_url.clone_from(url);
        "Postgres (DATABASE_URL)".to_owned()
    } else {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
        let file = args.data_dir.join("main-project.db");
        op.database_url = format!("sqlite://{}?mode=rwc", file.display());
        format!("SQLite at {}", file.display())
    };

    // Bind both before serving, so OP's first JWKS fetch finds MA listening.
    let ma_listener = tokio::net::TcpListener::bind(ma.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (auth-service); set --ma-listen",
                ma.listen
            )
        })?;
    let op_listener = tokio::net::TcpListener::bind(op.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (main-project); set --op-listen",
                op.listen
            )
        })?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut ma_task = tokio::spawn(auth_service::serve(
        ma,
        ma_listener,
        stopped(stop_rx.clone()),
    ));
    let mut op_task = tokio::spawn(main_project::serve(op, op_listener, stopped(stop_rx)));

    let store = if args.redis_url.is_some() {
        "Redis (REDIS_URL)"
    } else {
        "in memory"
    };
    println!("{}", walkthrough(&op_url, &ma_url, &database, store));

    // Run until Ctrl-C, or until one service stops on its own (then stop the other).
    let early = tokio::select! {
        r = tokio::signal::ctrl_c() => { r.context("cannot listen for Ctrl-C")?; None }
        r = &mut ma_task => Some(finished("auth-service", r)),
        r = &mut op_task => Some(finished("main-project", r)),
    };
    println!("stopping…");
    let _ = stop_tx.send(true);
    if let Some(result) = early {
        result?;
        anyhow::bail!("a service stopped unexpectedly");
    }
    let (ma_result, op_result) = tokio::join!(ma_task, op_task);
    finished("auth-service", ma_result)?;
    finished("main-project", op_result)?;
    Ok(())
}

/// The outcome of a service task, with the service named in any error.
fn finished<E>(
    name: &str,
    joined: Result<Result<(), E>, tokio::task::JoinError>,
) -> anyhow::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    joined
        .with_context(|| format!("{name} task panicked"))?
        .with_context(|| format!("{name} failed"))
}

fn walkthrough(op: &str, ma: &str, database: &str, store: &str) -> String {
    format!(
        r#"
AuthRealm is running.
  main-project (OP)   {op}   /api/v1/...  /healthz /readyz /metrics  (API description: {op}/api/v1/openapi.json)
  auth-service (MA)   {ma}   /.well-known/jwks.json  /.well-known/openid-configuration  /metrics
  users database      {database}
  refresh/revocation  {store}
  signing key         ephemeral Ed25519 (new on every start)

Try it (paste into another shell):

  OP={op}
  curl -s -X POST $OP/api/v1/register -H 'content-type: application/json' \
       -d '{{"email":"ada@example.com","password":"correct horse battery staple"}}'; echo
  PAIR=$(curl -s -X POST $OP/api/v1/login -H 'content-type: application/json' \
       -d '{{"email":"ada@example.com","password":"correct horse battery staple"}}')
  ACCESS=$(echo "$PAIR" | grep -o '"access_token":"[^"]*"' | cut -d'"' -f4)
  REFRESH=$(echo "$PAIR" | grep -o '"refresh_token":"[^"]*"' | cut -d'"' -f4)
  curl -s $OP/api/v1/me -H "authorization: Bearer $ACCESS"; echo
  curl -s -X POST $OP/api/v1/notes -H "authorization: Bearer $ACCESS" -H 'content-type: application/json' \
       -d '{{"title":"first note","body":"hello"}}'; echo
  PAIR=$(curl -s -X POST $OP/api/v1/token/refresh -H 'content-type: application/json' \
       -d "{{\"refresh_token\":\"$REFRESH\"}}")
  ACCESS=$(echo "$PAIR" | grep -o '"access_token":"[^"]*"' | cut -d'"' -f4)
  curl -s -o /dev/null -w 'logout: %{{http_code}}\n' -X POST $OP/api/v1/logout -H "authorization: Bearer $ACCESS"
  curl -s $OP/api/v1/me -H "authorization: Bearer $ACCESS"; echo    # rejected: token_revoked

Ctrl-C stops both services.
"#
    )
}
