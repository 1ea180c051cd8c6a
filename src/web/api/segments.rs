//! `/api/v1/segments`: saved audiences whose members are counted live at the clock's now, their
//! members page by page, and a preview count for an expression being typed.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller, ErrorBody};
use crate::app::audience::{self, index::AudienceIndex};
use crate::domain::clock::Clock;
use crate::domain::expr::{self, Expr};
use crate::store;
use crate::store::ownership::Owned;

/// Most members per page.
pub const MAX_PAGE: i64 = 1000;
const DEFAULT_PAGE: i64 = 100;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSegment {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    #[schema(example = "\"肤质/油性\" AND orders(30d) = 0")]
    expr: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preview {
    expr: String,
}

/// A saved segment, its members counted now.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SegmentView {
    id: i64,
    name: String,
    /// The expression in canonical form.
    expr: String,
    members: i64,
    created_at: DateTime<Utc>,
    created_by: String,
}

impl SegmentView {
    fn counted(segment: store::segments::SegmentRow, members: i64) -> Self {
        Self {
            id: segment.id,
            name: segment.name,
            expr: segment.expr,
            members,
            created_at: segment.created_at,
            created_by: segment.created_by,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MembersPage {
    /// openids in order.
    members: Vec<String>,
    /// The `after` of the next page; `null` on the last.
    next: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PreviewCount {
    expr: String,
    members: i64,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// The `next` of the previous page.
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

fn parse_expr(text: &str) -> Result<Expr, ApiError> {
    expr::parse(text).map_err(|e| ApiError::invalid_expression(&e))
}

/// Parses a segment being saved or counted and refuses tags the account lacks: `400
/// invalid_expression` at the first such tag, with `tag` and the nearest existing `suggestion`
/// (or `null`), as a misspelt tag would otherwise count 0 without a word.
async fn parse_known(pool: &Pool, caller: &Caller, text: &str) -> Result<Expr, ApiError> {
    let expr = parse_expr(text)?;
    let unknown = audience::tag_check::unknown_tags(&pool.get().await?, caller.account, &expr, text).await?;
    match unknown.into_iter().next() {
        None => Ok(expr),
        Some(tag) => {
            Err(ApiError::new(actix_web::http::StatusCode::BAD_REQUEST, "invalid_expression", tag.message_zh())
                .with("position", tag.position)
                .with("tag", tag.path)
                .with("suggestion", tag.suggestion))
        }
    }
}

#[utoipa::path(post, path = "/api/v1/segments", tag = "segments", request_body = CreateSegment,
    responses((status = 201, body = SegmentView),
        (status = 400, description = "`invalid_request`, `invalid_expression` (with `position`; for a tag the account \
         lacks also `tag` and the nearest existing `suggestion`)", body = ErrorBody)))]
pub async fn create_segment(
    pool: web::Data<Pool>,
    index: web::Data<AudienceIndex>,
    clock: web::Data<Clock>,
    caller: Caller,
    body: web::Json<CreateSegment>,
) -> Result<HttpResponse, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid_request("`name` must be 1 to 100 characters"));
    }
    let expr = parse_known(&pool, &caller, &body.expr).await?;
    let segment =
        store::segments::insert_segment(&pool.get().await?, caller.account, name, &expr, &caller.name).await?;
    let members = audience::count_members(&pool, &index, caller.account, &expr, clock.unix()).await?;
    Ok(HttpResponse::Created().json(SegmentView::counted(segment, members)))
}

#[utoipa::path(get, path = "/api/v1/segments/{id}", tag = "segments", params(("id" = i64, Path)),
    responses((status = 200, body = SegmentView), (status = 404, body = ErrorBody)))]
pub async fn get_segment(
    pool: web::Data<Pool>,
    index: web::Data<AudienceIndex>,
    clock: web::Data<Clock>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let Some(segment) = store::segments::get_segment(&pool.get().await?, caller.account, *id).await? else {
        return Err(caller.missing(&pool, Owned::Segment, &id.to_string(), "no such segment").await);
    };
    let expr = parse_expr(&segment.expr)?;
    let members = audience::count_members(&pool, &index, caller.account, &expr, clock.unix()).await?;
    Ok(HttpResponse::Ok().json(SegmentView::counted(segment, members)))
}

/// `GET /segments/{id}/members?after=<openid>&limit=<n>`: openids in order; `next` is the `after`
/// of the following page, `null` on the last.
#[utoipa::path(get, path = "/api/v1/segments/{id}/members", tag = "segments", params(("id" = i64, Path), Page),
    responses((status = 200, body = MembersPage), (status = 404, body = ErrorBody)))]
pub async fn list_segment_members(
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    caller: Caller,
    id: web::Path<i64>,
    page: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let limit = ApiError::page_limit(page.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let client = pool.get().await?;
    let Some(segment) = store::segments::get_segment(&client, caller.account, *id).await? else {
        return Err(caller.missing(&pool, Owned::Segment, &id.to_string(), "no such segment").await);
    };
    let expr = parse_expr(&segment.expr)?;
    let after = page.after.as_deref().unwrap_or("");
    let members = store::segments::list_members(&client, caller.account, &expr, clock.unix(), after, limit).await?;
    let next = (members.len() as i64 == limit).then(|| members.last().cloned()).flatten();
    Ok(HttpResponse::Ok().json(MembersPage { members, next }))
}

/// `POST /segments/preview {expr}` → `{expr, members}`: the live count while an operator types.
#[utoipa::path(post, path = "/api/v1/segments/preview", tag = "segments", request_body = Preview,
    responses((status = 200, body = PreviewCount), (status = 400, body = ErrorBody)))]
pub async fn preview_segment(
    pool: web::Data<Pool>,
    index: web::Data<AudienceIndex>,
    clock: web::Data<Clock>,
    caller: Caller,
    body: web::Json<Preview>,
) -> Result<HttpResponse, ApiError> {
    let expr = parse_known(&pool, &caller, &body.expr).await?;
    let members = audience::count_members(&pool, &index, caller.account, &expr, clock.unix()).await?;
    Ok(HttpResponse::Ok().json(PreviewCount { expr: expr.to_string(), members }))
}
