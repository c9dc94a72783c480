//! `authrealm-bench`: the benchmark harness that judges AuthRealm.
//!
//! Every bar is a ratio against a reference served the same way in the same
//! run (alternating windows, median and spread), or an absolute figure where
//! the issue fixes one (milliseconds, bytes). The load generator runs in its
//! own process (`bench-load`), pinned to another core than the servers where
//! the machine has one. The growth scenarios grow one dimension at a time
//! (revocations, sessions, users, replicas) and report a curve.

pub mod ab;
pub mod bars;
pub mod cache;
pub mod error;
pub mod job;
pub mod launch;
pub mod load;
pub mod machine;
pub mod probe;
pub mod proc;
pub mod ratios;
pub mod replicas;
pub mod report;
pub mod revocations;
pub mod rig;
pub mod scenarios;
pub mod sessions;
pub mod settings;
pub mod stats;
pub mod users;

pub use error::BenchError;

/// The password every benchmark user has.
pub const PASSWORD: &str = "correct horse battery staple";
/// The audience of every token in the run.
pub const AUDIENCE: &str = "authrealm";
