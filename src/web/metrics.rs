//! `GET /metrics`: Prometheus scrapes it. With `TAGCAST_METRICS_TOKEN` set it wants that bearer
//! token; on a real account without one it answers only to loopback clients that did not come
//! through a proxy, or on `TAGCAST_METRICS_BIND`'s listener. Demo mode leaves it open.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use deadpool_postgres::Pool;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::app::metrics::Metrics;

/// A scrape must not hang on a stalled database: past this, queue gauges are left out and
/// `tagcast_db_up` reads 0.
const QUEUE_QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// Who may read `/metrics`.
#[derive(Clone)]
pub enum MetricsAuth {
    /// Demo mode: nothing to hide.
    Open,
    /// `Authorization: Bearer <TAGCAST_METRICS_TOKEN>`.
    Token(SecretString),
    /// Its own listener (`TAGCAST_METRICS_BIND`), reachable only where the deployer bound it.
    OwnListener,
    /// A real account with neither: loopback clients only.
    LoopbackOnly,
}

impl MetricsAuth {
    pub fn new(token: Option<SecretString>, own_listener: bool, demo: bool) -> Self {
        match (token, own_listener, demo) {
            (Some(token), _, _) => Self::Token(token),
            (None, true, _) => Self::OwnListener,
            (None, false, true) => Self::Open,
            (None, false, false) => Self::LoopbackOnly,
        }
    }
}

/// A proxy on the same host makes every client look like loopback; what it forwards says so.
const PROXY_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// Whether `req` came straight from this host rather than through a proxy.
fn from_this_host(req: &HttpRequest) -> bool {
    let direct = PROXY_HEADERS.iter().all(|name| !req.headers().contains_key(*name));
    direct && req.peer_addr().is_some_and(|peer| peer.ip().is_loopback())
}

pub async fn metrics(
    req: HttpRequest,
    auth: web::Data<MetricsAuth>,
    metrics: web::Data<Arc<Metrics>>,
    pool: web::Data<Pool>,
) -> HttpResponse {
    // The listener split is also checked here, where routing has already decoded the path: the
    // split middleware sees `/%6Detrics` as another path, the router as this one.
    let own_listener = req.app_data::<web::Data<crate::web::limits::MetricsListener>>().and_then(|m| m.0);
    if own_listener.is_some_and(|addr| req.app_config().local_addr() != addr) {
        return HttpResponse::NotFound().finish();
    }
    if matches!(auth.get_ref(), MetricsAuth::LoopbackOnly) && !from_this_host(&req) {
        return HttpResponse::Forbidden().content_type("text/plain").body(
            "/metrics answers only on loopback here: set TAGCAST_METRICS_TOKEN or TAGCAST_METRICS_BIND to scrape it \
             from elsewhere",
        );
    }
    if let MetricsAuth::Token(expected) = auth.get_ref() {
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or_default()
            .trim();
        if !bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
            return HttpResponse::Unauthorized()
                .insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"))
                .content_type("text/plain")
                .body("send `Authorization: Bearer <TAGCAST_METRICS_TOKEN>`");
        }
    }
    let clock =
        req.app_data::<web::Data<crate::domain::clock::Clock>>().map(|c| c.get_ref().clone()).unwrap_or_default();
    let read = async {
        let client = pool.get().await.ok()?;
        let queues = crate::store::ops::queue_snapshot(&client).await.ok()?;
        drop(client);
        let stops = crate::app::quota::all_stopped(&pool, &clock).await.unwrap_or_default();
        Some((queues, stops))
    };
    let (queues, stops) = tokio::time::timeout(QUEUE_QUERY_TIMEOUT, read).await.ok().flatten().unzip();
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.render_with_stops(queues.as_ref(), &stops.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn only_a_direct_loopback_client_counts_as_this_host() {
        let loopback: std::net::SocketAddr = "127.0.0.1:5000".parse().expect("an address");
        let elsewhere: std::net::SocketAddr = "203.0.113.9:5000".parse().expect("an address");
        assert!(from_this_host(&TestRequest::default().peer_addr(loopback).to_http_request()));
        assert!(from_this_host(&TestRequest::default().peer_addr("[::1]:5000".parse().expect("v6")).to_http_request()));
        assert!(!from_this_host(&TestRequest::default().peer_addr(elsewhere).to_http_request()));
        assert!(!from_this_host(&TestRequest::default().to_http_request()), "no peer is not loopback");
        for header in PROXY_HEADERS {
            let proxied = TestRequest::default().peer_addr(loopback).insert_header((header, "203.0.113.9"));
            assert!(!from_this_host(&proxied.to_http_request()), "{header}");
        }
    }

    #[test]
    fn a_real_account_without_a_token_or_listener_is_loopback_only() {
        let token = || Some(SecretString::from("0123456789abcdef".to_owned()));
        assert!(matches!(MetricsAuth::new(None, false, false), MetricsAuth::LoopbackOnly));
        assert!(matches!(MetricsAuth::new(None, false, true), MetricsAuth::Open));
        assert!(matches!(MetricsAuth::new(None, true, false), MetricsAuth::OwnListener));
        assert!(matches!(MetricsAuth::new(token(), true, false), MetricsAuth::Token(_)));
    }
}
