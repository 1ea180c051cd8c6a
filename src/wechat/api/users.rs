//! Followers (用户管理): the list and what WeChat still tells about each (no nicknames since 2021).

use serde::Deserialize;
use serde_json::json;

use super::{ApiClient, OpenIdPage, WeChatError};

/// WeChat's limit on entries per user/info/batchget call.
pub const MAX_USERS_PER_BATCHGET: usize = 100;

/// What `user/info` returns; for someone who does not follow, only `openid` (and `subscribe: 0`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct UserInfo {
    #[serde(default)]
    pub subscribe: i64,
    pub openid: String,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub subscribe_time: Option<i64>,
    #[serde(default)]
    pub unionid: Option<String>,
    #[serde(default)]
    pub remark: Option<String>,
    #[serde(default)]
    pub tagid_list: Vec<i64>,
    /// `ADD_SCENE_QR_CODE` etc.; kept as text, WeChat adds values.
    #[serde(default)]
    pub subscribe_scene: Option<String>,
    #[serde(default)]
    pub qr_scene: Option<i64>,
    #[serde(default)]
    pub qr_scene_str: Option<String>,
}

impl UserInfo {
    /// Whether the user follows the account.
    pub fn is_subscribed(&self) -> bool {
        self.subscribe == 1
    }
}

#[derive(Deserialize)]
struct BatchAnswer {
    #[serde(default)]
    user_info_list: Vec<UserInfo>,
}

impl ApiClient {
    /// `user/get`: one page of up to 10,000 followers; start with `""`, stop at `count == 0`.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn list_followers(&self, next_openid: &str) -> Result<OpenIdPage, WeChatError> {
        if next_openid.is_empty() {
            self.get("/cgi-bin/user/get", &[]).await
        } else {
            self.get("/cgi-bin/user/get", &[("next_openid", next_openid)]).await
        }
    }

    /// `user/info` for one follower.
    ///
    /// # Errors
    /// Any [`WeChatError`]; 40003 for an openid not of this account.
    pub async fn user_info(&self, openid: &str) -> Result<UserInfo, WeChatError> {
        self.get("/cgi-bin/user/info", &[("openid", openid), ("lang", "zh_CN")]).await
    }

    /// `user/info/batchget` for up to [`MAX_USERS_PER_BATCHGET`] followers.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn user_infos(&self, openids: &[String]) -> Result<Vec<UserInfo>, WeChatError> {
        let list: Vec<_> = openids.iter().map(|o| json!({ "openid": o, "lang": "zh_CN" })).collect();
        let answer: BatchAnswer = self.post("/cgi-bin/user/info/batchget", &json!({ "user_list": list })).await?;
        Ok(answer.user_info_list)
    }
}
