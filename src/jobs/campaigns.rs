//! Delivering campaigns: scheduled campaigns whose time has come are moved to `sending` and
//! queued (in one process only), and the `send_campaign` job makes the planned WeChat calls one
//! by one, recording each call's outcome as soon as WeChat answers.
//!
//! Exactly once: every call carries the clientmsgid stored with it. A process killed after
//! WeChat accepted a call but before recording it leaves the call `pending`; the job (taken over
//! by any process once the dead one's row lock is gone) repeats it, WeChat answers 45065 with
//! the first job's msg_id, and that is recorded as the call's outcome. No one is sent to twice.
//!
//! Misdirection guards: only a call planned as `all` (an audience of `{"all": true}` without
//! variants) sets `is_to_all`; a tag send first checks that the tag still exists on WeChat.

use super::{JobCtx, JobError};
use crate::app::campaigns::{self, CampaignError};
use crate::domain::campaign::Status;
use crate::store;
use crate::store::campaigns::ChunkRow;
use crate::wechat::api::{
    ErrCode, MASS_SEND_MIN_OPENIDS, MAX_OPENIDS_PER_BATCH, MassMessage, SendAllAudience, WeChatError,
};

/// Moves due scheduled campaigns to `sending` and queues their job, in one transaction; returns
/// how many fired.
///
/// # Errors
/// The database.
pub async fn fire_scheduled(ctx: &JobCtx) -> Result<usize, super::WorkerError> {
    let mut client = ctx.pool.get().await?;
    let txn = client.transaction().await?;
    let due = store::campaigns::take_due_scheduled(&txn, ctx.campaigns.clock.now()).await?;
    for id in &due {
        store::jobs::enqueue(&txn, campaigns::SEND_JOB, &serde_json::json!({ "campaign_id": id })).await?;
    }
    txn.commit().await?;
    if !due.is_empty() {
        tracing::info!(campaigns = due.len(), "scheduled campaigns fired");
    }
    Ok(due.len())
}

fn db(error: impl std::fmt::Display) -> JobError {
    JobError::Retry(format!("database: {error}"))
}

/// `send_campaign {campaign_id}`.
#[tracing::instrument(skip_all)]
pub async fn send(ctx: &JobCtx, payload: &serde_json::Value) -> Result<(), JobError> {
    let id = payload
        .get("campaign_id")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| JobError::Permanent("payload has no campaign_id".to_owned()))?;
    let client = ctx.pool.get().await.map_err(db)?;
    let Some(row) = store::campaigns::get_campaign(&client, id).await.map_err(db)? else {
        return Err(JobError::Permanent(format!("no campaign {id}")));
    };
    if row.status != Status::Sending.as_str() {
        tracing::info!(campaign.id = id, status = %row.status, "campaign no longer sending; nothing to do");
        return Ok(());
    }
    let messages: Vec<MassMessage> = campaigns::messages_of(&client, &row)
        .await
        .map_err(|e| JobError::Permanent(e.to_string()))?
        .iter()
        .map(campaigns::mass_message)
        .collect();
    drop(client);
    match campaigns::plan(&ctx.pool, &ctx.campaigns, &row).await {
        Ok(()) => {}
        Err(error @ (CampaignError::Pool(_) | CampaignError::Query(_))) => return Err(db(error)),
        // Back in the approval queue, not failed: it may go out once approved as it is now.
        Err(CampaignError::ApprovalLapsed { .. }) => return Ok(()),
        Err(error) => {
            fail_campaign(ctx, id, &error.to_string()).await?;
            return Ok(());
        }
    }
    let client = ctx.pool.get().await.map_err(db)?;
    let pending = store::campaigns::list_pending_seqs(&client, id).await.map_err(db)?;
    drop(client);
    let mut retry = None;
    for seq in pending {
        // Each call is read just before it is made: a cancel since the last call stops the rest,
        // and an erasure since the plan may have taken recipients out of its list.
        let client = ctx.pool.get().await.map_err(db)?;
        let current = store::campaigns::get_chunk(&client, id, seq).await.map_err(db)?;
        drop(client);
        let Some((chunk, status)) = current else { continue };
        if status != Status::Sending.as_str() {
            tracing::info!(campaign.id = id, "campaign cancelled mid-send; the remaining calls are skipped");
            return Ok(());
        }
        if chunk.state != "pending" {
            continue;
        }
        let chunk = &chunk;
        let message = messages.get(chunk.variant as usize).unwrap_or(&messages[0]);
        if let Err(error) = send_chunk(ctx, chunk, message).await {
            match error {
                JobError::Retry(e) => {
                    // Later calls wait: their order does not matter, but WeChat's trouble usually
                    // lasts longer than one call.
                    retry = Some(e);
                    break;
                }
                JobError::Permanent(e) => {
                    tracing::warn!(campaign.id = id, chunk.seq = chunk.seq, error = %e, "a campaign call failed for good");
                }
            }
        }
    }
    let client = ctx.pool.get().await.map_err(db)?;
    campaigns::settle(&client, id).await.map_err(db)?;
    let progress = store::campaigns::progress(&client, id).await.map_err(db)?;
    if progress.failed == progress.chunks {
        let last: Option<String> = client
            .query_opt(
                "SELECT last_error FROM campaign_chunks WHERE campaign_id = $1 AND last_error IS NOT NULL ORDER BY seq DESC LIMIT 1",
                &[&id],
            )
            .await
            .map_err(db)?
            .and_then(|r| r.get(0));
        store::campaigns::update_status(&client, id, Status::Failed.as_str(), last.as_deref()).await.map_err(db)?;
    }
    match retry {
        Some(error) => Err(JobError::Retry(error)),
        None => Ok(()),
    }
}

async fn fail_campaign(ctx: &JobCtx, id: i64, error: &str) -> Result<(), JobError> {
    tracing::warn!(campaign.id = id, %error, "campaign cannot be sent");
    let client = ctx.pool.get().await.map_err(db)?;
    store::campaigns::update_status(&client, id, Status::Failed.as_str(), Some(error)).await.map_err(db)
}

/// Waits for the account's next mass-send slot, shared by every process.
async fn pace(ctx: &JobCtx) -> Result<(), JobError> {
    let client = ctx.pool.get().await.map_err(db)?;
    let wait =
        store::campaigns::reserve_mass_slot(&client, ctx.campaigns.mass_interval.as_secs_f64()).await.map_err(db)?;
    drop(client);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    Ok(())
}

/// The temporary tag of a subscription-account send: unique per call, within WeChat's 30 bytes.
fn temp_tag_name(chunk: &ChunkRow) -> String {
    format!("tc-tmp-{}-{}", chunk.campaign_id, chunk.seq)
}

/// Makes one planned call and records its outcome.
async fn send_chunk(ctx: &JobCtx, chunk: &ChunkRow, message: &MassMessage) -> Result<(), JobError> {
    let started = std::time::Instant::now();
    let mut temp_tag = None;
    let outcome = match chunk.kind.as_str() {
        "all" => {
            pace(ctx).await?;
            ctx.api.mass_send_all(SendAllAudience::Everyone, message, &chunk.clientmsgid).await
        }
        "tag" => {
            let tag_id = chunk.wechat_tag_id.ok_or_else(|| JobError::Permanent("a tag call without a tag".into()))?;
            if !check_tag_exists(ctx, chunk, tag_id).await? {
                return Ok(());
            }
            pace(ctx).await?;
            ctx.api.mass_send_all(SendAllAudience::Tag(tag_id), message, &chunk.clientmsgid).await
        }
        "openids" if chunk.openids.len() < MASS_SEND_MIN_OPENIDS => {
            // Erasure took recipients out of a call not made yet, leaving fewer than WeChat sends.
            let client = ctx.pool.get().await.map_err(db)?;
            let reason = format!(
                "{} recipient(s) left after erasure; WeChat sends lists of at least {MASS_SEND_MIN_OPENIDS}",
                chunk.openids.len()
            );
            store::campaigns::skip_chunk(&client, chunk.campaign_id, chunk.seq, &reason).await.map_err(db)?;
            return Ok(());
        }
        "openids" => {
            pace(ctx).await?;
            ctx.api.mass_send_to(&chunk.openids, message, &chunk.clientmsgid).await
        }
        "temp_tag" => {
            let Some(tag_id) = prepare_temp_tag(ctx, chunk).await? else { return Ok(()) };
            temp_tag = Some(tag_id);
            if !check_tag_exists(ctx, chunk, tag_id).await? {
                return Ok(());
            }
            pace(ctx).await?;
            ctx.api.mass_send_all(SendAllAudience::Tag(tag_id), message, &chunk.clientmsgid).await
        }
        other => return Err(JobError::Permanent(format!("unknown call kind `{other}`"))),
    };
    let accepted = match outcome {
        Ok(accepted) => Some((accepted.msg_id, accepted.msg_data_id)),
        // Sent before, by this job in a process that died before recording it.
        Err(WeChatError::Api { code: ErrCode::DuplicateClientMsgId, msg_id: Some(msg_id), .. }) => {
            tracing::info!(
                campaign.id = chunk.campaign_id,
                chunk.seq = chunk.seq,
                mass.msg_id = msg_id,
                "call was made before; recording its job"
            );
            Some((msg_id, None))
        }
        Err(error) => {
            let result = record_failure(ctx, chunk, &error).await;
            if let (Some(tag), Err(JobError::Permanent(_))) = (temp_tag, &result) {
                // Nothing will be sent by this temporary tag: do not leave it taking one of WeChat's 100.
                let client = ctx.pool.get().await.map_err(db)?;
                store::jobs::enqueue(&client, "delete_wechat_tag", &serde_json::json!({ "wechat_tag_id": tag }))
                    .await
                    .map_err(db)?;
            }
            return result;
        }
    };
    let Some((msg_id, msg_data_id)) = accepted else { return Ok(()) };
    let mut client = ctx.pool.get().await.map_err(db)?;
    let txn = client.transaction().await.map_err(db)?;
    store::campaigns::mark_submitted(&txn, chunk.campaign_id, chunk.seq, msg_id, msg_data_id).await.map_err(db)?;
    if ctx.campaigns.account_type == crate::domain::account::AccountType::Service {
        let month = crate::domain::calendar::beijing_month(ctx.campaigns.clock.now());
        if chunk.openids.is_empty() {
            let recipients = list_recipients(&txn, chunk.campaign_id).await.map_err(db)?;
            store::campaigns::bump_receipts(&txn, &recipients, month).await.map_err(db)?;
        } else {
            store::campaigns::bump_receipts(&txn, &chunk.openids, month).await.map_err(db)?;
        }
    }
    // The result may have arrived before the msg_id was recorded.
    if store::campaigns::has_result(&txn, msg_id).await.map_err(db)? {
        if let (Some(tag), "temp_tag") = (chunk.wechat_tag_id, chunk.kind.as_str()) {
            store::jobs::enqueue(&txn, "delete_wechat_tag", &serde_json::json!({ "wechat_tag_id": tag }))
                .await
                .map_err(db)?;
        }
    }
    txn.commit().await.map_err(db)?;
    tracing::info!(
        campaign.id = chunk.campaign_id,
        chunk.seq = chunk.seq,
        mass.msg_id = msg_id,
        duration_ms = started.elapsed().as_millis() as u64,
        "sent call {} of campaign {}",
        chunk.seq,
        chunk.campaign_id
    );
    Ok(())
}

async fn list_recipients(
    client: &impl deadpool_postgres::GenericClient,
    campaign_id: i64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client.query("SELECT openid FROM campaign_recipients WHERE campaign_id = $1", &[&campaign_id]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

async fn record_failure(ctx: &JobCtx, chunk: &ChunkRow, error: &WeChatError) -> Result<(), JobError> {
    let transient = error.is_transient() || matches!(error, WeChatError::Transport(_) | WeChatError::Http(_));
    let message = match error.code() {
        Some(ErrCode::NoMassSendQuota) => {
            "WeChat says the account's mass-send quota is used up (subscription accounts: one send a day)".to_owned()
        }
        _ => error.to_string(),
    };
    let permanent = !transient || chunk.attempts + 1 >= super::MAX_ATTEMPTS;
    let client = ctx.pool.get().await.map_err(db)?;
    store::campaigns::mark_chunk_failed(&client, chunk.campaign_id, chunk.seq, &message, permanent)
        .await
        .map_err(db)?;
    if permanent { Err(JobError::Permanent(message)) } else { Err(JobError::Retry(message)) }
}

/// Guards the send right before it: the WeChat tag must still exist. A missing tag fails the
/// call for good (false) rather than letting WeChat or a client library fall back to anyone else.
async fn check_tag_exists(ctx: &JobCtx, chunk: &ChunkRow, tag_id: i64) -> Result<bool, JobError> {
    match ctx.api.list_tags().await {
        Ok(tags) if tags.iter().any(|t| t.id == tag_id) => Ok(true),
        Ok(_) => {
            let error = format!("WeChat tag {tag_id} no longer exists; nothing was sent");
            let client = ctx.pool.get().await.map_err(db)?;
            store::campaigns::mark_chunk_failed(&client, chunk.campaign_id, chunk.seq, &error, true)
                .await
                .map_err(db)?;
            tracing::warn!(campaign.id = chunk.campaign_id, wechat.tag_id = tag_id, "campaign tag missing on WeChat");
            Ok(false)
        }
        Err(error) => record_failure(ctx, chunk, &error).await.map(|()| false),
    }
}

/// Creates the temporary tag of a subscription-account call (or adopts the one an earlier
/// attempt made) and tags its followers, 50 per call, resuming where an earlier attempt stopped.
/// `None` when the call failed for good.
async fn prepare_temp_tag(ctx: &JobCtx, chunk: &ChunkRow) -> Result<Option<i64>, JobError> {
    let tag_id = match chunk.wechat_tag_id {
        Some(id) => id,
        None => {
            let name = temp_tag_name(chunk);
            let created = match ctx.api.create_tag(&name).await {
                Ok(tag) => Ok(tag.id),
                Err(error) if error.code() == Some(ErrCode::TagNameTaken) => match ctx.api.list_tags().await {
                    Ok(tags) => tags.into_iter().find(|t| t.name == name).map(|t| t.id).ok_or(error),
                    Err(list_error) => Err(list_error),
                },
                Err(error) => Err(error),
            };
            let id = match created {
                Ok(id) => id,
                Err(error) => return record_failure(ctx, chunk, &error).await.map(|()| None),
            };
            let client = ctx.pool.get().await.map_err(db)?;
            store::campaigns::set_chunk_tag(&client, chunk.campaign_id, chunk.seq, id).await.map_err(db)?;
            id
        }
    };
    let start = usize::try_from(chunk.tagged).unwrap_or(0).min(chunk.openids.len());
    let mut done = start;
    for batch in chunk.openids[start..].chunks(MAX_OPENIDS_PER_BATCH) {
        if let Err(error) = ctx.api.batch_tag(tag_id, batch).await {
            let client = ctx.pool.get().await.map_err(db)?;
            store::campaigns::set_chunk_tagged(&client, chunk.campaign_id, chunk.seq, done as i32).await.map_err(db)?;
            return record_failure(ctx, chunk, &error).await.map(|()| None);
        }
        done += batch.len();
    }
    let client = ctx.pool.get().await.map_err(db)?;
    store::campaigns::set_chunk_tagged(&client, chunk.campaign_id, chunk.seq, done as i32).await.map_err(db)?;
    Ok(Some(tag_id))
}

/// The job kind that fetches datacube's daily article reads.
pub const FETCH_READS_JOB: &str = "fetch_article_reads";
/// datacube follows an article for 30 days after publishing.
const READ_DAYS: i64 = 31;

pub const CHECK_RESULTS_JOB: &str = "check_mass_results";

/// Calls asked about per `check_mass_results` run; more wait for the next.
const CHECK_RESULTS_BATCH: i64 = 200;

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
    for id in store::campaigns::list_stalled_sends(client).await? {
        tracing::warn!(campaign.id = id, "a campaign's send job ended with calls left; queueing it again");
        store::jobs::enqueue(client, campaigns::SEND_JOB, &serde_json::json!({ "campaign_id": id })).await?;
    }
    for id in store::campaigns::list_sending(client).await? {
        campaigns::settle(client, id).await?;
    }
    enqueue_result_check(client, result_wait).await?;
    Ok(())
}

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
    let pending = client
        .query_opt("SELECT 1 FROM jobs WHERE kind = $1 AND state = 'pending' LIMIT 1", &[&CHECK_RESULTS_JOB])
        .await?;
    if pending.is_none() {
        store::jobs::enqueue(client, CHECK_RESULTS_JOB, &serde_json::json!({})).await?;
    }
    Ok(true)
}

/// `check_mass_results`: asks `mass/get` about each call whose MASSSENDJOBFINISH is overdue
/// (WeChat pushes it once, to whatever answered then: a push lost to an outage, a proxy or a
/// callback URL changed mid-send would otherwise leave the campaign `sending` for ever) and
/// records the final ones, so campaigns finish; their counts stay unknown.
pub async fn check_results(ctx: &JobCtx) -> Result<(), JobError> {
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

/// Queues a fetch of article reads unless one is pending.
///
/// # Errors
/// The database.
pub async fn enqueue_read_fetch(client: &impl deadpool_postgres::GenericClient) -> Result<(), tokio_postgres::Error> {
    let pending = client
        .query_opt("SELECT 1 FROM jobs WHERE kind = $1 AND state = 'pending' LIMIT 1", &[&FETCH_READS_JOB])
        .await?;
    if pending.is_none() {
        store::jobs::enqueue(client, FETCH_READS_JOB, &serde_json::json!({})).await?;
    }
    Ok(())
}

/// `fetch_article_reads`: for each Beijing day of the last 31 on which a campaign article was
/// published, once a day, asks datacube's `getarticletotaldetail` (one publishing day per call,
/// the span WeChat allows) and keeps each campaign article's cumulative readers (the first
/// article of a send: the one it is read by).
pub async fn fetch_article_reads(ctx: &JobCtx) -> Result<(), JobError> {
    let today = crate::domain::calendar::beijing_date(ctx.campaigns.clock.now());
    let Some(yesterday) = today.pred_opt() else { return Ok(()) };
    let since = today - chrono::Duration::days(READ_DAYS);
    let client = ctx.pool.get().await.map_err(db)?;
    for day in store::campaigns::list_publish_days_to_fetch(&client, since, yesterday, today).await.map_err(db)? {
        let rows = match ctx.api.article_totals(day, day).await {
            Ok(rows) => rows,
            Err(error) if error.is_transient() => return Err(JobError::Retry(error.to_string())),
            Err(error) => return Err(JobError::Permanent(error.to_string())),
        };
        for row in rows {
            // `<msg_data_id>_<index>`.
            let Some((data_id, "1")) = row.msgid.split_once('_') else { continue };
            let Ok(data_id) = data_id.parse::<i64>() else { continue };
            let Some(read_user) = row.detail_list.iter().map(|d| d.read_user).max() else { continue };
            if store::campaigns::is_campaign_article(&client, data_id).await.map_err(db)? {
                store::campaigns::upsert_article_reads(&client, data_id, read_user).await.map_err(db)?;
            }
        }
        store::campaigns::mark_publish_day_fetched(&client, day, today).await.map_err(db)?;
    }
    Ok(())
}
