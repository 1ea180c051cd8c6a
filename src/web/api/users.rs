//! `/api/v1/users/{openid}`: one follower, and their erasure (PIPL).

use actix_web::{HttpResponse, web};
use deadpool_postgres::Pool;
use serde_json::json;

use super::{ApiError, Caller};
use crate::store;
use crate::tagging;

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
    Ok(HttpResponse::Ok().json(json!({
        "openid": follower.openid,
        "subscribed": follower.subscribed,
        "tags": tags,
        "subscribed_at": follower.subscribed_at,
        "unsubscribed_at": follower.unsubscribed_at,
        "subscribe_scene": follower.subscribe_scene,
        "first_seen_at": follower.first_seen_at,
        "last_seen_at": follower.last_seen_at,
    })))
}

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
