//! `authrealm-flow`: runs the end-to-end user flow (or a soak) against running
//! OP and MA services, e.g. port-forwarded from a kind cluster.

use std::time::Duration;

use authrealm_flow::{Targets, soak, steps};
use clap::Parser;

/// Drive AuthRealm's user flow over HTTP.
#[derive(Parser, Debug)]
#[command(name = "authrealm-flow", version)]
struct Args {
    /// OP base URL; repeat for each replica (revocation is checked on every one).
    #[arg(
        long = "op-url",
        env = "AUTHREALM_FLOW_OP_URL",
        required = true,
        value_delimiter = ','
    )]
    op_urls: Vec<String>,
    /// MA base URL (public endpoints: JWKS, discovery).
    #[arg(long = "ma-url", env = "AUTHREALM_FLOW_MA_URL")]
    ma_url: String,
    /// Base URL of an OP replica's metrics listener (`/metrics`).
    #[arg(
        long = "op-metrics-url",
        env = "AUTHREALM_FLOW_OP_METRICS_URL",
        value_delimiter = ','
    )]
    op_metrics_urls: Vec<String>,
    /// Base URL of MA's metrics listener.
    #[arg(long = "ma-metrics-url", env = "AUTHREALM_FLOW_MA_METRICS_URL")]
    ma_metrics_url: String,
    /// Audience the access tokens carry.
    #[arg(long, env = "AUTHREALM_FLOW_AUDIENCE", default_value = "authrealm")]
    audience: String,
    /// Instead of the flow, call the protected API for this long (e.g. `2m`) and fail on any error.
    #[arg(long, value_parser = authrealm_runtime::options::duration)]
    soak: Option<Duration>,
    /// MA's refresh grace window (`AUTHREALM_REFRESH_GRACE`); the flow waits it out to show reuse detection.
    #[arg(long, default_value = "10s", value_parser = authrealm_runtime::options::duration)]
    refresh_grace: Duration,
    /// Concurrent loops in soak mode.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Refresh the soak session this often.
    #[arg(long, default_value = "20s", value_parser = authrealm_runtime::options::duration)]
    refresh_every: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let targets = Targets {
        op: args.op_urls,
        ma: args.ma_url,
        op_metrics: args.op_metrics_urls,
        ma_metrics: args.ma_metrics_url,
    };
    let run_id = authrealm_tokens::random_token(6).map_err(|_| anyhow::anyhow!("no randomness"))?;
    if let Some(duration) = args.soak {
        let report = soak::run(
            &targets,
            &run_id,
            duration,
            args.concurrency,
            args.refresh_every,
        )
        .await?;
        println!(
            "soak: {} ok, {} failed, {} refreshes",
            report.ok, report.failed, report.refreshes
        );
        anyhow::ensure!(
            report.failed == 0,
            "{} protected requests failed",
            report.failed
        );
        return Ok(());
    }
    let opts = steps::FlowOptions {
        audience: args.audience,
        run_id,
        refresh_grace: args.refresh_grace,
    };
    steps::run(&targets, &opts, &|line| println!("ok  {line}")).await?;
    println!("flow: every step passed");
    Ok(())
}
