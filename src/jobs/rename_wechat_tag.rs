//! `rename_wechat_tag {wechat_tag_id, name}`: renames the tag on WeChat (`tags/update`) after a
//! local rename. A tag gone from WeChat has nothing to rename: the outbox creates it anew under
//! the new name the next time someone is tagged.

use super::{JobCtx, JobError, classify, db};
use crate::domain::job::RenameWechatTag;
use crate::store;
use crate::wechat::api::ErrCode;

/// Runs the job.
///
/// # Errors
/// WeChat or the database failed: retried when that may help.
pub async fn run(ctx: &JobCtx, job: &RenameWechatTag) -> Result<(), JobError> {
    let (id, name) = (job.wechat_tag_id, job.name.as_str());
    match ctx.api.update_tag(id, name).await {
        Ok(()) => {}
        Err(error) if error.code() == Some(ErrCode::InvalidTagId) => return Ok(()),
        Err(error) => return Err(classify(error)),
    }
    let client = ctx.pool.get().await.map_err(db)?;
    store::tags::rename_wechat_tag_mirror(&client, ctx.account, id, name).await.map_err(db)?;
    tracing::info!(wechat.tag_id = id, "renamed the tag on WeChat");
    Ok(())
}
