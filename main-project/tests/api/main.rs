//! OP's integration tests, one binary: OP and an in-process MA over real
//! HTTP, on Postgres + Redis and on SQLite + memory (the same test bodies).

/// Runs one test body twice: on Postgres + Redis and on SQLite + memory,
/// as two tests with the names given.
macro_rules! both_modes {
    ($body:ident: $postgres_redis:ident, $sqlite_memory:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres_redis() -> $crate::helpers::TestResult {
            $body($crate::helpers::Mode::PostgresRedis).await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite_memory() -> $crate::helpers::TestResult {
            $body($crate::helpers::Mode::SqliteMemory).await
        }
    };
}

mod bad_input;
mod faults;
mod flow;
mod forward_auth;
mod helpers;
mod hostile;
mod keys;
mod limits;
mod oidc;
mod oidc_support;
mod ports;
mod properties;
mod redis_loss;
mod revocation_load;
mod revocation_log;
