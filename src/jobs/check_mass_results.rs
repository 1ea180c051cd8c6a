//! `check_mass_results`: reads back, with `mass/get`, the results WeChat never pushed.

use super::{JobCtx, JobError, db};
use crate::app::campaigns;
use crate::domain::job::{CheckMassResults, Job, JobKind};
use crate::store;

/// Calls asked about per `check_mass_results` run; more wait for the next.
const CHECK_RESULTS_BATCH: i64 = 200;

/// Queues a `check_mass_results` job for each account with an accepted call that has waited
/// longer than `result_wait` for its MASSSENDJOBFINISH and no check pending.
///
/// # Errors
/// The database.
pub async fn enqueue_result_check(
    client: &impl deadpool_postgres::GenericClient,
    result_wait: std::time::Duration,
) -> Result<bool, tokio_postgres::Error> {
    let accounts = store::campaigns::list_accounts_with_overdue_results(client, result_wait).await?;
    for account in &accounts {
        if !store::jobs::is_pending(client, *account, JobKind::CheckMassResults).await? {
            store::jobs::enqueue(client, *account, &Job::CheckMassResults(CheckMassResults {})).await?;
        }
    }
    Ok(!accounts.is_empty())
}

/// Runs the job: asks `mass/get` about each call whose MASSSENDJOBFINISH is overdue (WeChat
/// pushes it once, to whatever answered then: a push lost to an outage, a proxy or a callback
/// URL changed mid-send would otherwise leave the campaign `sending` for ever) and records the
/// final ones, so campaigns finish; their counts stay unknown.
///
/// # Errors
/// WeChat's transient refusals and the database: retried.
pub async fn run(ctx: &JobCtx) -> Result<(), JobError> {
    let mut client = ctx.pool.get().await.map_err(db)?;
    let overdue =
        store::campaigns::list_overdue_results(&client, ctx.account, ctx.campaigns.result_wait, CHECK_RESULTS_BATCH)
            .await
            .map_err(db)?;
    let mut still_sending = 0;
    for (campaign_id, msg_id) in overdue {
        let status = match ctx.api.mass_status(msg_id).await {
            Ok(status) => status.msg_status,
            Err(error) if error.is_transient() => return Err(JobError::Retry(error.to_string())),
            // The API's daily quota is used up: nothing to ask before Beijing midnight.
            Err(error) if error.quota_resumes_at().is_some() => return Err(super::classify(error)),
            Err(error) => {
                tracing::warn!(campaign.id = campaign_id, mass.msg_id = msg_id, %error, "mass/get refused; asking again later");
                continue;
            }
        };
        // The result, the temporary tag's removal and the campaign's status together.
        let txn = client.transaction().await.map_err(db)?;
        let recorded = campaigns::record_read_back(&txn, ctx.account, msg_id, &status).await.map_err(db)?;
        txn.commit().await.map_err(db)?;
        if recorded {
            tracing::warn!(
                campaign.id = campaign_id,
                mass.msg_id = msg_id,
                %status,
                "MASSSENDJOBFINISH never came; the job's status was read back with mass/get (no counts)"
            );
        } else {
            still_sending += 1;
        }
    }
    if still_sending > 0 {
        tracing::info!(calls = still_sending, "mass jobs still sending on WeChat; asking again later");
    }
    Ok(())
}
