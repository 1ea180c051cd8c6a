//! `/api/v1/users/{openid}`: one follower, and their erasure (PIPL).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;

use super::{ApiError, Caller, ErrorBody};
use crate::app::tagging;
use crate::store;

/// A follower as the API shows them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    openid: String,
    subscribed: bool,
    /// Tag paths.
    tags: Vec<String>,
    subscribed_at: Option<DateTime<Utc>>,
    unsubscribed_at: Option<DateTime<Utc>>,
    subscribe_scene: Option<String>,
    first_seen_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
}

#[utoipa::path(get, path = "/api/v1/users/{openid}", tag = "users", params(("openid" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    pool: web::Data<Pool>,
    _caller: Caller,
    openid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client = pool.get().await?;
    let follower = store::followers::get_follower(&client, &openid)
        .await?
        .ok_or_else(|| ApiError::not_found("no such follower"))?;
    let tags = store::tags::list_follower_tag_paths(&client, &[openid.as_str()])
        .await?
        .remove(openid.as_str())
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(UserView {
        openid: follower.openid,
        subscribed: follower.subscribed,
        tags,
        subscribed_at: follower.subscribed_at,
        unsubscribed_at: follower.unsubscribed_at,
        subscribe_scene: follower.subscribe_scene,
        first_seen_at: follower.first_seen_at,
        last_seen_at: follower.last_seen_at,
    }))
}

/// Erases the follower's data and removes their WeChat tags.
#[utoipa::path(delete, path = "/api/v1/users/{openid}", tag = "users", params(("openid" = String, Path)),
    responses((status = 204, description = "erased"), (status = 404, body = ErrorBody)))]
pub async fn erase_user(
    pool: web::Data<Pool>,
    caller: Caller,
    openid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if tagging::erase_follower(&pool, &openid).await? {
        tracing::info!(user.openid = %openid, by = %caller.name, "follower erased");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("no such follower"))
    }
}
