//! `/api/v1/rules`.

use actix_web::{HttpResponse, web};
use deadpool_postgres::Pool;
use serde::Serialize;

use super::{ApiError, Caller, ErrorBody};
use crate::app::tagging;
use crate::domain::rule::{RuleSpec, Trigger};
use crate::domain::tag::TagPath;
use crate::store;
use crate::store::ownership::Owned;

/// A rule and its id. Spelled out rather than flattening [`RuleSpec`], whose description refuses
/// fields it does not know (such as `id`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct RuleView {
    id: i64,
    on: Trigger,
    key: String,
    add: Vec<TagPath>,
    remove: Vec<TagPath>,
    reply: Option<String>,
    start_quiz: Option<String>,
}

impl RuleView {
    fn new(id: i64, spec: RuleSpec) -> Self {
        let RuleSpec { on, key, add, remove, reply, start_quiz } = spec;
        Self { id, on, key, add, remove, reply, start_quiz }
    }
}

#[utoipa::path(post, path = "/api/v1/rules", tag = "rules", request_body = RuleSpec,
    responses((status = 201, body = RuleView), (status = 422, description = "`unknown_quiz`", body = ErrorBody)))]
pub async fn create_rule(
    pool: web::Data<Pool>,
    caller: Caller,
    body: web::Json<RuleSpec>,
) -> Result<HttpResponse, ApiError> {
    let spec = body.into_inner();
    let id = tagging::create_rule(&pool, caller.account, &spec, &caller.name).await?;
    Ok(HttpResponse::Created().json(RuleView::new(id, spec)))
}

#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", responses((status = 200, body = Vec<RuleView>)))]
pub async fn list_rules(pool: web::Data<Pool>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let client = pool.get().await?;
    let rules: Vec<RuleView> = store::rules::list_rules(&client, caller.account)
        .await?
        .into_iter()
        .map(|r| RuleView::new(r.id, r.spec))
        .collect();
    Ok(HttpResponse::Ok().json(rules))
}

#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = i64, Path)),
    responses((status = 204, description = "deleted"), (status = 403, description = "`forbidden`: a rule of another account", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_rule(pool: web::Data<Pool>, caller: Caller, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let client = pool.get().await?;
    if store::rules::delete_rule(&client, caller.account, *id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        drop(client);
        Err(caller.missing(&pool, Owned::Rule, &id.to_string(), "no such rule").await)
    }
}
