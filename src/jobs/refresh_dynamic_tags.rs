//! `refresh_dynamic_tags {tag_id?}`: recomputes dynamic tags over every follower, set-based, at
//! the clock's now. Without `tag_id` it does the tags that time alone can change (a window like
//! `30d`); the worker loop queues that every [`REFRESH_EVERY`]. With `tag_id` it fills one tag
//! whose `when` was just created or changed.

use std::time::Duration;

use super::{JobCtx, JobError};
use crate::app::audience;
use crate::domain::account::AccountId;
use crate::domain::job::{Job, JobKind, RefreshDynamicTags};
use crate::store;

/// How often the worker loop queues the scheduled pass. A window tag flips at most this late.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

/// Runs the job.
///
/// # Errors
/// [`JobError::Retry`] when the database fails.
pub async fn run(ctx: &JobCtx, job: &RefreshDynamicTags) -> Result<(), JobError> {
    let (added, removed) = audience::refresh_dynamic_tags(&ctx.pool, ctx.account, &ctx.clock, job.tag_id)
        .await
        .map_err(|e| JobError::Retry(format!("{e}: {:?}", std::error::Error::source(&e))))?;
    tracing::info!(added, removed, tag.id = job.tag_id, "dynamic tags refreshed");
    Ok(())
}

/// Queues `account`'s scheduled pass unless one is already waiting (several processes may ask
/// at once; an extra pass is harmless).
///
/// # Errors
/// The database.
pub async fn enqueue_scheduled_for(
    client: &impl deadpool_postgres::GenericClient,
    account: AccountId,
) -> Result<bool, tokio_postgres::Error> {
    let waiting = store::jobs::is_pending_without_payload(client, account, JobKind::RefreshDynamicTags).await?;
    if !waiting {
        store::jobs::enqueue(client, account, &Job::RefreshDynamicTags(RefreshDynamicTags { tag_id: None })).await?;
    }
    Ok(!waiting)
}

/// Queues the scheduled pass of every account with dynamic tags (an account without any has
/// nothing for the pass to do, and a hundred idle accounts cost no jobs).
///
/// # Errors
/// The database.
pub async fn enqueue_scheduled(client: &impl deadpool_postgres::GenericClient) -> Result<usize, tokio_postgres::Error> {
    let mut queued = 0;
    for account in store::segments::list_accounts_with_dynamic_tags(client).await? {
        if enqueue_scheduled_for(client, account).await? {
            queued += 1;
        }
    }
    Ok(queued)
}
