//! `/healthz` (liveness: the process serves HTTP) and `/readyz` (readiness: the database answers
//! and carries this build's migrations). A load balancer routes by `/readyz`; a supervisor
//! restarts by `/healthz`, so a database outage takes instances out of rotation without
//! restarting them all.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use deadpool_postgres::Pool;
use serde_json::json;

use crate::store::database;

/// Below a load balancer's usual probe timeout, above a healthy database's worst answer.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Why an instance is not ready.
enum NotReady {
    Unreachable,
    SchemaBehind { found: Option<i64> },
}

pub async fn readyz(pool: web::Data<Pool>) -> HttpResponse {
    let expected = database::expected_schema_version();
    let checked = async {
        let client = pool.get().await.map_err(|_| NotReady::Unreachable)?;
        let found = database::schema_version(&client).await.map_err(|_| NotReady::Unreachable)?;
        // A newer release may have migrated already; migrations keep working with the one before.
        if found.is_some_and(|v| v >= expected) { Ok(found) } else { Err(NotReady::SchemaBehind { found }) }
    };
    match tokio::time::timeout(READY_TIMEOUT, checked).await {
        Ok(Ok(found)) => HttpResponse::Ok().json(json!({ "status": "ready", "schema_version": found })),
        Ok(Err(NotReady::SchemaBehind { found })) => HttpResponse::ServiceUnavailable().json(json!({
            "status": "not_ready",
            "reason": "schema_behind",
            "message": format!("the database is at migration {found:?}; this build needs {expected}"),
        })),
        Ok(Err(NotReady::Unreachable)) | Err(_) => HttpResponse::ServiceUnavailable().json(json!({
            "status": "not_ready",
            "reason": "database_unavailable",
            "message": format!("the database did not answer within {} s", READY_TIMEOUT.as_secs()),
        })),
    }
}
