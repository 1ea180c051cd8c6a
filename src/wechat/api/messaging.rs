//! One-to-one messages (客服消息), the custom menu, and web OAuth.

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ApiClient, Ok0, WeChatError};

/// A customer-service message; allowed within the window a follower's action opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CustomMessage {
    Text {
        content: String,
    },
    Image {
        media_id: String,
    },
    Voice {
        media_id: String,
    },
    /// One article card.
    News {
        title: String,
        description: String,
        url: String,
        picurl: String,
    },
}

/// A menu button: either a leaf with a type, or a group of up to 5 sub-buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuButton {
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_button: Vec<MenuButton>,
}

/// The whole custom menu: 1–3 top-level buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Menu {
    pub button: Vec<MenuButton>,
}

/// What `sns/oauth2/access_token` answers for a user-consented code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OAuthGrant {
    pub access_token: String,
    pub expires_in: i64,
    #[serde(default)]
    pub refresh_token: Option<String>,
    pub openid: String,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub unionid: Option<String>,
}

impl ApiClient {
    /// `clear_quota`: resets every daily API count of the account (10 times per month).
    ///
    /// # Errors
    /// Any [`WeChatError`]; 48006 when this month's resets are used up.
    pub async fn clear_quota(&self) -> Result<(), WeChatError> {
        let _: Ok0 = self.post("/cgi-bin/clear_quota", &json!({ "appid": self.appid() })).await?;
        Ok(())
    }

    /// `message/custom/send`.
    ///
    /// # Errors
    /// Any [`WeChatError`]; 45015 outside the window, 45047 over its quota.
    pub async fn send_custom(&self, openid: &str, message: &CustomMessage) -> Result<(), WeChatError> {
        let body = match message {
            CustomMessage::Text { content } => {
                json!({ "touser": openid, "msgtype": "text", "text": { "content": content } })
            }
            CustomMessage::Image { media_id } => {
                json!({ "touser": openid, "msgtype": "image", "image": { "media_id": media_id } })
            }
            CustomMessage::Voice { media_id } => {
                json!({ "touser": openid, "msgtype": "voice", "voice": { "media_id": media_id } })
            }
            CustomMessage::News { title, description, url, picurl } => json!({
                "touser": openid, "msgtype": "news",
                "news": { "articles": [{ "title": title, "description": description, "url": url, "picurl": picurl }] }
            }),
        };
        let _: Ok0 = self.post("/cgi-bin/message/custom/send", &body).await?;
        Ok(())
    }

    /// `menu/create`: replaces the whole menu.
    ///
    /// # Errors
    /// Any [`WeChatError`]; 40016–40027 for a menu breaking WeChat's rules.
    pub async fn create_menu(&self, menu: &Menu) -> Result<(), WeChatError> {
        let _: Ok0 = self.post("/cgi-bin/menu/create", menu).await?;
        Ok(())
    }

    /// `menu/get`: the menu as WeChat holds it (kept loose: it nests conditional menus too).
    ///
    /// # Errors
    /// Any [`WeChatError`]; 46002 when there is no menu.
    pub async fn get_menu(&self) -> Result<Value, WeChatError> {
        self.get("/cgi-bin/menu/get", &[]).await
    }

    /// `sns/oauth2/access_token`: exchanges a web-authorisation code for the user's openid.
    ///
    /// # Errors
    /// Any [`WeChatError`]; 40163 for a code already used.
    pub async fn oauth_exchange(&self, code: &str) -> Result<OAuthGrant, WeChatError> {
        let inner = &self.inner;
        let query = [
            ("appid", inner.appid.as_str()),
            ("secret", inner.secret.expose_secret()),
            ("code", code),
            ("grant_type", "authorization_code"),
        ];
        self.call_with_credentials(reqwest::Method::GET, "/sns/oauth2/access_token", &query, None::<&()>).await
    }
}
