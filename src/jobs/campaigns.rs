//! The worker loop's work on campaigns besides their jobs: scheduled campaigns whose time has
//! come are moved to `sending` and their `send_campaign` job queued (in one process only), and
//! the minute's sweep over campaigns under way.

use super::JobCtx;
use super::check_mass_results::enqueue_result_check;
use crate::app::campaigns;
use crate::domain::job::{Job, SendCampaign};
use crate::store;

/// Moves due scheduled campaigns to `sending` and queues their job, in one transaction; returns
/// how many fired.
///
/// # Errors
/// The database.
pub async fn fire_scheduled(ctx: &JobCtx) -> Result<usize, super::WorkerError> {
    let mut client = ctx.pool.get().await?;
    let txn = client.transaction().await?;
    let due = store::campaigns::take_due_scheduled(&txn, ctx.campaigns.clock.now()).await?;
    for (id, account) in &due {
        store::jobs::enqueue(&txn, *account, &Job::SendCampaign(SendCampaign { campaign_id: *id })).await?;
    }
    txn.commit().await?;
    if !due.is_empty() {
        tracing::info!(campaigns = due.len(), "scheduled campaigns fired");
    }
    Ok(due.len())
}

/// The minute's look at campaigns under way: a send whose job died (WeChat down for longer
/// than its retries) gets a new job, a campaign with nothing left to hear about is settled (two
/// results arriving at once may each have missed the other), and a `check_mass_results` job is
/// queued when a result is overdue.
///
/// # Errors
/// The database.
pub async fn sweep(
    client: &impl deadpool_postgres::GenericClient,
    result_wait: std::time::Duration,
) -> Result<(), tokio_postgres::Error> {
    for (id, account) in store::campaigns::list_stalled_sends(client).await? {
        tracing::warn!(campaign.id = id, "a campaign's send job ended with calls left; queueing it again");
        store::jobs::enqueue(client, account, &Job::SendCampaign(SendCampaign { campaign_id: id })).await?;
    }
    for (id, account) in store::campaigns::list_sending(client).await? {
        campaigns::settle(client, account, id).await?;
    }
    enqueue_result_check(client, result_wait).await?;
    Ok(())
}
