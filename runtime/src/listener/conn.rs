//! One connection: the hyper HTTP/1.1 connection, a tracker that knows
//! whether a request is in flight and since when the connection waits, and
//! a watchdog that closes it when the header or idle deadline passes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;

use super::body::{InFlight, ResponseBody, TimedBody, body_timeout_response};
use super::{CloseReason, ConnectionStats, Limits, OpenGuard};

/// Largest request head (and read buffer) per connection: bounds the memory
/// a connection can hold. Tokens are at most 8 KiB.
const MAX_BUF_BYTES: usize = 64 * 1024;

/// What the accept loop hands a connection task.
pub(super) struct Accepted {
    pub stream: TcpStream,
    pub remote: SocketAddr,
    pub router: Router,
    pub limits: Limits,
    pub stats: Arc<ConnectionStats>,
    pub stop: watch::Receiver<bool>,
}

/// Serves one connection until the client closes it, a deadline passes, or
/// shutdown has let its last request finish. Holding `_slot` keeps it
/// counted against the cap and as open.
pub(super) async fn serve(a: Accepted, _slot: (OwnedSemaphorePermit, OpenGuard)) {
    let Accepted {
        stream,
        remote,
        router,
        limits,
        stats,
        mut stop,
    } = a;
    let tracker = Arc::new(Tracker::new(
        limits.header_read_timeout,
        limits.idle_timeout,
    ));
    let io = TokioIo::new(TrackedIo {
        inner: stream,
        tracker: tracker.clone(),
    });
    let service = ConnService {
        router,
        remote,
        tracker: tracker.clone(),
        body_timeout: limits.body_read_timeout,
        stats: stats.clone(),
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        // The watchdog below keeps the header deadline (and the idle one, which
        // hyper's own header timer would otherwise also cut short).
        .header_read_timeout(None)
        .max_buf_size(MAX_BUF_BYTES)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let watchdog = watchdog(&tracker);
    tokio::pin!(watchdog);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                break;
            }
            reason = &mut watchdog => {
                stats.count_close(reason);
                tracing::debug!(%remote, reason = reason.as_str(), "connection closed by the server");
                break;
            }
            _ = stop.wait_for(|s| *s), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Where a connection is: how many requests are in flight, and when it
/// started waiting (for its first request head, or idle since its last
/// answer).
struct Phase {
    in_flight: usize,
    since: Instant,
    limit: Duration,
    reason: CloseReason,
    head_started: Option<Instant>,
}

/// Shared by the connection's IO, its service and its watchdog. Updates
/// only record times; the watchdog reads them when its timer fires (no
/// wake-up per request).
pub(super) struct Tracker {
    phase: Mutex<Phase>,
    /// Set while no request is in flight and no byte of the next one has
    /// arrived: the read path takes the lock only on that first byte.
    awaiting_first_byte: AtomicBool,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl Tracker {
    fn new(header_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            phase: Mutex::new(Phase {
                in_flight: 0,
                since: Instant::now(),
                limit: header_timeout,
                reason: CloseReason::HeaderTimeout,
                head_started: None,
            }),
            awaiting_first_byte: AtomicBool::new(true),
            header_timeout,
            idle_timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bytes arrived: the first ones after a wait start the header deadline.
    fn bytes_read(&self) {
        if !self.awaiting_first_byte.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut p = self.lock();
        if p.in_flight == 0 && p.head_started.is_none() {
            p.head_started = Some(Instant::now());
        }
    }

    /// A request head was parsed: no deadline of ours while it is in flight.
    pub(super) fn request_started(&self) {
        {
            let mut p = self.lock();
            p.in_flight += 1;
            p.head_started = None;
        }
        self.awaiting_first_byte.store(false, Ordering::Release);
    }

    /// The answer was written (its body dropped): idle from now on.
    pub(super) fn request_finished(&self) {
        let mut p = self.lock();
        p.in_flight = p.in_flight.saturating_sub(1);
        if p.in_flight == 0 {
            p.since = Instant::now();
            p.limit = self.idle_timeout;
            p.reason = CloseReason::IdleTimeout;
            p.head_started = None;
            self.awaiting_first_byte.store(true, Ordering::Release);
        }
    }

    /// At `now`: the reason to close, or when to look again. That time is
    /// never later than the current deadline, nor more than a header
    /// timeout away — so a deadline that arises meanwhile (a request head
    /// starting, which can only end at or after `now + header timeout`) is
    /// never missed.
    fn check(&self, now: Instant) -> Result<Instant, CloseReason> {
        let p = self.lock();
        let next_look = now + self.header_timeout;
        if p.in_flight > 0 {
            return Ok(next_look);
        }
        let (deadline, reason) = match p.head_started {
            Some(t) => (t + self.header_timeout, CloseReason::HeaderTimeout),
            None => (p.since + p.limit, p.reason),
        };
        if deadline <= now {
            return Err(reason);
        }
        Ok(deadline.min(next_look))
    }
}

/// Resolves when the connection has waited past its current deadline. One
/// timer, re-armed when it fires.
async fn watchdog(tracker: &Tracker) -> CloseReason {
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    loop {
        match tracker.check(Instant::now()) {
            Err(reason) => return reason,
            Ok(at) => {
                timer.as_mut().reset(at);
                timer.as_mut().await;
            }
        }
    }
}

/// The TCP stream, telling the tracker when bytes arrive.
struct TrackedIo {
    inner: TcpStream,
    tracker: Arc<Tracker>,
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.tracker.bytes_read();
        }
        result
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The router as seen by one connection: adds `ConnectInfo`, bounds the
/// body read, and keeps the request counted in flight until its answer is
/// written.
#[derive(Clone)]
struct ConnService {
    router: Router,
    remote: SocketAddr,
    tracker: Arc<Tracker>,
    body_timeout: Duration,
    stats: Arc<ConnectionStats>,
}

type ServiceFuture =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.tracker.request_started();
        let in_flight = InFlight::new(self.tracker.clone());
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(self.remote));
        let body = TimedBody::new(body, Instant::now() + self.body_timeout);
        let timed_out = body.timed_out_flag();
        let req = Request::from_parts(parts, axum::body::Body::new(body));
        let router = self.router.clone();
        let stats = self.stats.clone();
        let body_timeout = self.body_timeout;
        Box::pin(async move {
            let response = match router.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let response = if timed_out.load(Ordering::Acquire) {
                stats.count_close(CloseReason::BodyTimeout);
                body_timeout_response(body_timeout)
            } else {
                response
            };
            Ok(response.map(|b| ResponseBody::new(b, in_flight)))
        })
    }
}
