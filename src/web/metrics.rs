//! `GET /metrics`: Prometheus scrapes it. Usually reached only on a private network; with
//! `TAGCAST_METRICS_TOKEN` set it wants that bearer token too.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use deadpool_postgres::Pool;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::metrics::Metrics;

/// A scrape must not hang on a stalled database: past this, queue gauges are left out and
/// `tagcast_db_up` reads 0.
const QUEUE_QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// The bearer token `/metrics` wants, if any.
#[derive(Clone)]
pub struct MetricsAuth(pub Option<SecretString>);

pub async fn metrics(
    req: HttpRequest,
    auth: web::Data<MetricsAuth>,
    metrics: web::Data<Arc<Metrics>>,
    pool: web::Data<Pool>,
) -> HttpResponse {
    if let Some(expected) = &auth.0 {
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
    let read = async {
        let client = pool.get().await.ok()?;
        crate::store::ops::queue_snapshot(&client).await.ok()
    };
    let queues = tokio::time::timeout(QUEUE_QUERY_TIMEOUT, read).await.ok().flatten();
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.render(queues.as_ref()))
}
