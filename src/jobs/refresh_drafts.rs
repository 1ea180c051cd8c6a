//! `refresh_drafts`: brings the local list of the account's WeChat drafts up to date; the worker
//! loop queues it hourly with the article read fetch, and `tagcast sync` does the same inline.

use super::{JobCtx, JobError};
use crate::app::drafts::{self, DraftError};
use crate::domain::account::AccountId;
use crate::domain::job::{Job, JobKind, RefreshDrafts};
use crate::store;

/// Queues a refresh of `account`'s drafts unless one is pending.
///
/// # Errors
/// The database.
pub async fn enqueue_refresh(
    client: &impl deadpool_postgres::GenericClient,
    account: AccountId,
) -> Result<(), tokio_postgres::Error> {
    if !store::jobs::is_pending(client, account, JobKind::RefreshDrafts).await? {
        store::jobs::enqueue(client, account, &Job::RefreshDrafts(RefreshDrafts {})).await?;
    }
    Ok(())
}

/// Runs the job.
///
/// # Errors
/// WeChat (retried when transient) or the database (retried).
pub async fn run(ctx: &JobCtx) -> Result<(), JobError> {
    match drafts::refresh_drafts(&ctx.pool, ctx.account, &ctx.api).await {
        Ok(_) => Ok(()),
        Err(DraftError::WeChat(error)) if !error.is_transient() => Err(JobError::Permanent(error.to_string())),
        Err(error) => Err(JobError::Retry(error.to_string())),
    }
}
