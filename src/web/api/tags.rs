//! `/api/v1/tags`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller};
use crate::domain::tag::TagPath;
use crate::store;
use crate::store::tags::TagRow;
use crate::tagging::{self, TagRequest};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTag {
    path: String,
    #[serde(default)]
    sensitive: bool,
    #[serde(default)]
    description: Option<String>,
    /// Extension: `false` makes a local-only tag (never on WeChat). Default `true`.
    #[serde(default)]
    wechat: Option<bool>,
    /// A dynamic tag's condition (kept true by the engine, issue 5).
    #[serde(default)]
    when: Option<String>,
}

/// A tag as the API shows it.
#[derive(Serialize)]
pub struct TagView {
    id: i64,
    path: String,
    description: String,
    sensitive: bool,
    /// Mirrored on WeChat (or about to be); `false` for local-only tags.
    mirrored: bool,
    /// WeChat's id, once the tag exists there.
    wechat_tag_id: Option<i64>,
    when: Option<String>,
    members: i64,
    created_at: DateTime<Utc>,
    created_by: String,
    last_used_at: Option<DateTime<Utc>>,
    /// The seed's naming advice; never blocks anything.
    warnings: Vec<String>,
}

impl From<TagRow> for TagView {
    fn from(tag: TagRow) -> Self {
        let warnings = TagPath::parse(&tag.path).map(|p| p.naming_warnings()).unwrap_or_default();
        Self {
            id: tag.id,
            path: tag.path,
            description: tag.description,
            sensitive: tag.sensitive,
            mirrored: tag.mirrored,
            wechat_tag_id: tag.wechat_tag_id,
            when: tag.when_expr,
            members: tag.members,
            created_at: tag.created_at,
            created_by: tag.created_by,
            last_used_at: tag.last_used_at,
            warnings,
        }
    }
}

pub async fn create_tag(
    pool: web::Data<Pool>,
    caller: Caller,
    body: web::Json<CreateTag>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let path = TagPath::parse(&body.path).map_err(|e| ApiError::unprocessable("invalid_tag", e.to_string()))?;
    let request = TagRequest {
        path,
        description: body.description.unwrap_or_default(),
        sensitive: body.sensitive,
        wechat: body.wechat.unwrap_or(true),
        when_expr: body.when,
    };
    let tag = tagging::create_tag(&pool, &request, &caller.name).await?;
    Ok(HttpResponse::Created().json(TagView::from(tag)))
}

pub async fn list_tags(pool: web::Data<Pool>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let client = pool.get().await?;
    let tags: Vec<TagView> = store::tags::list_tags(&client).await?.into_iter().map(TagView::from).collect();
    Ok(HttpResponse::Ok().json(tags))
}

pub async fn get_tag(pool: web::Data<Pool>, _caller: Caller, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let client = pool.get().await?;
    let tag = store::tags::get_tag(&client, *id).await?.ok_or_else(|| ApiError::not_found("no such tag"))?;
    Ok(HttpResponse::Ok().json(TagView::from(tag)))
}

pub async fn delete_tag(pool: web::Data<Pool>, _caller: Caller, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    tagging::delete_tag(&pool, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameTag {
    path: String,
}

/// `PATCH /tags/{id} {path}` (extension): renames a tag. Rules, quizzes, segments, dynamic-tag
/// conditions and campaign audiences that name it follow; WeChat's copy is renamed by a job.
/// Answers the tag and what else changed (`renamed`).
pub async fn rename_tag(
    pool: web::Data<Pool>,
    caller: Caller,
    id: web::Path<i64>,
    body: web::Json<RenameTag>,
) -> Result<HttpResponse, ApiError> {
    let path = TagPath::parse(&body.path).map_err(|e| ApiError::unprocessable("invalid_tag", e.to_string()))?;
    let renamed = tagging::rename_tag(&pool, *id, &path, &caller.name).await?;
    let client = pool.get().await?;
    let tag = store::tags::get_tag(&client, *id).await?.ok_or_else(|| ApiError::not_found("no such tag"))?;
    let mut body = serde_json::to_value(TagView::from(tag)).map_err(|_| ApiError::internal())?;
    body["renamed"] = serde_json::to_value(&renamed).map_err(|_| ApiError::internal())?;
    Ok(HttpResponse::Ok().json(body))
}
