//! `check_mass_results`: reads back, with `mass/get`, the results WeChat never pushed.

use super::{JobCtx, JobError, db};
use crate::app::campaigns;
use crate::domain::job::{CheckMassResults, Job, JobKind};
use crate::store;

/// Calls asked about per `check_mass_results` run; more wait for the next.
const CHECK_RESULTS_BATCH: i64 = 200;

/// Queues a `check_mass_results` job when some accepted call has waited longer than
/// `result_wait` for its MASSSENDJOBFINISH and no check is pending.
///
/// # Errors
/// The database.
pub async fn enqueue_result_check(
    client: &impl deadpool_postgres::GenericClient,
    result_wait: std::time::Duration,
) -> Result<bool, tokio_postgres::Error> {
    if store::campaigns::list_overdue_results(client, result_wait, 1).await?.is_empty() {
        return Ok(false);
    }
    if !store::jobs::is_pending(client, JobKind::CheckMassResults).await? {
        store::jobs::enqueue(
            client,
            crate::domain::account::AccountId::UNSCOPED,
            &Job::CheckMassResults(CheckMassResults {}),
        )
        .await?;
    }
    Ok(true)
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
    let overdue = store::campaigns::list_overdue_results(&client, ctx.campaigns.result_wait, CHECK_RESULTS_BATCH)
        .await
        .map_err(db)?;
    let mut still_sending = 0;
    for (campaign_id, msg_id) in overdue {
        let status = match ctx.api.mass_status(msg_id).await {
            Ok(status) => status.msg_status,
            Err(error) if error.is_transient() => return Err(JobError::Retry(error.to_string())),
            Err(error) => {
                tracing::warn!(campaign.id = campaign_id, mass.msg_id = msg_id, %error, "mass/get refused; asking again later");
                continue;
            }
        };
        // The result, the temporary tag's removal and the campaign's status together.
        let txn = client.transaction().await.map_err(db)?;
        let recorded = campaigns::record_read_back(&txn, msg_id, &status).await.map_err(db)?;
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
