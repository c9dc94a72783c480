//! The layers every request of OP passes: [`BodyLimitLayer`] (the body
//! size limit of the body extractors), [`TrackLayer`] (the request-duration
//! histogram by method, route template and status) and [`NoStoreLayer`]
//! (`Cache-Control: no-store` on the answers of the routes that carry
//! tokens or a user's data).
//!
//! Written as plain tower layers rather than `axum::middleware::from_fn`:
//! their futures wrap the route's own future, so a request costs no boxed
//! service clone and no boxed future per layer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::body::HttpBody as _;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use prometheus::HistogramVec;
use tower::{Layer, Service};

/// [`DefaultBodyLimit`] for the requests that have a body: a request whose
/// body is already at its end (a GET, `Content-Length: 0`) has nothing for
/// the limit to bound, so it skips the extension (an allocation, and a
/// grown extension map, per request).
#[derive(Clone, Copy)]
pub(super) struct BodyLimitLayer {
    limit: DefaultBodyLimit,
}

impl BodyLimitLayer {
    pub(super) fn new(max_bytes: usize) -> Self {
        Self {
            limit: DefaultBodyLimit::max(max_bytes),
        }
    }
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> BodyLimit<S> {
        BodyLimit {
            inner,
            limit: self.limit,
        }
    }
}

/// [`BodyLimitLayer`]'s service.
#[derive(Clone)]
pub(super) struct BodyLimit<S> {
    inner: S,
    limit: DefaultBodyLimit,
}

impl<S> Service<Request> for BodyLimit<S>
where
    S: Service<Request> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.body().is_end_stream() {
            return self.inner.call(req);
        }
        // The service that was made ready answers; a clone stays for the next.
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        self.limit.layer(ready).call(req)
    }
}

/// The method as a metric label: the standard ones by name, anything a
/// client made up as `other`, so the label set stays bounded.
pub(super) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Records each request's duration by method, route template (`unmatched`
/// for any path no route knows) and status.
#[derive(Clone)]
pub(super) struct TrackLayer {
    durations: HistogramVec,
}

impl TrackLayer {
    pub(super) fn new(durations: HistogramVec) -> Self {
        Self { durations }
    }
}

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            durations: self.durations.clone(),
        }
    }
}

/// [`TrackLayer`]'s service.
#[derive(Clone)]
pub(super) struct Track<S> {
    inner: S,
    durations: HistogramVec,
}

impl<S> Service<Request> for Track<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TrackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let start = Instant::now();
        let method = method_label(req.method());
        // MatchedPath holds its template in an `Arc`: cloning it copies no text.
        let route = req.extensions().get::<MatchedPath>().cloned();
        TrackFuture {
            inner: self.inner.call(req),
            start,
            method,
            route,
            durations: self.durations.clone(),
        }
    }
}

/// [`Track`]'s future: the route's, observed when it answers.
pub(super) struct TrackFuture<F> {
    inner: F,
    start: Instant,
    method: &'static str,
    route: Option<MatchedPath>,
    durations: HistogramVec,
}

impl<F, E> Future for TrackFuture<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = ready!(Pin::new(&mut this.inner).poll(cx));
        if let Ok(resp) = &result {
            let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
            this.durations
                .with_label_values(&[this.method, route, resp.status().as_str()])
                .observe(this.start.elapsed().as_secs_f64());
        }
        Poll::Ready(result)
    }
}

/// `Cache-Control: no-store` (RFC 6749 §5.1, RFC 9111) and `Pragma: no-cache`
/// for HTTP/1.0 caches, on every answer of the routes `applies` picks by
/// route template (an unmatched request gets neither).
///
/// It decides per request rather than wrapping the chosen routes
/// (`route_layer`), so it shares the one wrap every route already has.
#[derive(Clone, Copy, Debug)]
pub(super) struct NoStoreLayer {
    applies: fn(&str) -> bool,
}

impl NoStoreLayer {
    pub(super) fn new(applies: fn(&str) -> bool) -> Self {
        Self { applies }
    }
}

impl<S> Layer<S> for NoStoreLayer {
    type Service = NoStore<S>;

    fn layer(&self, inner: S) -> NoStore<S> {
        NoStore {
            inner,
            applies: self.applies,
        }
    }
}

/// [`NoStoreLayer`]'s service.
#[derive(Clone, Debug)]
pub(super) struct NoStore<S> {
    inner: S,
    applies: fn(&str) -> bool,
}

impl<S> Service<Request> for NoStore<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = NoStoreFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let applies = req
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|p| (self.applies)(p.as_str()));
        NoStoreFuture {
            inner: self.inner.call(req),
            applies,
        }
    }
}

/// [`NoStore`]'s future: the route's, with the headers set on its answer.
pub(super) struct NoStoreFuture<F> {
    inner: F,
    applies: bool,
}

impl<F, E> Future for NoStoreFuture<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut result = ready!(Pin::new(&mut this.inner).poll(cx));
        if this.applies
            && let Ok(resp) = &mut result
        {
            let h = resp.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::http::StatusCode;
    use axum::routing::{any, get};
    use tower::ServiceExt as _;

    /// A route that reads the whole body, under a 4-byte limit.
    fn app() -> Router {
        Router::new()
            .route(
                "/len",
                any(|body: Bytes| async move { body.len().to_string() }),
            )
            .route("/get", get(|| async { "ok" }))
            .layer(BodyLimitLayer::new(4))
    }

    async fn send(req: Request) -> Result<(StatusCode, String), Box<dyn std::error::Error>> {
        let resp = app().oneshot(req).await?;
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await?;
        Ok((status, String::from_utf8(body.to_vec())?))
    }

    #[tokio::test]
    async fn bodies_are_limited_and_requests_without_one_are_answered()
    -> Result<(), Box<dyn std::error::Error>> {
        // A body over the limit is refused, one within it read.
        let over = Request::post("/len").body(Body::from("12345"))?;
        assert_eq!(send(over).await?.0, StatusCode::PAYLOAD_TOO_LARGE);
        let within = Request::post("/len").body(Body::from("1234"))?;
        assert_eq!(send(within).await?, (StatusCode::OK, "4".to_owned()));
        // A body whose length is unknown up front is limited too.
        let stream =
            futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"123456"))]);
        let streamed = Request::post("/len").body(Body::from_stream(stream))?;
        assert_eq!(send(streamed).await?.0, StatusCode::PAYLOAD_TOO_LARGE);
        // Requests without a body pass untouched.
        let get = Request::get("/get").body(Body::empty())?;
        assert_eq!(send(get).await?, (StatusCode::OK, "ok".to_owned()));
        let empty = Request::post("/len").body(Body::empty())?;
        assert_eq!(send(empty).await?, (StatusCode::OK, "0".to_owned()));
        Ok(())
    }
}
