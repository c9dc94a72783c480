//! What one run measures and for how long: the full benchmark, or the smoke
//! run the test command uses (debug build, tiny sizes, bars reported but
//! not judged).

use std::time::Duration;

/// A part of the benchmark that can be run alone (`--only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// The ratio bars: protected request, new token, mint, refresh, login; races; login burst.
    Ratios,
    /// Live revocations in OP's view.
    Revocations,
    /// Sessions and refresh families in Redis.
    Sessions,
    /// Users in Postgres, and the verified-token cache at its cap.
    Users,
    /// Revocation propagation with several OP replicas under load.
    Replicas,
}

impl Part {
    /// Every part, in the order they run.
    pub const ALL: [Self; 5] = [
        Self::Ratios,
        Self::Revocations,
        Self::Sessions,
        Self::Users,
        Self::Replicas,
    ];
}

/// The settings of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Smoke run: debug binaries, tiny sizes.
    pub smoke: bool,
    /// Whether missed bars fail the run (always in a full run).
    pub judge: bool,
    /// A/B pairs per comparison.
    pub pairs: usize,
    /// Discarded lead-in of each window.
    pub warmup: Duration,
    /// Each measured window.
    pub window: Duration,
    /// Connections for throughput windows.
    pub concurrency: usize,
    /// Revoked `jti`s in OP's view, one step per size.
    pub revocation_sizes: Vec<u64>,
    /// Live sessions in Redis, one step per size.
    pub session_sizes: Vec<u64>,
    /// Users in Postgres, one step per size.
    pub user_sizes: Vec<u64>,
    /// OP's verified-token cache cap for the cache measurement.
    pub token_cache_entries: u64,
    /// OP replica counts for propagation.
    pub replicas: Vec<usize>,
    /// Revocations timed per replica count.
    pub propagation_samples: usize,
    /// Concurrent logins in the burst.
    pub burst: usize,
    /// The parts to run.
    pub parts: Vec<Part>,
}

impl Settings {
    /// The full benchmark's defaults.
    #[must_use]
    pub fn full() -> Self {
        Self {
            smoke: false,
            judge: true,
            pairs: 9,
            warmup: Duration::from_millis(500),
            window: Duration::from_secs(3),
            concurrency: 32,
            revocation_sizes: vec![1_000, 10_000, 100_000, 1_000_000],
            session_sizes: vec![10_000, 100_000, 1_000_000],
            user_sizes: vec![10_000, 100_000, 1_000_000],
            token_cache_entries: 100_000,
            replicas: vec![1, 4, 8],
            propagation_samples: 300,
            burst: 200,
            parts: Part::ALL.to_vec(),
        }
    }

    /// The smoke run: the smallest sizes, one short pair, not judged.
    #[must_use]
    pub fn smoke() -> Self {
        Self {
            smoke: true,
            judge: false,
            pairs: 1,
            warmup: Duration::from_millis(100),
            window: Duration::from_millis(300),
            concurrency: 8,
            revocation_sizes: vec![1_000],
            session_sizes: vec![1_000],
            user_sizes: vec![1_000],
            token_cache_entries: 1_000,
            replicas: vec![1, 2],
            propagation_samples: 10,
            burst: 8,
            parts: Part::ALL.to_vec(),
        }
    }

    /// Whether `part` runs.
    #[must_use]
    pub fn runs(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }

    /// Fresh tokens one window may need at most (signed before it starts).
    #[must_use]
    pub fn fresh_tokens_per_window(&self) -> usize {
        let per_sec = if self.smoke { 5_000.0 } else { 50_000.0 };
        ((self.warmup + self.window).as_secs_f64() * per_sec) as usize
    }
}
