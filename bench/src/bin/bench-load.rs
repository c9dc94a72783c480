//! `bench-load`: the load generator, a process of its own so that its CPU
//! is never the server's. Reads one [`Job`] as JSON on stdin, runs it, and
//! writes one [`WindowResult`] as JSON on stdout.

use std::io::Read as _;

use anyhow::Context as _;
use authrealm_bench::job::{Job, WindowResult};
use authrealm_bench::load::{self, Plan};
use authrealm_bench::scenarios;

fn main() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the job from stdin")?;
    let job: Job = serde_json::from_str(&input).context("parsing the job")?;
    let scenario = scenarios::build(&job.scenario)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let plan = Plan {
        targets: job.targets,
        server_pids: job.server_pids,
        helper_pids: job.helper_pids,
        concurrency: job.concurrency,
        warmup: std::time::Duration::from_millis(job.warmup_ms),
        window: std::time::Duration::from_millis(job.window_ms),
        max_requests: job.max_requests,
    };
    if job.busy_poll {
        // Never idle: a task that only yields keeps the worker polling its
        // sockets instead of sleeping until an answer wakes it (see
        // `ab::alternate`). It ends with the runtime.
        runtime.spawn(async {
            loop {
                tokio::task::yield_now().await;
            }
        });
    }
    let result: WindowResult = runtime.block_on(load::run(plan, scenario))?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}
