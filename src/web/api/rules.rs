//! `/api/v1/rules`.

use actix_web::{HttpResponse, web};
use deadpool_postgres::Pool;
use serde::Serialize;

use super::{ApiError, Caller};
use crate::domain::rule::RuleSpec;
use crate::store;
use crate::tagging;

#[derive(Serialize)]
struct RuleView {
    id: i64,
    #[serde(flatten)]
    spec: RuleSpec,
}

pub async fn create_rule(
    pool: web::Data<Pool>,
    caller: Caller,
    body: web::Json<RuleSpec>,
) -> Result<HttpResponse, ApiError> {
    let spec = body.into_inner();
    let id = tagging::create_rule(&pool, &spec, &caller.name).await?;
    Ok(HttpResponse::Created().json(RuleView { id, spec }))
}

pub async fn list_rules(pool: web::Data<Pool>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let client = pool.get().await?;
    let rules: Vec<RuleView> =
        store::rules::list_rules(&client).await?.into_iter().map(|r| RuleView { id: r.id, spec: r.spec }).collect();
    Ok(HttpResponse::Ok().json(rules))
}

pub async fn delete_rule(pool: web::Data<Pool>, _caller: Caller, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let client = pool.get().await?;
    if store::rules::delete_rule(&client, *id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("no such rule"))
    }
}
