//! `/healthz`: 200 when the database answers, 503 otherwise.

use actix_web::{HttpResponse, web};
use deadpool_postgres::Pool;

pub async fn healthz(pool: web::Data<Pool>) -> HttpResponse {
    let answered = async {
        let client = pool.get().await.ok()?;
        client.simple_query("SELECT 1").await.ok()
    };
    match tokio::time::timeout(std::time::Duration::from_secs(2), answered).await {
        Ok(Some(_)) => HttpResponse::Ok().content_type("text/plain").body("ok"),
        _ => HttpResponse::ServiceUnavailable().content_type("text/plain").body("database unavailable"),
    }
}
