//! The last check before a campaign's mass call: is its content still on WeChat?

use crate::wechat::api::{ApiClient, ErrCode, MassMessage, WeChatError};

/// Why an mpnews campaign may not go out now.
#[derive(Debug, thiserror::Error)]
pub enum MissingDraft {
    /// WeChat says the draft does not exist (40007): deleted or published away.
    #[error("图文素材（草稿）已不存在：media_id {0}，请重新选择草稿后再发送")]
    Gone(String),
    /// WeChat could not be asked; the send waits.
    #[error("WeChat API call failed")]
    WeChat(#[from] WeChatError),
}

/// For an mpnews message, asks WeChat (`draft/get`) whether its `media_id` is still a draft of
/// the account, right before it is mass-sent (other messages pass): a draft deleted in the console since the campaign was composed would make
/// the send fail with 40007, and the editor should hear why in words.
///
/// # Errors
/// [`MissingDraft::Gone`] when WeChat no longer has it; [`MissingDraft::WeChat`] when WeChat
/// could not say.
pub async fn check_draft(api: &ApiClient, message: &MassMessage) -> Result<(), MissingDraft> {
    let MassMessage::Mpnews { media_id } = message else { return Ok(()) };
    match api.get_draft(media_id).await {
        Ok(_) => Ok(()),
        Err(error) if error.code() == Some(ErrCode::InvalidMediaId) => Err(MissingDraft::Gone(media_id.to_owned())),
        Err(error) => Err(error.into()),
    }
}
