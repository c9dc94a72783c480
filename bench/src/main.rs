//! `authrealm-bench`: runs the benchmark, writes the results file (and the
//! README's embedded copy), and exits non-zero naming every missed bar.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use authrealm_bench::bars;
use authrealm_bench::machine::{NoiseMonitor, RunMeta, wait_for_quiet};
use authrealm_bench::report::{self, PartReport, Report};
use authrealm_bench::rig::{Binaries, Rig};
use authrealm_bench::settings::{Part, Settings};
use authrealm_bench::stats::Spread;
use authrealm_bench::{ratios, replicas, revocations, sessions, users};
use clap::Parser;

/// Measure AuthRealm against references served the same way, grow its
/// work one dimension at a time, and fail when a bar is missed.
#[derive(Parser, Debug)]
#[command(name = "authrealm-bench")]
#[allow(clippy::struct_excessive_bools)]
struct Args {
    /// Smoke run for the test command: debug build, tiny sizes, bars not judged.
    #[arg(long)]
    smoke: bool,
    /// Judge the bars even in a smoke run.
    #[arg(long)]
    judge: bool,
    /// A/B pairs per comparison [default: 9].
    #[arg(long)]
    pairs: Option<usize>,
    /// Seconds measured per window [default: 3].
    #[arg(long)]
    window: Option<f64>,
    /// Seconds of discarded warm-up before each window [default: 0.5].
    #[arg(long)]
    warmup: Option<f64>,
    /// Connections for throughput windows [default: 32].
    #[arg(long)]
    concurrency: Option<usize>,
    /// Revoked jtis in OP's view, one step per size [default: 1000,10000,100000,1000000].
    #[arg(long, value_delimiter = ',')]
    revocation_sizes: Option<Vec<u64>>,
    /// Live sessions in Redis, one step per size [default: 10000,100000,1000000].
    #[arg(long, value_delimiter = ',')]
    session_sizes: Option<Vec<u64>>,
    /// Users in Postgres, one step per size [default: 10000,100000,1000000].
    #[arg(long, value_delimiter = ',')]
    user_sizes: Option<Vec<u64>>,
    /// OP's verified-token cache cap for the cache measurement [default: 100000].
    #[arg(long)]
    token_cache_entries: Option<u64>,
    /// OP replica counts for propagation [default: 1,4,8].
    #[arg(long, value_delimiter = ',')]
    replicas: Option<Vec<usize>>,
    /// Revocations timed per replica count [default: 300].
    #[arg(long)]
    propagation_samples: Option<usize>,
    /// Concurrent logins in the burst [default: 200].
    #[arg(long)]
    burst: Option<usize>,
    /// Run only these parts.
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Option<Vec<Part>>,
    /// Override a bar's threshold: `--bar protected=0.9` (repeatable).
    #[arg(long = "bar", value_parser = bars::parse_override)]
    bars: Vec<(String, f64)>,
    /// Wait up to this many seconds for other work to use less than --quiet-below of the machine.
    #[arg(long, default_value_t = 0.0)]
    quiet_wait: f64,
    /// The share of the machine other work may use for it to count as quiet.
    #[arg(long, default_value_t = 0.25)]
    quiet_below: f64,
    /// Write the Markdown results here.
    #[arg(long, default_value = "target/bench/RESULTS.md")]
    results: PathBuf,
    /// Write the JSON results here.
    #[arg(long, default_value = "target/bench/results.json")]
    json: PathBuf,
    /// Embed the results in this README, between its bench-results markers.
    #[arg(long)]
    readme: Option<PathBuf>,
    /// How the run was started, for the report (scripts/bench passes its own command line).
    #[arg(long, hide = true)]
    command: Option<String>,
}

impl Args {
    fn settings(&self) -> Settings {
        let mut s = if self.smoke {
            Settings::smoke()
        } else {
            Settings::full()
        };
        s.judge = s.judge || self.judge;
        macro_rules! take {
            ($f:ident) => {
                if let Some(v) = self.$f.clone() {
                    s.$f = v;
                }
            };
        }
        take!(pairs);
        take!(concurrency);
        take!(revocation_sizes);
        take!(session_sizes);
        take!(user_sizes);
        take!(token_cache_entries);
        take!(replicas);
        take!(propagation_samples);
        take!(burst);
        if let Some(w) = self.window {
            s.window = Duration::from_secs_f64(w.max(0.05));
        }
        if let Some(w) = self.warmup {
            s.warmup = Duration::from_secs_f64(w.max(0.0));
        }
        if let Some(p) = self.only.clone() {
            s.parts = p;
        }
        s
    }
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the harness executable")?;
    let path = exe.with_file_name(name);
    anyhow::ensure!(
        path.exists(),
        "{} is missing: build the whole bench package (cargo build -p authrealm-bench)",
        path.display()
    );
    Ok(path)
}

async fn run_part(rig: &Rig, part: Part) -> Result<PartReport, authrealm_bench::BenchError> {
    match part {
        Part::Ratios => ratios::run(rig).await,
        Part::Revocations => revocations::run(rig).await,
        Part::Sessions => sessions::run(rig).await,
        Part::Users => users::run(rig).await,
        Part::Replicas => replicas::run(rig).await,
    }
}

async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn write(path: &PathBuf, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let settings = args.settings();
    let overrides: HashMap<String, f64> = args.bars.iter().cloned().collect();
    let postgres = std::env::var("DATABASE_URL").context(
        "DATABASE_URL is not set (a Postgres server to create databases on): run ./scripts/bench",
    )?;
    let command = args.command.clone().unwrap_or_else(|| {
        let a: Vec<String> = std::env::args().skip(1).collect();
        format!("authrealm-bench {}", a.join(" ")).trim().to_owned()
    });

    eprintln!(
        "building the service binaries ({})…",
        if settings.smoke { "debug" } else { "release" }
    );
    let services = authrealm_flow::processes::Binaries::build(!settings.smoke)?;
    let bins = Binaries {
        auth_service: services.auth_service,
        main_project: services.main_project,
        baseline: sibling("bench-baseline")?,
        generator: sibling("bench-load")?,
    };
    let quiet = if args.quiet_wait > 0.0 {
        eprintln!(
            "waiting for a quiet machine (up to {:.0} s)…",
            args.quiet_wait
        );
        let (wait, below) = (Duration::from_secs_f64(args.quiet_wait), args.quiet_below);
        tokio::task::spawn_blocking(move || wait_for_quiet(wait, below)).await?
    } else {
        "Did not wait for a quiet machine.".to_owned()
    };
    let started = Instant::now();
    let noise = NoiseMonitor::start(Duration::from_secs(2));
    let method = format!(
        "{} alternating pair(s) of {:.1} s windows after {:.1} s warm-up, {} keep-alive connections (login: 4)",
        settings.pairs.max(1),
        settings.window.as_secs_f64(),
        settings.warmup.as_secs_f64(),
        settings.concurrency
    );
    let build = if settings.smoke { "debug" } else { "release" };
    let rig = Rig::new(bins, postgres, settings.clone()).await?;
    let mut meta = RunMeta::probe(command, build, rig.pinning.describe(), method);
    meta.quiet = quiet;

    let work = async {
        let (mut sections, mut measured, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        let mut peaks = Vec::new();
        for part in Part::ALL {
            if !settings.runs(part) {
                continue;
            }
            eprintln!("{part:?}…");
            match run_part(&rig, part).await {
                Ok(r) => {
                    sections.extend(r.sections);
                    measured.extend(r.bars);
                    peaks.extend(r.peaks);
                }
                Err(e) => {
                    eprintln!("{part:?} could not run: {e}");
                    errors.push(format!("{part:?}: {e}"));
                }
            }
        }
        if !peaks.is_empty() {
            sections.push(report::peak_section(&peaks));
        }
        (sections, measured, errors)
    };
    // Interrupted, the parts' futures are dropped, which stops every process
    // they started; then the databases are dropped.
    let (sections, measured, errors) = tokio::select! {
        done = work => done,
        () = interrupted() => {
            eprintln!("interrupted: stopping this run's processes and dropping its databases");
            rig.cleanup().await;
            return Ok(ExitCode::from(130));
        }
    };
    rig.cleanup().await;
    meta.load_end = authrealm_bench::proc::loadavg().unwrap_or_default();
    meta.duration_secs = started.elapsed().as_secs_f64();
    meta.other_load = Spread::of(
        &rig.generator
            .other_loads
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default(),
    );
    meta.other_processes = noise.finish(6);
    drop(rig);

    let report = Report {
        meta,
        bars: bars::judge(measured, &overrides, settings.judge),
        sections,
        errors,
    };
    let markdown = report.markdown();
    write(&args.results, &markdown)?;
    write(&args.json, &serde_json::to_string_pretty(&report)?)?;
    if let Some(readme) = &args.readme {
        let text = std::fs::read_to_string(readme)
            .with_context(|| format!("reading {}", readme.display()))?;
        let spliced = report::splice(&text, &markdown)
            .map_err(|e| anyhow::anyhow!("{}: {e}", readme.display()))?;
        write(readme, &spliced)?;
    }
    println!("{markdown}");
    eprintln!(
        "results: {} (JSON: {})",
        args.results.display(),
        args.json.display()
    );

    let missed = report.missed();
    for b in &missed {
        eprintln!(
            "MISSED BAR `{}`: {} = {:.3}{}, required {}",
            b.measured.id,
            b.measured.what,
            b.measured.value,
            b.measured.unit,
            b.requirement()
        );
    }
    for e in &report.errors {
        eprintln!("PART FAILED: {e}");
    }
    if missed.is_empty() && report.errors.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} bar(s) missed, {} part(s) failed",
            missed.len(),
            report.errors.len()
        );
        Ok(ExitCode::FAILURE)
    }
}
