//! What one client may hold of an instance: a deadline for a request's body (actix's
//! `client_request_timeout` already bounds the headers), a count of open connections that says
//! so in the log when the cap is reached, and the split between the main listener and the
//! metrics one.
//!
//! A slow client otherwise keeps a connection, a worker's attention and, for a body that never
//! finishes, whatever the handler holds while it reads: a few thousand such clients are enough
//! to stop an instance that WeChat needs to answer within 5 s.

use std::cell::Cell;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpResponse, web};
use futures_util::Stream;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

/// A request body that is not complete `limit` after its headers ends with an error, and the
/// request is answered 408 with the connection closed.
#[derive(Clone, Copy)]
pub struct BodyDeadline(pub Duration);

struct DeadlineBody {
    inner: Payload,
    expires_at: tokio::time::Instant,
    /// Armed only once the body stalls: a push's body usually arrives with its headers, so the
    /// callback's hot path never touches the timer.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: Rc<Cell<bool>>,
}

impl DeadlineBody {
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let expires_at = self.expires_at;
        self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(expires_at))).as_mut().poll(cx)
    }
}

impl Stream for DeadlineBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let expired = match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(item) => return Poll::Ready(item),
            Poll::Pending => self.poll_deadline(cx).is_ready(),
        };
        if !expired {
            return Poll::Pending;
        }
        self.expired.set(true);
        let late = std::io::Error::new(std::io::ErrorKind::TimedOut, "the request body took too long");
        Poll::Ready(Some(Err(PayloadError::Io(late))))
    }
}

/// The middleware that puts [`BodyDeadline`] on every request's body.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limit = req.app_data::<web::Data<BodyDeadline>>().map_or(Duration::from_secs(10), |d| d.0);
    let expired = Rc::new(Cell::new(false));
    let body = DeadlineBody {
        inner: req.take_payload(),
        expires_at: tokio::time::Instant::now() + limit,
        deadline: None,
        expired: Rc::clone(&expired),
    };
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(body);
    req.set_payload(Payload::from(boxed));
    let response = next.call(req).await;
    if !expired.get() {
        return response.map(ServiceResponse::map_into_boxed_body);
    }
    let request = match response {
        Ok(response) => response.request().clone(),
        Err(error) => return Err(error),
    };
    tracing::info!(limit_secs = limit.as_secs(), "request body not received in time; closing the connection");
    let late = HttpResponse::build(StatusCode::REQUEST_TIMEOUT)
        .force_close()
        .content_type("text/plain; charset=utf-8")
        .body("the request body took too long to arrive");
    Ok(ServiceResponse::new(request, late))
}

/// Open connections of one instance, for the log line at the cap and the gauge.
#[derive(Debug)]
pub struct ConnectionCount {
    open: AtomicUsize,
    cap: usize,
    /// Unix second of the last "cap reached" line, so a flood logs once in ten seconds.
    last_warned: AtomicI64,
    gauge: Gauge,
    cap_reached: Counter,
}

/// Held in a connection's extensions: dropped with the connection, it counts it closed.
struct OpenConnection(Arc<ConnectionCount>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        self.0.gauge.dec();
    }
}

impl ConnectionCount {
    pub fn new(cap: usize, gauge: Gauge, cap_reached: Counter) -> Arc<Self> {
        Arc::new(Self { open: AtomicUsize::new(0), cap, last_warned: AtomicI64::new(0), gauge, cap_reached })
    }

    /// Per HTTP worker, as actix counts them; the instance's cap is split evenly and rounded up,
    /// so it is never below what was asked.
    pub fn per_worker(&self, workers: usize) -> usize {
        self.cap.div_ceil(workers.max(1)).max(1)
    }

    /// `HttpServer::on_connect`: counts the connection until it closes.
    pub fn on_connect(self: &Arc<Self>, extensions: &mut actix_web::dev::Extensions) {
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.gauge.inc();
        extensions.insert(Rc::new(OpenConnection(Arc::clone(self))));
        if open >= self.cap {
            self.cap_reached.inc();
            let now = chrono::Utc::now().timestamp();
            let last = self.last_warned.load(Ordering::Relaxed);
            if now - last >= 10
                && self.last_warned.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
            {
                tracing::warn!(
                    open,
                    cap = self.cap,
                    "connection cap reached (TAGCAST_MAX_CONNECTIONS): new connections wait in the listen backlog \
                     until one closes"
                );
            }
        }
    }
}

/// Which listener a request came in on, when `/metrics` has one of its own.
#[derive(Clone, Copy)]
pub struct MetricsListener(pub Option<SocketAddr>);

/// With a metrics listener, it serves only `/metrics` and the health checks, and the main
/// listener no longer serves `/metrics`: neither answers what belongs to the other (404).
pub async fn split_listeners(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(metrics_addr) = req.app_data::<web::Data<MetricsListener>>().and_then(|m| m.0) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let on_metrics_listener = req.app_config().local_addr() == metrics_addr;
    let path = req.path();
    let allowed =
        if on_metrics_listener { matches!(path, "/metrics" | "/healthz" | "/readyz") } else { path != "/metrics" };
    if allowed {
        next.call(req).await.map(ServiceResponse::map_into_boxed_body)
    } else {
        Ok(req.into_response(HttpResponse::NotFound().finish()))
    }
}
