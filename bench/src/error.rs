//! The one error type of the harness library.

/// Why a benchmark step could not run (a missed bar is not an error: it is
/// a verdict in the report).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Reading or writing a file, or starting a process.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A process, port or response did not behave as the harness needs.
    #[error("{0}")]
    Setup(String),
    /// Redis answered with an error.
    #[error("redis ({what}): {source}")]
    Redis {
        /// The command that failed.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: redis::RedisError,
    },
    /// Postgres answered with an error.
    #[error("postgres ({what}): {source}")]
    Postgres {
        /// The statement that failed.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: sqlx::Error,
    },
    /// An HTTP call of the harness itself (not of the load) failed.
    #[error("HTTP ({what}): {source}")]
    Http {
        /// The call that failed.
        what: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// JSON between the harness and the generator could not be read or written.
    #[error("JSON ({what}): {source}")]
    Json {
        /// What was being encoded or decoded.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A token could not be signed (key material of the run).
    #[error("signing: {0}")]
    Signing(String),
}

impl BenchError {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    /// An HTTP error with the call that failed.
    pub fn http(what: impl Into<String>, source: reqwest::Error) -> Self {
        Self::Http {
            what: what.into(),
            source,
        }
    }
}

/// The harness's result type.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
