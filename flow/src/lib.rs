//! The end-to-end user flow of AuthRealm, driven over HTTP against base URLs
//! it is given: the same program runs against local processes in the test
//! command and against a kind cluster in `e2e/kind.sh`.

pub mod client;
pub mod processes;
pub mod soak;
pub mod steps;

/// Why the flow (or its setup) failed. Messages say which step and what was seen.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// A step saw something other than what a user should see.
    #[error("step {step:?} failed: {detail}")]
    Step {
        /// The step's name.
        step: &'static str,
        /// Expected versus seen.
        detail: String,
    },
    /// An HTTP call failed outright.
    #[error("HTTP call failed in step {step:?}")]
    Http {
        /// The step's name.
        step: &'static str,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// Starting processes or building binaries failed.
    #[error("setup: {0}")]
    Setup(String),
}

/// Where the services under test are.
#[derive(Debug, Clone)]
pub struct Targets {
    /// Base URLs of OP replicas (at least one; revocation is checked on each).
    pub op: Vec<String>,
    /// Base URL of MA's public endpoints (JWKS, discovery).
    pub ma: String,
    /// Base URLs of the OP replicas' metrics listeners (`/metrics`), in the
    /// order of [`Targets::op`].
    pub op_metrics: Vec<String>,
    /// Base URL of MA's metrics listener.
    pub ma_metrics: String,
}

impl Targets {
    /// One shared HTTP client with `timeout`, as a client per OP replica
    /// (never empty) and one for MA.
    ///
    /// # Errors
    /// [`FlowError::Setup`] when no OP URL is given or the client cannot be built.
    pub fn clients(
        &self,
        timeout: std::time::Duration,
    ) -> Result<(Vec<client::Api>, client::Api), FlowError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| FlowError::Setup(e.to_string()))?;
        if self.op.is_empty() {
            return Err(FlowError::Setup("no OP URL given".into()));
        }
        let ops = self
            .op
            .iter()
            .map(|u| client::Api::new(http.clone(), u))
            .collect();
        Ok((ops, client::Api::new(http, &self.ma)))
    }

    /// Clients of the first OP replica's and of MA's metrics listeners.
    ///
    /// # Errors
    /// [`FlowError::Setup`] when no OP metrics URL is given or the client
    /// cannot be built.
    pub fn metrics_clients(
        &self,
        timeout: std::time::Duration,
    ) -> Result<(client::Api, client::Api), FlowError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| FlowError::Setup(e.to_string()))?;
        let op = self
            .op_metrics
            .first()
            .ok_or_else(|| FlowError::Setup("no OP metrics URL given".into()))?;
        Ok((
            client::Api::new(http.clone(), op),
            client::Api::new(http, &self.ma_metrics),
        ))
    }
}
