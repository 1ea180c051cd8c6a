//! `fetch_article_reads`: datacube's daily article reads of campaign articles; the worker loop
//! queues it every hour.

use super::{JobCtx, JobError, db};
use crate::domain::account::AccountId;
use crate::domain::calendar;
use crate::domain::job::{FetchArticleReads, Job, JobKind};
use crate::store;

/// datacube follows an article for 30 days after publishing.
const READ_DAYS: i64 = 31;

/// Queues a fetch of `account`'s article reads unless one is pending.
///
/// # Errors
/// The database.
pub async fn enqueue_read_fetch(
    client: &impl deadpool_postgres::GenericClient,
    account: AccountId,
) -> Result<(), tokio_postgres::Error> {
    if !store::jobs::is_pending(client, account, JobKind::FetchArticleReads).await? {
        store::jobs::enqueue(client, account, &Job::FetchArticleReads(FetchArticleReads {})).await?;
    }
    Ok(())
}

/// Runs the job: for each Beijing day of the last 31 on which a campaign article was published,
/// once a day, asks datacube's `getarticletotaldetail` (one publishing day per call, the span
/// WeChat allows) and keeps each campaign article's cumulative readers: per article of a
/// multi-article send, and the first article's again as the send's own (what a campaign's read
/// rate is taken from).
///
/// # Errors
/// WeChat (retried when transient) or the database (retried).
pub async fn run(ctx: &JobCtx) -> Result<(), JobError> {
    let today = calendar::beijing_date(ctx.campaigns.clock.now());
    let Some(yesterday) = today.pred_opt() else { return Ok(()) };
    let since = today - chrono::Duration::days(READ_DAYS);
    let client = ctx.pool.get().await.map_err(db)?;
    for day in
        store::campaigns::list_publish_days_to_fetch(&client, ctx.account, since, yesterday, today).await.map_err(db)?
    {
        let rows = match ctx.api.article_totals(day, day).await {
            Ok(rows) => rows,
            Err(error) if error.is_transient() => return Err(JobError::Retry(error.to_string())),
            // The API's daily quota is used up: nothing to ask before Beijing midnight.
            Err(error) if error.quota_resumes_at().is_some() => return Err(super::classify(error)),
            Err(error) => return Err(JobError::Permanent(error.to_string())),
        };
        for row in rows {
            // `<msg_data_id>_<index>`, index 1-based.
            let Some((data_id, idx)) = row.msgid.split_once('_') else { continue };
            let (Ok(data_id), Ok(idx)) = (data_id.parse::<i64>(), idx.parse::<i32>()) else { continue };
            let Some(read_user) = row.detail_list.iter().map(|d| d.read_user).max() else { continue };
            if idx < 1 || !store::campaigns::is_campaign_article(&client, ctx.account, data_id).await.map_err(db)? {
                continue;
            }
            store::campaigns::upsert_article_index_reads(&client, ctx.account, data_id, idx, read_user)
                .await
                .map_err(db)?;
            if idx == 1 {
                store::campaigns::upsert_article_reads(&client, ctx.account, data_id, read_user).await.map_err(db)?;
            }
        }
        store::campaigns::mark_publish_day_fetched(&client, ctx.account, day, today).await.map_err(db)?;
    }
    Ok(())
}
