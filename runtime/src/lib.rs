//! What every AuthRealm process shares to start and run:
//!
//! - [`env`]: the configuration contract — the `AUTHREALM_*` variable names
//!   the services read and the operator, the local runner, the flow program
//!   and the bench write. One definition of each name.
//! - [`options`]: option types and value parsers shared by both services
//!   (log format, durations).
//! - [`logging`]: the log subscriber every binary installs.
//! - [`shutdown`]: the SIGTERM / Ctrl-C future every server stops on.

pub mod env;
pub mod logging;
pub mod options;
pub mod shutdown;

pub use options::LogFormat;
