//! Alternating windows: reference and subject take turns (A, B, A, B…) so
//! that a machine getting busier or quieter affects both alike; each pair
//! gives one ratio, and the report shows their median and spread.

use serde::Serialize;

use crate::error::Result;
use crate::job::{Job, WindowResult};
use crate::launch::Generator;
use crate::stats::Spread;

/// The windows of one comparison.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    /// Reference windows, in order.
    pub a: Vec<WindowResult>,
    /// Subject windows, in order (`b[i]` ran right after `a[i]`).
    pub b: Vec<WindowResult>,
}

/// What one side of a comparison measured over its windows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Side {
    /// Requests per second.
    pub rps: Spread,
    /// Requests per server CPU-second.
    pub per_cpu: Spread,
    /// Median over windows of each window's p50, ms.
    pub p50_ms: f64,
    /// Median over windows of each window's p99, ms.
    pub p99_ms: f64,
    /// Failed requests over all windows.
    pub failed: u64,
    /// The first failure seen.
    pub first_failure: Option<String>,
    /// Share of the machine used by other work.
    pub other_load: Spread,
    /// Share of one core the servers used: well below 1 the generator,
    /// not the server, set the pace.
    pub server_load: Spread,
    /// Some window ran out of fresh tokens.
    pub exhausted: bool,
}

impl Side {
    /// Summarises windows.
    #[must_use]
    pub fn of(windows: &[WindowResult]) -> Self {
        let f =
            |g: fn(&WindowResult) -> f64| Spread::of(&windows.iter().map(g).collect::<Vec<_>>());
        Self {
            rps: f(WindowResult::rps),
            per_cpu: f(WindowResult::per_cpu_sec),
            p50_ms: f(|w| w.p50_ms).median,
            p99_ms: f(|w| w.p99_ms).median,
            failed: windows.iter().map(|w| w.failed).sum(),
            first_failure: windows.iter().find_map(|w| w.first_failure.clone()),
            other_load: f(WindowResult::other_load),
            server_load: f(WindowResult::server_load),
            exhausted: windows.iter().any(|w| w.exhausted),
        }
    }
}

impl Comparison {
    /// The per-pair ratios subject / reference of requests per server CPU-second.
    #[must_use]
    pub fn ratio(&self) -> Spread {
        let r: Vec<f64> = self
            .a
            .iter()
            .zip(&self.b)
            .map(|(a, b)| b.per_cpu_sec() / a.per_cpu_sec().max(1e-9))
            .collect();
        Spread::of(&r)
    }

    /// The reference side.
    #[must_use]
    pub fn reference(&self) -> Side {
        Side::of(&self.a)
    }

    /// The subject side.
    #[must_use]
    pub fn subject(&self) -> Side {
        Side::of(&self.b)
    }
}

/// Runs `pairs` pairs of windows, reference first in each.
///
/// With a CPU of its own, the generator polls for answers rather than
/// sleeping until one arrives. A server's answer to a sleeping generator
/// wakes that CPU, and on a VM whose idle CPUs halt at once (no halt
/// polling) the wake-up is an inter-processor interrupt that the server's
/// CPU pays for in its own time: about a tenth of a verification's request
/// on the machine in the README, and a larger share of OP's than of the
/// bare verifier's in the profile that found it. A client on another
/// machine costs a server no such thing.
///
/// # Errors
/// When the generator fails.
pub async fn alternate(
    generator: &Generator,
    a: &Job,
    b: &Job,
    pairs: usize,
) -> Result<Comparison> {
    let busy = |job: &Job| Job {
        busy_poll: generator.cpus.is_some(),
        ..job.clone()
    };
    let (a, b) = (busy(a), busy(b));
    let mut c = Comparison::default();
    for _ in 0..pairs.max(1) {
        c.a.push(generator.run(&a).await?);
        c.b.push(generator.run(&b).await?);
    }
    Ok(c)
}
