//! What WeChat says after a send: MASSSENDJOBFINISH (or the status `mass/get` reads back)
//! per call, and the campaign's final status once every call is heard of.

use deadpool_postgres::GenericClient;

use crate::app::inbox::{Handler, HandlerError, HandlerFuture};
use crate::domain::account::AccountId;
use crate::domain::campaign::Status;
use crate::domain::job::{DeleteWechatTag, Job};
use crate::store;
use crate::wechat::message::Inbound;
use crate::wechat::reply::Reply;

/// Takes in MASSSENDJOBFINISH: the call's counts, then the campaign's status once every call
/// has finished. A temporary tag is removed on WeChat once its job is done.
#[derive(Debug, Default)]
pub struct MassResults;

impl Handler for MassResults {
    fn name(&self) -> &'static str {
        "campaign_results"
    }

    fn handle<'a>(
        &'a self,
        txn: &'a deadpool_postgres::Client,
        messages: &'a [crate::app::inbox::Received<'a>],
        _prefetched: Option<&'a (dyn std::any::Any + Send + Sync)>,
    ) -> HandlerFuture<'a> {
        Box::pin(async move {
            let mut replies: Vec<Option<Reply>> = Vec::with_capacity(messages.len());
            for message in messages {
                if let Inbound::MassSendJobFinish {
                    msg_id,
                    status,
                    total_count,
                    filter_count,
                    sent_count,
                    error_count,
                    ..
                } = &message.body
                {
                    let finish = store::campaigns::Finish {
                        msg_id: *msg_id as i64,
                        status,
                        total: *total_count as i64,
                        filter: *filter_count as i64,
                        sent: *sent_count as i64,
                        error: *error_count as i64,
                    };
                    record_finish(txn, message.account, &finish).await.map_err(|e| Box::new(e) as HandlerError)?;
                }
                replies.push(None);
            }
            Ok(replies)
        })
    }
}

/// Records `account`'s MASSSENDJOBFINISH: its msg_id names a call of that account's campaigns
/// only (another account's WeChat numbers its jobs on its own).
async fn record_finish(
    client: &impl GenericClient,
    account: AccountId,
    finish: &store::campaigns::Finish<'_>,
) -> Result<(), tokio_postgres::Error> {
    let Some((call, arrival)) = store::campaigns::record_finish(client, account, finish).await? else {
        tracing::info!(
            mass.msg_id = finish.msg_id,
            "MASSSENDJOBFINISH repeated, or for a job no campaign has recorded (yet); kept by msg_id"
        );
        return Ok(());
    };
    after_result(client, account, call, arrival == store::campaigns::Arrival::First).await
}

/// Takes in a job's final status read back with `mass/get` (`SEND_SUCCESS`, `SEND_FAIL` or
/// `DELETE`) when its MASSSENDJOBFINISH did not come: the call counts as finished, without
/// counts. `SENDING` (or anything else) records nothing.
///
/// # Errors
/// The database.
pub async fn record_read_back(
    client: &impl GenericClient,
    account: AccountId,
    msg_id: i64,
    msg_status: &str,
) -> Result<bool, tokio_postgres::Error> {
    // The `Status` strings MASSSENDJOBFINISH would have carried.
    let status = match msg_status {
        "SEND_SUCCESS" => "send success",
        "SEND_FAIL" => "send fail",
        "DELETE" => "deleted",
        _ => return Ok(false),
    };
    if let Some(call) = store::campaigns::record_read_back(client, account, msg_id, status).await? {
        after_result(client, account, call, true).await?;
    }
    Ok(true)
}

/// A call's job has finished: its temporary tag goes (once: `first` result heard), and the
/// campaign's status follows.
async fn after_result(
    client: &impl GenericClient,
    account: AccountId,
    (campaign_id, kind, wechat_tag_id): (i64, String, Option<i64>),
    first: bool,
) -> Result<(), tokio_postgres::Error> {
    if let (Some(tag), "temp_tag", true) = (wechat_tag_id, kind.as_str(), first) {
        store::jobs::enqueue(client, account, &Job::DeleteWechatTag(DeleteWechatTag { wechat_tag_id: tag })).await?;
    }
    settle(client, account, campaign_id).await
}

/// Moves `account`'s `sending` campaign to `sent` or `failed` once nothing is left to hear about.
///
/// # Errors
/// The database.
pub async fn settle(
    client: &impl GenericClient,
    account: AccountId,
    campaign_id: i64,
) -> Result<(), tokio_postgres::Error> {
    // Two results settling at once in two transactions would each miss the other's: inside a
    // transaction the campaign's row lock makes the second wait and then see the first.
    if store::campaigns::lock_campaign(client, account, campaign_id).await?.is_none() {
        return Ok(());
    }
    let p = store::campaigns::progress(client, campaign_id).await?;
    if p.chunks == 0 || p.pending > 0 || p.finished < p.submitted {
        return Ok(());
    }
    let status = if p.succeeded > 0 { Status::Sent } else { Status::Failed };
    store::campaigns::finish_sending(client, campaign_id, status.as_str()).await?;
    tracing::info!(campaign.id = campaign_id, status = status.as_str(), sent = p.sent, "campaign finished");
    Ok(())
}
