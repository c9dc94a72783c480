//! Request and response bodies as the listener hands them on: a request
//! body with a deadline, and a response body that keeps its request counted
//! in flight until hyper has written it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use authrealm_tokens::api::{ErrorBody, codes};
use axum::body::{Body, Bytes};
use axum::response::IntoResponse as _;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{CONNECTION, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::time::{Instant, Sleep};

use super::conn::Tracker;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body that fails once its deadline passes before its end.
pub(super) struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    /// Created on the first wait, so bodies that arrive at once cost no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl TimedBody {
    pub(super) fn new(inner: Incoming, deadline: Instant) -> Self {
        Self {
            inner,
            deadline,
            sleep: None,
            timed_out: Arc::default(),
        }
    }

    /// Set once the deadline has passed with the body unfinished.
    pub(super) fn timed_out_flag(&self) -> Arc<AtomicBool> {
        self.timed_out.clone()
    }
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.timed_out.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|r| r.map_err(Into::into))),
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.timed_out.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(Box::new(crate::Error::BodyTimeout))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Counts a request in flight until dropped (with its response body, or
/// with the request's future when the connection goes away first).
pub(super) struct InFlight(Arc<Tracker>);

impl InFlight {
    pub(super) fn new(tracker: Arc<Tracker>) -> Self {
        Self(tracker)
    }
}

impl InFlight {
    /// The listener's counters.
    pub(super) fn stats(&self) -> &super::ConnectionStats {
        self.0.stats()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// The router's response body, holding its request's [`InFlight`].
pub(super) struct ResponseBody {
    inner: Body,
    _in_flight: InFlight,
}

impl ResponseBody {
    pub(super) fn new(inner: Body, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `408 request_timeout`, closing the connection (the rest of the body may
/// still be on its way; the connection cannot be reused).
pub(super) fn body_timeout_response(limit: Duration) -> Response<Body> {
    let body = ErrorBody::new(
        codes::REQUEST_TIMEOUT,
        format!(
            "the request body did not arrive within {}",
            if limit.as_secs() == 0 {
                format!("{}ms", limit.as_millis())
            } else {
                authrealm_tokens::duration::format(limit)
            }
        ),
    );
    let mut response = (StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}
