//! The `auth-service` binary: parse the configuration, bind the public,
//! internal and metrics listeners, serve until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = auth_service::Config::parse();
    authrealm_runtime::logging::init(config.log_format);
    let listeners = auth_service::Listeners::bind(&config).await?;
    auth_service::serve_listeners(config, listeners, authrealm_runtime::shutdown::signal())
        .await
        .context("auth-service failed")?;
    Ok(())
}
