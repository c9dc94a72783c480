//! One connection: the hyper HTTP/1.1 connection, a tracker that knows
//! whether a request is in flight and since when the connection waits, and
//! a watchdog that closes it when the header or idle deadline passes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::future::RouteFuture;
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::Instant;
use tower::Service as _;

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
        stats.clone(),
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

/// Shared by the connection's IO, its service and its watchdog: how many
/// requests are in flight, and when the connection started waiting (for
/// its first request head, or idle since its last answer). Updates only
/// record times, in atomics (no lock per request); the watchdog reads them
/// when its timer fires (no wake-up per request).
pub(super) struct Tracker {
    /// The times below are nanoseconds after this one.
    base: Instant,
    in_flight: AtomicUsize,
    /// When the current wait began (the connection opened, or its last
    /// answer was written).
    since: AtomicU64,
    /// Whether that wait is an idle one (after an answer): the idle
    /// deadline, else the header one.
    idle: AtomicBool,
    /// When the first byte of the next request head arrived, plus one; 0
    /// while none has.
    head_started: AtomicU64,
    /// Set while no request is in flight and no byte of the next one has
    /// arrived: the read path reads the clock only on that first byte.
    awaiting_first_byte: AtomicBool,
    header_timeout: Duration,
    idle_timeout: Duration,
    /// The listener's counters (a body timeout is counted by the request).
    stats: Arc<ConnectionStats>,
}

impl Tracker {
    fn new(header_timeout: Duration, idle_timeout: Duration, stats: Arc<ConnectionStats>) -> Self {
        Self {
            base: Instant::now(),
            in_flight: AtomicUsize::new(0),
            since: AtomicU64::new(0),
            idle: AtomicBool::new(false),
            head_started: AtomicU64::new(0),
            awaiting_first_byte: AtomicBool::new(true),
            header_timeout,
            idle_timeout,
            stats,
        }
    }

    /// The listener's counters.
    pub(super) fn stats(&self) -> &ConnectionStats {
        &self.stats
    }

    /// `t` as nanoseconds after `base`.
    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// `base` plus `nanos`.
    fn at(&self, nanos: u64) -> Instant {
        self.base + Duration::from_nanos(nanos)
    }

    /// Bytes arrived: the first ones after a wait start the header deadline.
    fn bytes_read(&self) {
        if !self.awaiting_first_byte.swap(false, Ordering::AcqRel) {
            return;
        }
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let started = self.nanos(Instant::now()).saturating_add(1);
            // Only when no head is under way already.
            let _ =
                self.head_started
                    .compare_exchange(0, started, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// A request head was parsed: no deadline of ours while it is in flight.
    pub(super) fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        self.awaiting_first_byte.store(false, Ordering::Release);
    }

    /// The answer was written (its body dropped): idle from now on.
    pub(super) fn request_finished(&self) {
        // The idle wait is recorded before the count drops, so the watchdog
        // never sees no request in flight with the wait of an older one.
        let now = self.nanos(Instant::now());
        self.idle.store(true, Ordering::Release);
        self.since.store(now, Ordering::Release);
        self.head_started.store(0, Ordering::Release);
        let before = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        // Now none in flight (none was, as the lock-based tracker also took it).
        if matches!(before, Ok(1) | Err(_)) {
            self.awaiting_first_byte.store(true, Ordering::Release);
        }
    }

    /// At `now`: the reason to close, or when to look again. That time is
    /// never later than the current deadline, nor more than a header
    /// timeout away — so a deadline that arises meanwhile (a request head
    /// starting, which can only end at or after `now + header timeout`) is
    /// never missed.
    fn check(&self, now: Instant) -> Result<Instant, CloseReason> {
        let next_look = now + self.header_timeout;
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Ok(next_look);
        }
        let (deadline, reason) = match self.head_started.load(Ordering::Acquire) {
            0 if self.idle.load(Ordering::Acquire) => (
                self.at(self.since.load(Ordering::Acquire)) + self.idle_timeout,
                CloseReason::IdleTimeout,
            ),
            0 => (
                self.at(self.since.load(Ordering::Acquire)) + self.header_timeout,
                CloseReason::HeaderTimeout,
            ),
            started => (
                self.at(started.saturating_sub(1)) + self.header_timeout,
                CloseReason::HeaderTimeout,
            ),
        };
        // A request that started while the times were read is in flight:
        // no deadline of ours.
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Ok(next_look);
        }
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
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ConnFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.tracker.request_started();
        let in_flight = InFlight::new(self.tracker.clone());
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(self.remote));
        // A request without a body (most GETs) has nothing to wait for: no
        // deadline, no wrapper.
        let (body, timed_out) = if body.is_end_stream() {
            (axum::body::Body::new(body), None)
        } else {
            let body = TimedBody::new(body, Instant::now() + self.body_timeout);
            let timed_out = body.timed_out_flag();
            (axum::body::Body::new(body), Some(timed_out))
        };
        let req = Request::from_parts(parts, body);
        // `Router` answers `call` at once (its `poll_ready` is always ready).
        let inner = self.router.clone().call(req);
        ConnFuture {
            inner,
            in_flight: Some(in_flight),
            timed_out,
            body_timeout: self.body_timeout,
        }
    }
}

/// [`ConnService`]'s future: the router's, its answer replaced by a 408 when
/// the body timed out, and holding the request's [`InFlight`] until the
/// answer's body does.
pub(super) struct ConnFuture {
    inner: RouteFuture<Infallible>,
    in_flight: Option<InFlight>,
    timed_out: Option<Arc<AtomicBool>>,
    body_timeout: Duration,
}

impl Future for ConnFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let response = match ready!(Pin::new(&mut this.inner).poll(cx)) {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let Some(in_flight) = this.in_flight.take() else {
            // Polled again after it answered: hyper never does.
            return Poll::Pending;
        };
        let response = if this
            .timed_out
            .as_ref()
            .is_some_and(|t| t.load(Ordering::Acquire))
        {
            in_flight.stats().count_close(CloseReason::BodyTimeout);
            body_timeout_response(this.body_timeout)
        } else {
            response
        };
        Poll::Ready(Ok(response.map(|b| ResponseBody::new(b, in_flight))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(75);

    fn tracker() -> Tracker {
        Tracker::new(HEADER, IDLE, Arc::default())
    }

    #[test]
    fn a_new_connection_has_the_header_deadline_from_its_opening() {
        let t = tracker();
        let opened = t.base;
        assert_eq!(t.check(opened), Ok(opened + HEADER));
        assert_eq!(
            t.check(opened + HEADER - Duration::from_millis(1)),
            Ok(opened + HEADER)
        );
        assert_eq!(t.check(opened + HEADER), Err(CloseReason::HeaderTimeout));
    }

    #[test]
    fn no_deadline_while_a_request_is_in_flight_then_the_idle_one() {
        let t = tracker();
        t.bytes_read();
        t.request_started();
        let later = t.base + IDLE * 10;
        // Looked at again a header timeout later, never closed meanwhile.
        assert_eq!(t.check(later), Ok(later + HEADER));
        // Two in flight (a pipelined request): the first answer ends nothing.
        t.request_started();
        t.request_finished();
        assert_eq!(t.check(later), Ok(later + HEADER));
        t.request_finished();
        let finished = Instant::now();
        let next = t.check(finished);
        assert!(
            next.is_ok_and(|at| at > finished && at <= finished + HEADER),
            "{next:?}"
        );
        // Idle: the idle deadline, counted from the answer.
        let idle_end = t.at(t.since.load(Ordering::Acquire)) + IDLE;
        assert!(idle_end >= finished + IDLE - Duration::from_millis(1));
        assert_eq!(t.check(idle_end - Duration::from_millis(1)), Ok(idle_end));
        assert_eq!(t.check(idle_end), Err(CloseReason::IdleTimeout));
        // An answer without a request (never happens) does not wrap the count.
        t.request_finished();
        assert_eq!(t.in_flight.load(Ordering::Acquire), 0);
        assert!(t.check(Instant::now()).is_ok());
    }

    #[test]
    fn the_first_byte_of_a_head_starts_the_header_deadline() {
        let t = tracker();
        t.request_started();
        t.request_finished();
        let idle_since = t.at(t.since.load(Ordering::Acquire));
        // A byte arrives: the header deadline, from that byte, replaces the idle one.
        t.bytes_read();
        let started = t.head_started.load(Ordering::Acquire);
        assert_ne!(started, 0);
        let head_end = t.at(started - 1) + HEADER;
        assert!(head_end >= idle_since + HEADER);
        assert_eq!(t.check(head_end), Err(CloseReason::HeaderTimeout));
        // Later bytes of the same head do not move it.
        t.bytes_read();
        assert_eq!(t.head_started.load(Ordering::Acquire), started);
        // The head completes: no deadline while its request is in flight.
        t.request_started();
        assert_eq!(t.head_started.load(Ordering::Acquire), 0);
        assert_eq!(t.check(head_end), Ok(head_end + HEADER));
    }
}
