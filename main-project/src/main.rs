//! The `main-project` binary: parse the configuration, listen, serve until
//! SIGTERM or Ctrl-C.

use anyhow::Context as _;
use clap::Parser as _;
use main_project::{Config, serve};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    authrealm_runtime::logging::init(config.log_format);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    serve(config, listener, authrealm_runtime::shutdown::signal())
        .await
        .context("main-project failed")?;
    Ok(())
}
