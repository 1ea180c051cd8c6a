//! User tags (用户标签管理): at most 100 per account, 20 per user, 50 openids per batch call.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiClient, Ok0, WeChatError};

/// WeChat's limit on openids per batchtagging / batchuntagging call.
pub const MAX_OPENIDS_PER_BATCH: usize = 50;

/// A tag as WeChat lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WeChatTag {
    pub id: i64,
    pub name: String,
    /// Followers carrying it; absent in create's answer.
    #[serde(default)]
    pub count: i64,
}

/// One page of a list of openids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct OpenIdPage {
    /// Openids on this page; 0 marks the end.
    #[serde(default)]
    pub count: i64,
    #[serde(default)]
    pub data: Option<OpenIdList>,
    /// Pass back to get the next page.
    #[serde(default)]
    pub next_openid: String,
    /// All followers (user/get only).
    #[serde(default)]
    pub total: Option<i64>,
}

/// The `data` member of a page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct OpenIdList {
    #[serde(default)]
    pub openid: Vec<String>,
}

impl OpenIdPage {
    /// The openids on this page.
    pub fn openids(&self) -> &[String] {
        self.data.as_ref().map_or(&[], |d| d.openid.as_slice())
    }
}

#[derive(Deserialize)]
struct TagAnswer {
    tag: WeChatTag,
}

#[derive(Deserialize)]
struct TagsAnswer {
    tags: Vec<WeChatTag>,
}

#[derive(Deserialize)]
struct TagIdsAnswer {
    #[serde(default)]
    tagid_list: Vec<i64>,
}

#[derive(Serialize)]
struct Members<'a> {
    openid_list: &'a [String],
    tagid: i64,
}

impl ApiClient {
    /// `tags/create`: 45157 when the name is taken, 45158 past 30 bytes, 45056 past 100 tags.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn create_tag(&self, name: &str) -> Result<WeChatTag, WeChatError> {
        let answer: TagAnswer = self.post("/cgi-bin/tags/create", &json!({ "tag": { "name": name } })).await?;
        Ok(answer.tag)
    }

    /// `tags/get`: every tag of the account with its follower count.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn list_tags(&self) -> Result<Vec<WeChatTag>, WeChatError> {
        let answer: TagsAnswer = self.get("/cgi-bin/tags/get", &[]).await?;
        Ok(answer.tags)
    }

    /// `tags/update`: renames a tag (45058 for the reserved ones).
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn update_tag(&self, id: i64, name: &str) -> Result<(), WeChatError> {
        let _: Ok0 = self.post("/cgi-bin/tags/update", &json!({ "tag": { "id": id, "name": name } })).await?;
        Ok(())
    }

    /// `tags/delete`: 45057 while more than 100,000 followers carry it.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn delete_tag(&self, id: i64) -> Result<(), WeChatError> {
        let _: Ok0 = self.post("/cgi-bin/tags/delete", &json!({ "tag": { "id": id } })).await?;
        Ok(())
    }

    /// `tags/members/batchtagging`: at most [`MAX_OPENIDS_PER_BATCH`] openids (40032 otherwise).
    ///
    /// # Errors
    /// Any [`WeChatError`]; 45059 when a user already carries 20 tags.
    pub async fn batch_tag(&self, tag_id: i64, openids: &[String]) -> Result<(), WeChatError> {
        let _: Ok0 =
            self.post("/cgi-bin/tags/members/batchtagging", &Members { openid_list: openids, tagid: tag_id }).await?;
        Ok(())
    }

    /// `tags/members/batchuntagging`: at most [`MAX_OPENIDS_PER_BATCH`] openids.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn batch_untag(&self, tag_id: i64, openids: &[String]) -> Result<(), WeChatError> {
        let _: Ok0 =
            self.post("/cgi-bin/tags/members/batchuntagging", &Members { openid_list: openids, tagid: tag_id }).await?;
        Ok(())
    }

    /// `tags/getidlist`: the tag ids one follower carries.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn user_tag_ids(&self, openid: &str) -> Result<Vec<i64>, WeChatError> {
        let answer: TagIdsAnswer = self.post("/cgi-bin/tags/getidlist", &json!({ "openid": openid })).await?;
        Ok(answer.tagid_list)
    }

    /// `user/tag/get`: one page of a tag's followers; start with `""`, stop at `count == 0`.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn tag_members(&self, tag_id: i64, next_openid: &str) -> Result<OpenIdPage, WeChatError> {
        self.post("/cgi-bin/user/tag/get", &json!({ "tagid": tag_id, "next_openid": next_openid })).await
    }
}
