//! The HTTP/1.1 server both services run instead of `axum::serve`: every
//! connection is bounded in time and the connections of a listener in
//! number, so a client that stalls cannot hold the service.
//!
//! - **Headers**: a connection that has sent no complete request head within
//!   [`Limits::header_read_timeout`] of its first byte (or of opening) is closed.
//! - **Body**: a request whose body has not fully arrived within
//!   [`Limits::body_read_timeout`] of its head gets `408 request_timeout`
//!   (`Connection: close`), and the connection is closed.
//! - **Idle**: a keep-alive connection with no request for
//!   [`Limits::idle_timeout`] is closed.
//! - **Count**: at most [`Limits::max_connections`] connections are open;
//!   further ones wait in the kernel's accept queue (not accepted, not
//!   refused) until one closes, and are served then.
//! - **Shutdown**: when the shutdown future completes the listener closes,
//!   idle connections close, requests in flight finish (at most
//!   [`Limits::shutdown_timeout`], then what remains is dropped).
//!
//! Handlers see the peer address as `axum::extract::ConnectInfo<SocketAddr>`.

mod body;
mod conn;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::env;
use crate::options;

/// Per-connection time limits and the connection cap of one listener.
/// A clap argument group: flatten it into a service's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct Limits {
    /// Time a client has to send a request's headers, counted from its first
    /// byte (or from the connection opening); then the connection is closed.
    #[arg(long, env = env::HEADER_READ_TIMEOUT, default_value = "10s", value_parser = options::duration)]
    pub header_read_timeout: Duration,

    /// Time a client has to send a request's whole body, counted from the end
    /// of its headers; then it gets 408 and the connection is closed.
    #[arg(long, env = env::BODY_READ_TIMEOUT, default_value = "10s", value_parser = options::duration)]
    pub body_read_timeout: Duration,

    /// Time an idle keep-alive connection stays open between requests. Keep
    /// it above the idle timeout of any proxy in front (ingress-nginx: 60s),
    /// so the proxy never reuses a connection the service is closing.
    #[arg(long, env = env::IDLE_TIMEOUT, default_value = "75s", value_parser = options::duration)]
    pub idle_timeout: Duration,

    /// Open connections per listener; further ones wait in the accept queue
    /// until one closes.
    #[arg(long, env = env::MAX_CONNECTIONS, default_value_t = 1024)]
    pub max_connections: usize,

    /// Time requests in flight get to finish once shutdown has begun.
    #[arg(long, env = env::SHUTDOWN_TIMEOUT, default_value = "20s", value_parser = options::duration)]
    pub shutdown_timeout: Duration,
}

impl Limits {
    /// The defaults of the flags above (environment ignored): the one place
    /// they are written is the `#[arg]` attributes.
    ///
    /// # Errors
    /// Only if a default above does not parse (a test shows they do).
    pub fn defaults() -> Result<Self, clap::Error> {
        options::args_defaults::<Self>()
    }

    /// Checks the limits, naming the variable of the first bad one.
    ///
    /// # Errors
    /// A message naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        for (value, name) in [
            (self.header_read_timeout, env::HEADER_READ_TIMEOUT),
            (self.body_read_timeout, env::BODY_READ_TIMEOUT),
            (self.idle_timeout, env::IDLE_TIMEOUT),
        ] {
            if value.is_zero() {
                return Err(format!("{name} must be at least 1s"));
            }
        }
        if self.max_connections == 0 {
            return Err(format!("{} must be at least 1", env::MAX_CONNECTIONS));
        }
        if self.max_connections > Semaphore::MAX_PERMITS {
            return Err(format!("{} is too large", env::MAX_CONNECTIONS));
        }
        Ok(())
    }
}

/// Why the server closed a connection (a bounded set: metric label values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The request head did not arrive in time.
    HeaderTimeout,
    /// The request body did not arrive in time (answered 408).
    BodyTimeout,
    /// Idle keep-alive connection.
    IdleTimeout,
}

impl CloseReason {
    /// Every reason, for registering metric label values up front.
    pub const ALL: [Self; 3] = [Self::HeaderTimeout, Self::BodyTimeout, Self::IdleTimeout];

    /// The metric label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout",
            Self::BodyTimeout => "body_timeout",
            Self::IdleTimeout => "idle_timeout",
        }
    }
}

/// Counters of one listener, read by the service's `/metrics` and by tests.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: AtomicUsize,
    peak: AtomicUsize,
    accepted: AtomicU64,
    closed: [AtomicU64; 3],
}

impl ConnectionStats {
    /// Connections open now.
    #[must_use]
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Most connections ever open at once.
    #[must_use]
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    /// Connections accepted since start.
    #[must_use]
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Acquire)
    }

    /// Connections the server closed for `reason` since start.
    #[must_use]
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed[reason as usize].load(Ordering::Acquire)
    }

    fn count_close(&self, reason: CloseReason) {
        self.closed[reason as usize].fetch_add(1, Ordering::AcqRel);
    }

    fn opened(self: &Arc<Self>) -> OpenGuard {
        let now = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::AcqRel);
        self.accepted.fetch_add(1, Ordering::AcqRel);
        OpenGuard(self.clone())
    }
}

/// Counts a connection as open until dropped (also when its task is aborted).
struct OpenGuard(Arc<ConnectionStats>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A bound listener with its limits, ready to serve a router.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    limits: Limits,
    stats: Arc<ConnectionStats>,
}

impl Server {
    /// A server on `listener` with `limits`.
    #[must_use]
    pub fn new(listener: TcpListener, limits: Limits) -> Self {
        Self {
            listener,
            limits,
            stats: Arc::default(),
        }
    }

    /// Counts into `stats` (for example one shared with the service's metrics).
    #[must_use]
    pub fn with_stats(mut self, stats: Arc<ConnectionStats>) -> Self {
        self.stats = stats;
        self
    }

    /// The counters of this listener.
    #[must_use]
    pub fn stats(&self) -> Arc<ConnectionStats> {
        self.stats.clone()
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `router` until `shutdown` completes, then drains (see the
    /// module documentation). Accept errors are logged and retried, never
    /// fatal: the server returns only after shutdown.
    ///
    /// # Errors
    /// Reserved for failures that stop the server; none do today.
    pub async fn serve(
        self,
        router: Router,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let Self {
            listener,
            limits,
            stats,
        } = self;
        let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            while tasks.try_join_next().is_some() {}
            // At the cap, wait for a slot before accepting: newcomers queue
            // in the kernel's backlog instead of being accepted and starved.
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let accepted = tokio::select! {
                r = listener.accept() => r,
                () = &mut shutdown => break,
            };
            let (stream, remote) = match accepted {
                Ok(a) => a,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: wait, then retry.
                    tracing::error!(error = %e, "accepting a connection failed; retrying in 1s");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            };
            let _ = stream.set_nodelay(true);
            let open = stats.opened();
            tasks.spawn(conn::serve(
                conn::Accepted {
                    stream,
                    remote,
                    router: router.clone(),
                    limits,
                    stats: stats.clone(),
                    stop: stop_rx.clone(),
                },
                (permit, open),
            ));
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(limits.shutdown_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                connections = tasks.len(),
                "shutdown timeout reached; dropping the connections still open"
            );
            tasks.shutdown().await;
        }
        Ok(())
    }
}

/// Serves `router` on `listener` with `limits` until `shutdown` completes:
/// [`Server::new`] + [`Server::serve`] in one call.
///
/// # Errors
/// As [`Server::serve`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    Server::new(listener, limits).serve(router, shutdown).await
}

/// Errors of one incoming connection that say nothing about the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_validate() -> Result<(), Box<dyn std::error::Error>> {
        let d = Limits::defaults()?;
        d.validate()?;
        assert_eq!(d.header_read_timeout, Duration::from_secs(10));
        assert_eq!(d.max_connections, 1024);
        Ok(())
    }

    #[test]
    fn zero_limits_are_named() -> Result<(), Box<dyn std::error::Error>> {
        let d = Limits::defaults()?;
        let zero_idle = Limits {
            idle_timeout: Duration::ZERO,
            ..d
        };
        assert!(
            zero_idle
                .validate()
                .is_err_and(|e| e.contains(env::IDLE_TIMEOUT))
        );
        let no_conns = Limits {
            max_connections: 0,
            ..d
        };
        assert!(
            no_conns
                .validate()
                .is_err_and(|e| e.contains(env::MAX_CONNECTIONS))
        );
        Ok(())
    }
}
