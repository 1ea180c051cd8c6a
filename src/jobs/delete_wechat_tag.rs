//! `delete_wechat_tag {wechat_tag_id}`: deletes the tag on WeChat; a tag with more than 100,000
//! members (45057) is emptied first, 50 at a time.

use super::{JobCtx, JobError, classify, db};
use crate::domain::job::DeleteWechatTag;
use crate::store;
use crate::wechat::api::{ErrCode, MAX_OPENIDS_PER_BATCH, WeChatError};

/// Runs the job.
///
/// # Errors
/// WeChat or the database failed: retried when that may help.
pub async fn run(ctx: &JobCtx, job: &DeleteWechatTag) -> Result<(), JobError> {
    let id = job.wechat_tag_id;
    match ctx.api.delete_tag(id).await {
        Ok(()) => {}
        Err(error) if error.code() == Some(ErrCode::InvalidTagId) => {}
        Err(error) if error.code() == Some(ErrCode::TagTooLargeToDelete) => {
            let members = wechat_members(ctx, id).await.map_err(classify)?;
            for chunk in members.chunks(MAX_OPENIDS_PER_BATCH) {
                ctx.api.batch_untag(id, chunk).await.map_err(classify)?;
            }
            ctx.api.delete_tag(id).await.map_err(classify)?;
        }
        Err(error) => return Err(classify(error)),
    }
    let client = ctx.pool.get().await.map_err(db)?;
    store::tags::delete_wechat_tag_mirror(&client, ctx.account, id).await.map_err(db)?;
    tracing::info!(wechat.tag_id = id, "deleted the tag on WeChat");
    Ok(())
}

/// Every member of a WeChat tag, page by page.
pub(super) async fn wechat_members(ctx: &JobCtx, wechat_tag_id: i64) -> Result<Vec<String>, WeChatError> {
    let mut members = Vec::new();
    let mut next = String::new();
    loop {
        let page = ctx.api.tag_members(wechat_tag_id, &next).await?;
        if page.count == 0 || page.openids().is_empty() {
            return Ok(members);
        }
        members.extend(page.openids().iter().cloned());
        if page.next_openid.is_empty() || page.next_openid == next {
            return Ok(members);
        }
        next = page.next_openid;
    }
}
