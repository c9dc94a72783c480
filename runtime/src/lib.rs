//! What every AuthRealm process shares to start and run:
//!
//! - [`env`]: the configuration contract — the `AUTHREALM_*` variable names
//!   the services read and the operator, the local runner, the flow program
//!   and the bench write. One definition of each name.
//! - [`options`]: option types and value parsers shared by both services
//!   (log format, durations).
//! - [`logging`]: the log subscriber every binary installs.
//! - [`shutdown`]: the SIGTERM / Ctrl-C future every server stops on.
//! - [`listener`]: the HTTP server both services run, with header, body and
//!   idle timeouts, a connection cap and graceful shutdown.

pub mod env;
pub mod listener;
pub mod logging;
pub mod options;
pub mod shutdown;

pub use listener::Limits;
pub use options::LogFormat;

/// What can go wrong in the shared runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request body did not arrive within the body read timeout.
    #[error("the request body did not arrive within the body read timeout")]
    BodyTimeout,
}
