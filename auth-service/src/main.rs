//! The `auth-service` binary: parse the configuration, bind, serve until
//! SIGTERM or Ctrl-C.

use anyhow::Context as _;
use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = auth_service::Config::parse();
    authrealm_runtime::logging::init(config.log_format);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    auth_service::serve(config, listener, authrealm_runtime::shutdown::signal())
        .await
        .context("auth-service failed")?;
    Ok(())
}
