//! The `main-project` binary: parse the configuration, listen on the public
//! and the metrics address (one listener when both are the same address),
//! serve until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use clap::Parser as _;
use main_project::{Config, serve, serve_split};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    authrealm_runtime::logging::init(config.log_format);
    let api = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    if config.metrics_listen == config.listen {
        // Asked for explicitly: everything on the one address.
        serve(config, api, authrealm_runtime::shutdown::signal())
            .await
            .context("main-project failed")?;
        return Ok(());
    }
    let ops = tokio::net::TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (AUTHREALM_METRICS_LISTEN)",
                config.metrics_listen
            )
        })?;
    serve_split(config, api, ops, authrealm_runtime::shutdown::signal())
        .await
        .context("main-project failed")?;
    Ok(())
}
