//! `/api/v1/tags`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller, ErrorBody};
use crate::app::tagging::{self, TagRequest};
use crate::domain::tag::TagPath;
use crate::store;
use crate::store::ownership::Owned;
use crate::store::tags::TagRow;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTag {
    /// 1 to 3 levels split by `/`.
    #[schema(example = "肤质/油性")]
    path: String,
    /// Sends reaching it need a second person's approval. Admins only (`403 forbidden`
    /// otherwise): who may mark tags sensitive decides which sends need approval.
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
#[derive(Serialize, utoipa::ToSchema)]
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

/// The caller's account's tag `id`, or the answer for one it does not hold.
async fn own_tag(pool: &Pool, caller: &Caller, id: i64) -> Result<TagRow, ApiError> {
    let client = pool.get().await?;
    match store::tags::get_tag(&client, caller.account, id).await? {
        Some(tag) => Ok(tag),
        None => {
            drop(client);
            Err(caller.missing(pool, Owned::Tag, &id.to_string(), "no such tag").await)
        }
    }
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

#[utoipa::path(post, path = "/api/v1/tags", tag = "tags", request_body = CreateTag,
    responses((status = 201, body = TagView), (status = 409, description = "`tag_exists`", body = ErrorBody),
        (status = 422, description = "`invalid_tag`, `tag_limit`", body = ErrorBody)))]
pub async fn create_tag(
    pool: web::Data<Pool>,
    caller: Caller,
    body: web::Json<CreateTag>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.sensitive {
        caller.require(caller.role.may_change_sensitivity(), "mark tags sensitive; ask an admin")?;
    }
    let path = TagPath::parse(&body.path).map_err(|e| ApiError::unprocessable("invalid_tag", e.to_string()))?;
    let request = TagRequest {
        path,
        description: body.description.unwrap_or_default(),
        sensitive: body.sensitive,
        wechat: body.wechat.unwrap_or(true),
        when_expr: body.when,
    };
    let tag = tagging::create_tag(&pool, caller.account, &request, &caller.name).await?;
    Ok(HttpResponse::Created().json(TagView::from(tag)))
}

#[utoipa::path(get, path = "/api/v1/tags", tag = "tags", responses((status = 200, body = Vec<TagView>)))]
pub async fn list_tags(pool: web::Data<Pool>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let client = pool.get().await?;
    let tags: Vec<TagView> =
        store::tags::list_tags(&client, caller.account).await?.into_iter().map(TagView::from).collect();
    Ok(HttpResponse::Ok().json(tags))
}

#[utoipa::path(get, path = "/api/v1/tags/{id}", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = TagView), (status = 403, description = "`forbidden`: a tag of another account", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_tag(pool: web::Data<Pool>, caller: Caller, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let tag = own_tag(&pool, &caller, *id).await?;
    Ok(HttpResponse::Ok().json(TagView::from(tag)))
}

/// Removes it on WeChat too. A sensitive tag only by an admin.
#[utoipa::path(delete, path = "/api/v1/tags/{id}", tag = "tags", params(("id" = i64, Path)),
    responses((status = 204, description = "deleted"),
        (status = 403, description = "`forbidden`: a sensitive tag, by a non-admin; a tag of another account", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_tag(pool: web::Data<Pool>, caller: Caller, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    own_tag(&pool, &caller, *id).await?;
    tagging::delete_tag(&pool, caller.account, *id, caller.role.may_change_sensitivity()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTag {
    /// A new path: renames the tag.
    #[serde(default)]
    path: Option<String>,
    /// Marks or unmarks the tag sensitive. Admins only (`403 forbidden` otherwise, unless it
    /// already is as asked); audited.
    #[serde(default)]
    sensitive: Option<bool>,
}

/// `PATCH /tags/{id} {path?, sensitive?}` (extension): renames a tag, marks it sensitive or not.
/// On a rename, rules, quizzes, segments, dynamic-tag conditions and campaign audiences that
/// name it follow; WeChat's copy is renamed by a job. Answers the tag and, for a rename, what
/// else changed (`renamed`). Either change makes approvals of campaigns reaching the tag lapse.
#[utoipa::path(patch, path = "/api/v1/tags/{id}", tag = "tags", params(("id" = i64, Path)), request_body = UpdateTag,
    responses(
        (status = 200, description = "the tag (as `GET /tags/{id}`) and, for a rename, `renamed`: the rules, \
            quizzes, segments, dynamic tags and campaigns that now name the new path", body = serde_json::Value),
        (status = 400, body = ErrorBody),
        (status = 403, description = "`forbidden`: changing `sensitive` by a non-admin; a tag of another account", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn rename_tag(
    pool: web::Data<Pool>,
    caller: Caller,
    id: web::Path<i64>,
    body: web::Json<UpdateTag>,
) -> Result<HttpResponse, ApiError> {
    let UpdateTag { path, sensitive } = body.into_inner();
    if path.is_none() && sensitive.is_none() {
        return Err(ApiError::invalid_request("give `path`, `sensitive` or both"));
    }
    let path = path
        .map(|p| TagPath::parse(&p).map_err(|e| ApiError::unprocessable("invalid_tag", e.to_string())))
        .transpose()?;
    let tag = own_tag(&pool, &caller, *id).await?;
    if let Some(sensitive) = sensitive {
        if tag.sensitive != sensitive {
            let what = if sensitive { "mark tags sensitive" } else { "unmark sensitive tags" };
            caller.require(caller.role.may_change_sensitivity(), &format!("{what}; ask an admin"))?;
        }
    }
    let account = caller.account;
    // The rename first: when it is refused (a taken path), nothing has changed.
    let renamed = match &path {
        Some(path) => Some(tagging::rename_tag(&pool, account, *id, path, &caller.name).await?),
        None => None,
    };
    if let Some(sensitive) = sensitive {
        let may = caller.role.may_change_sensitivity();
        tagging::set_sensitive(&pool, account, *id, sensitive, may, &caller.name).await?;
    }
    let tag = own_tag(&pool, &caller, *id).await?;
    let mut body = serde_json::to_value(TagView::from(tag)).map_err(|_| ApiError::internal())?;
    if let Some(renamed) = renamed {
        body["renamed"] = serde_json::to_value(&renamed).map_err(|_| ApiError::internal())?;
    }
    Ok(HttpResponse::Ok().json(body))
}
