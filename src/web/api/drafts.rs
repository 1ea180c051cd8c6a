//! `/api/v1/drafts`: the account's WeChat drafts as tagcast last listed them, so a client can
//! pick the `media_id` of an mpnews campaign without typing it.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;

use super::{ApiError, Caller};
use crate::store;

/// One draft (草稿) of the account's WeChat draft box.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Draft {
    /// What an mpnews campaign's `message.media_id` takes.
    media_id: String,
    /// The first article's title.
    title: String,
    author: String,
    /// The first article's cover image.
    cover_url: String,
    #[schema(minimum = 1, maximum = 8)]
    article_count: i32,
    /// Every article's title, in order.
    article_titles: Vec<String>,
    /// When the draft last changed on WeChat.
    updated_at: DateTime<Utc>,
}

/// `GET /drafts`: most recently changed first. Refreshed by `tagcast sync` and hourly.
#[utoipa::path(get, path = "/api/v1/drafts", tag = "drafts", responses((status = 200, body = Vec<Draft>)))]
pub async fn list_drafts(pool: web::Data<Pool>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let client = pool.get().await?;
    let drafts: Vec<Draft> = store::drafts::list_drafts(&client, caller.account)
        .await?
        .into_iter()
        .map(|d| Draft {
            media_id: d.media_id,
            title: d.title,
            author: d.author,
            cover_url: d.cover_url,
            article_count: d.article_count,
            article_titles: d.article_titles,
            updated_at: d.updated_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(drafts))
}
