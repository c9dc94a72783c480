//! What the harness asks of the load generator (`bench-load`), and what the
//! generator reports back: one measured window, as JSON over stdin/stdout.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One measured window (or one fixed number of requests) of one scenario.
#[derive(Clone, Serialize, Deserialize)]
pub struct Job {
    /// Servers to load; connection `i` goes to `targets[i % len]`.
    pub targets: Vec<SocketAddr>,
    /// Processes whose CPU time is the subject's (read from `/proc`).
    pub server_pids: Vec<u32>,
    /// The harness's helpers (its Redis): their CPU is not "other load".
    pub helper_pids: Vec<u32>,
    /// Keep-alive connections, each sending its next request when the last answered.
    pub concurrency: usize,
    /// Discarded lead-in, milliseconds.
    pub warmup_ms: u64,
    /// Measured window, milliseconds (with `max_requests`: the time limit).
    pub window_ms: u64,
    /// Stop after this many successful requests instead of at the window's end.
    pub max_requests: Option<u64>,
    /// What each request is.
    pub scenario: ScenarioSpec,
    /// Keep the generator's CPU busy between answers (polling for them
    /// instead of sleeping until one arrives). Only where the generator has
    /// a CPU of its own: see [`crate::ab::alternate`].
    #[serde(default)]
    pub busy_poll: bool,
}

/// The request mix of a job. Secrets in here (the run's service credential)
/// are generated for the run and never printed.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScenarioSpec {
    /// `GET path`, with one fixed bearer token or none.
    Get {
        /// Request path.
        path: String,
        /// Bearer token sent on every request.
        bearer: Option<String>,
    },
    /// `GET path` with a token never sent before on every request (or, with
    /// `sends_each` above 1, each token that many times in a row): the
    /// generator signs `tokens` of them before the window starts.
    FreshTokens {
        /// Request path.
        path: String,
        /// `keyset.json` holding the run's signing key.
        keyset: PathBuf,
        /// `iss` of the tokens.
        issuer: String,
        /// How many tokens to sign.
        tokens: usize,
        /// Requests per token (1: a new token each request).
        sends_each: usize,
    },
    /// MA `POST /v1/tokens` for a new subject each time, shaped like OP's
    /// login: a UUID as `sub` and the user's email as a claim.
    Mint {
        /// The run's service credential.
        credential: String,
        /// Makes the subjects and emails of this run unlike any other's.
        sub_prefix: String,
    },
    /// MA `POST /v1/tokens/refresh`: each connection mints one session, then
    /// spends the refresh token it got last.
    Refresh {
        /// The run's service credential.
        credential: String,
    },
    /// Baseline `POST /sign`: sign one EdDSA token, nothing else.
    Sign,
    /// Baseline `POST /argon2`: one argon2id hash on the single hashing thread.
    Argon2,
    /// OP `POST /api/v1/login` with the right password.
    Login {
        /// `{i}` in it is replaced by a random number below `users` (or kept as is when 0).
        email_pattern: String,
        /// How many seeded users to pick from.
        users: u64,
        /// The password.
        password: String,
    },
    /// OP `POST /api/v1/register` of a new address each time.
    Register {
        /// Distinguishes this window's addresses from every other's.
        tag: String,
        /// The password.
        password: String,
    },
}

/// What one window measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WindowResult {
    /// Requests answered as expected within the window.
    pub ok: u64,
    /// Unexpected statuses and transport errors within the window.
    pub failed: u64,
    /// The first failure seen (status code or error kind), for the report.
    pub first_failure: Option<String>,
    /// Length of the measured window, seconds.
    pub wall_secs: f64,
    /// CPU time of the server processes during the window, seconds.
    pub server_cpu_secs: f64,
    /// CPU time of the generator itself during the window, seconds.
    pub generator_cpu_secs: f64,
    /// CPU time of the harness's helpers during the window, seconds.
    pub helper_cpu_secs: f64,
    /// Busy CPU time of the whole machine during the window, seconds.
    pub machine_busy_secs: f64,
    /// CPUs of the machine.
    pub machine_cpus: usize,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest answer.
    pub max_ms: f64,
    /// Fresh tokens ran out and some were sent twice.
    pub exhausted: bool,
}

impl WindowResult {
    /// Answered requests per wall-clock second.
    #[must_use]
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.wall_secs.max(1e-9)
    }

    /// Answered requests per second of the server's CPU time: the figure
    /// that stays comparable when the machine is shared.
    #[must_use]
    pub fn per_cpu_sec(&self) -> f64 {
        self.ok as f64 / self.server_cpu_secs.max(1e-3)
    }

    /// CPU used by everything that is not this run, as a share of the
    /// machine (0 = quiet, 1 = every core busy with other work).
    #[must_use]
    pub fn other_load(&self) -> f64 {
        let ours = self.server_cpu_secs + self.generator_cpu_secs + self.helper_cpu_secs;
        let capacity = self.wall_secs * self.machine_cpus.max(1) as f64;
        ((self.machine_busy_secs - ours) / capacity.max(1e-9)).clamp(0.0, 1.0)
    }

    /// Share of one core the servers used (a busy-polling generator uses
    /// all of its own, so this is what tells whether it kept up).
    #[must_use]
    pub fn server_load(&self) -> f64 {
        self.server_cpu_secs / self.wall_secs.max(1e-9)
    }
}
