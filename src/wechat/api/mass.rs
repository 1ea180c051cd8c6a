//! Mass sends (群发): by tag or to everyone (sendall), by openid list (send; service accounts only),
//! preview, status, delete and speed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{ApiClient, Ok0, WeChatError};

/// WeChat's bounds on a `send` openid list.
pub const MASS_SEND_MIN_OPENIDS: usize = 2;
pub const MASS_SEND_MAX_OPENIDS: usize = 10_000;

/// What a mass send carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum MassMessage {
    Text {
        content: String,
    },
    /// A draft's (or uploaded article's) media_id.
    Mpnews {
        media_id: String,
    },
    /// Permanent image materials; WeChat's key for these is `images`.
    Image {
        media_ids: Vec<String>,
    },
    Voice {
        media_id: String,
    },
    /// A media_id from `media/uploadvideo`.
    Mpvideo {
        media_id: String,
    },
}

impl MassMessage {
    /// WeChat's `msgtype`.
    pub fn msgtype(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Mpnews { .. } => "mpnews",
            Self::Image { .. } => "image",
            Self::Voice { .. } => "voice",
            Self::Mpvideo { .. } => "mpvideo",
        }
    }

    /// `msgtype` plus its body, as every mass API takes them.
    fn body(&self) -> Map<String, Value> {
        let (key, content) = match self {
            Self::Text { content } => ("text", json!({ "content": content })),
            Self::Mpnews { media_id } => ("mpnews", json!({ "media_id": media_id })),
            Self::Image { media_ids } => ("images", json!({ "media_ids": media_ids })),
            Self::Voice { media_id } => ("voice", json!({ "media_id": media_id })),
            Self::Mpvideo { media_id } => ("mpvideo", json!({ "media_id": media_id })),
        };
        let mut body = Map::new();
        body.insert("msgtype".into(), self.msgtype().into());
        body.insert(key.into(), content);
        if matches!(self, Self::Mpnews { .. }) {
            // Stop rather than silently send someone else's article.
            body.insert("send_ignore_reprint".into(), 0.into());
        }
        body
    }
}

/// Who a `sendall` reaches. There is no default: everyone must be asked for by name, so a
/// mistyped tag can never widen into a send to all followers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendAllAudience {
    Everyone,
    Tag(i64),
}

/// WeChat accepted the job; the outcome arrives later as MASSSENDJOBFINISH.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MassSendAccepted {
    pub msg_id: i64,
    /// For mpnews: the article data id that datacube statistics are keyed by.
    #[serde(default)]
    pub msg_data_id: Option<i64>,
}

/// `message/mass/get`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MassStatus {
    #[serde(default)]
    pub msg_id: Option<Value>,
    /// `SEND_SUCCESS`, `SENDING`, `SEND_FAIL` or `DELETE`.
    pub msg_status: String,
}

/// `message/mass/speed/get`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MassSpeed {
    pub speed: i64,
    #[serde(default)]
    pub realspeed: Option<i64>,
}

impl ApiClient {
    /// `message/mass/sendall` to a tag or to everyone. `clientmsgid` (≤ 64 bytes) makes a retry
    /// within 24 h answer 45065 with the first job's msg_id instead of sending twice.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn mass_send_all(
        &self,
        audience: SendAllAudience,
        message: &MassMessage,
        clientmsgid: &str,
    ) -> Result<MassSendAccepted, WeChatError> {
        let mut body = message.body();
        let filter = match audience {
            SendAllAudience::Everyone => json!({ "is_to_all": true }),
            SendAllAudience::Tag(tag_id) => json!({ "is_to_all": false, "tag_id": tag_id }),
        };
        body.insert("filter".into(), filter);
        body.insert("clientmsgid".into(), clientmsgid.into());
        self.post("/cgi-bin/message/mass/sendall", &body).await
    }

    /// `message/mass/send` to 2..=10,000 openids (service accounts only).
    ///
    /// # Errors
    /// Any [`WeChatError`]; 40130 for a list out of bounds.
    pub async fn mass_send_to(
        &self,
        openids: &[String],
        message: &MassMessage,
        clientmsgid: &str,
    ) -> Result<MassSendAccepted, WeChatError> {
        let mut body = message.body();
        body.insert("touser".into(), json!(openids));
        body.insert("clientmsgid".into(), clientmsgid.into());
        self.post("/cgi-bin/message/mass/send", &body).await
    }

    /// `message/mass/preview` to one follower.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn mass_preview(&self, openid: &str, message: &MassMessage) -> Result<(), WeChatError> {
        let mut body = message.body();
        body.insert("touser".into(), openid.into());
        body.remove("send_ignore_reprint");
        let _: Ok0 = self.post("/cgi-bin/message/mass/preview", &body).await?;
        Ok(())
    }

    /// `message/mass/get`.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn mass_status(&self, msg_id: i64) -> Result<MassStatus, WeChatError> {
        self.post("/cgi-bin/message/mass/get", &json!({ "msg_id": msg_id.to_string() })).await
    }

    /// `message/mass/delete`; `article_idx` 0 deletes the whole send.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn mass_delete(&self, msg_id: i64, article_idx: u32) -> Result<(), WeChatError> {
        let _: Ok0 =
            self.post("/cgi-bin/message/mass/delete", &json!({ "msg_id": msg_id, "article_idx": article_idx })).await?;
        Ok(())
    }

    /// `message/mass/speed/get`.
    ///
    /// # Errors
    /// Any [`WeChatError`].
    pub async fn mass_speed(&self) -> Result<MassSpeed, WeChatError> {
        self.post("/cgi-bin/message/mass/speed/get", &json!({})).await
    }

    /// `message/mass/speed/set`: 0 (fastest) to 4.
    ///
    /// # Errors
    /// Any [`WeChatError`]; 45083 out of range.
    pub async fn set_mass_speed(&self, speed: u8) -> Result<(), WeChatError> {
        let _: Ok0 = self.post("/cgi-bin/message/mass/speed/set", &json!({ "speed": speed })).await?;
        Ok(())
    }
}
