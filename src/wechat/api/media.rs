//! Drafts and materials (草稿箱 / 素材, wechat-api.md §13): what tagcast reads to offer the
//! account's drafts for an mpnews send and to check that a draft still exists before sending.
//! tagcast writes nothing here: drafts are written in WeChat's console.

use serde::Deserialize;
use serde_json::json;

use super::{ApiClient, WeChatError};

/// `draft/batchget` and `material/batchget_material` list at most 20 per call.
pub const MAX_DRAFTS_PER_PAGE: u32 = 20;

/// One article of a draft as `draft/get` and `draft/batchget` show it (content left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DraftArticle {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub digest: String,
    /// The cover image's URL.
    #[serde(default)]
    pub thumb_url: String,
    #[serde(default)]
    pub thumb_media_id: String,
}

/// A draft's articles and times (unix seconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DraftContent {
    #[serde(default)]
    pub news_item: Vec<DraftArticle>,
    #[serde(default)]
    pub create_time: i64,
    #[serde(default)]
    pub update_time: i64,
}

/// One entry of `draft/batchget`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DraftItem {
    pub media_id: String,
    #[serde(default)]
    pub content: DraftContent,
    #[serde(default)]
    pub update_time: i64,
}

/// A page of `draft/batchget`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DraftPage {
    pub total_count: u32,
    #[serde(default)]
    pub item_count: u32,
    #[serde(default)]
    pub item: Vec<DraftItem>,
}

/// `material/get_materialcount`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct MaterialCount {
    #[serde(default)]
    pub voice_count: u32,
    #[serde(default)]
    pub video_count: u32,
    #[serde(default)]
    pub image_count: u32,
    #[serde(default)]
    pub news_count: u32,
}

/// One entry of `material/batchget_material` (image, voice, video).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MaterialItem {
    pub media_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub update_time: i64,
    #[serde(default)]
    pub url: Option<String>,
}

/// A page of `material/batchget_material`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MaterialPage {
    pub total_count: u32,
    #[serde(default)]
    pub item_count: u32,
    #[serde(default)]
    pub item: Vec<MaterialItem>,
}

#[derive(Deserialize)]
struct DraftCount {
    total_count: u32,
}

impl ApiClient {
    /// `draft/batchget` without the articles' bodies: up to `count` (1..=20) drafts from
    /// `offset`, most recently updated first.
    ///
    /// # Errors
    /// Any [`WeChatError`]; 40035 for a page out of bounds.
    pub async fn list_drafts(&self, offset: u32, count: u32) -> Result<DraftPage, WeChatError> {
        self.post("/cgi-bin/draft/batchget", &json!({ "offset": offset, "count": count, "no_content": 1 })).await
    }

    /// `draft/get`.
    ///
    /// # Errors
    /// Any [`WeChatError`]; 40007 ([`super::ErrCode::InvalidMediaId`]) when no such draft exists.
    pub async fn get_draft(&self, media_id: &str) -> Result<DraftContent, WeChatError> {
        self.post("/cgi-bin/draft/get", &json!({ "media_id": media_id })).await
    }

    /// `draft/count`.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn count_drafts(&self) -> Result<u32, WeChatError> {
        let answer: DraftCount = self.get("/cgi-bin/draft/count", &[]).await?;
        Ok(answer.total_count)
    }

    /// `material/get_materialcount`.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn material_count(&self) -> Result<MaterialCount, WeChatError> {
        self.get("/cgi-bin/material/get_materialcount", &[]).await
    }

    /// `material/batchget_material` of `kind` (`image`, `voice`, `video`).
    ///
    /// # Errors
    /// Any [`WeChatError`]; 40004 for another kind, 40035 for a page out of bounds.
    pub async fn list_materials(&self, kind: &str, offset: u32, count: u32) -> Result<MaterialPage, WeChatError> {
        self.post("/cgi-bin/material/batchget_material", &json!({ "type": kind, "offset": offset, "count": count }))
            .await
    }
}
