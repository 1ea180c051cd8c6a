//! `send_campaign {campaign_id}`: makes a campaign's planned WeChat calls one by one, recording
//! each call's outcome as soon as WeChat answers.
//!
//! Exactly once: every call carries the clientmsgid stored with it. A process killed after
//! WeChat accepted a call but before recording it leaves the call `pending`; the job (taken over
//! by any process once the dead one's row lock is gone) repeats it, WeChat answers 45065 with
//! the first job's msg_id, and that is recorded as the call's outcome. No one is sent to twice.
//! A repeat within a minute of the first use (the client retrying a call whose answer was lost)
//! gets 45066 instead, without the msg_id: the job waits past the minute and asks again.
//!
//! One call per run: when calls remain, the run queues the campaign's next `send_campaign` job
//! and ends, so a send of a hundred calls never holds a worker from other accounts' jobs (the
//! claim takes accounts in turn) for more than one call and its pace.
//!
//! Misdirection guards: only a call planned as `all` (an audience of `{"all": true}` without
//! variants) sets `is_to_all`; a tag send first checks that the tag still exists on WeChat.

use super::{JobCtx, JobError, db};
use crate::app::campaigns::{self, CampaignError};
use crate::domain::campaign::Status;
use crate::domain::job::{DeleteWechatTag, Job, SendCampaign};
use crate::store;
use crate::store::campaigns::ChunkRow;
use crate::wechat::api::{
    ErrCode, MASS_SEND_MIN_OPENIDS, MAX_OPENIDS_PER_BATCH, MassMessage, SendAllAudience, WeChatError,
};

/// After a 45066, how long to wait before asking WeChat again with the same clientmsgid: its
/// window is one minute from the first use, which was before the 45066; a few seconds more
/// absorb the difference between WeChat's clock and ours.
const CLIENTMSGID_REPEAT_WAIT_SECS: i64 = 65;

/// Runs the job.
///
/// # Errors
/// A call WeChat may still take (retried, later calls wait), the database (retried), or a
/// campaign that does not exist (for good).
#[tracing::instrument(skip_all)]
pub async fn run(ctx: &JobCtx, job: &SendCampaign) -> Result<(), JobError> {
    let id = job.campaign_id;
    let client = ctx.pool.get().await.map_err(db)?;
    let Some(row) = store::campaigns::get_campaign(&client, ctx.account, id).await.map_err(db)? else {
        return Err(JobError::Permanent(format!("no campaign {id}")));
    };
    // A cancelled campaign may still have calls WeChat holds (45066): only their msg_ids are
    // learned, nothing new is sent.
    let learning_only =
        row.status == Status::Cancelled.as_str() && store::campaigns::has_taken_calls(&client, id).await.map_err(db)?;
    if row.status != Status::Sending.as_str() && !learning_only {
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
    match if learning_only { Ok(()) } else { campaigns::plan(&ctx.pool, &ctx.campaigns, &row).await } {
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
    let mut made = false;
    for seq in pending {
        if made {
            // The rest go in the next run, after other accounts' due jobs.
            let client = ctx.pool.get().await.map_err(db)?;
            store::jobs::enqueue(&client, ctx.account, &Job::SendCampaign(SendCampaign { campaign_id: id }))
                .await
                .map_err(db)?;
            return Ok(());
        }
        // Each call is read just before it is made: a cancel since the last call stops the rest,
        // and an erasure since the plan may have taken recipients out of its list.
        let client = ctx.pool.get().await.map_err(db)?;
        let current = store::campaigns::get_chunk(&client, id, seq).await.map_err(db)?;
        drop(client);
        let Some((chunk, status)) = current else { continue };
        if chunk.state != "pending" {
            continue;
        }
        // A call WeChat holds (45066) went out: it is asked about even after a cancel, and its
        // draft is not checked again (the message is WeChat's already).
        let held = chunk.taken_at.is_some();
        if status != Status::Sending.as_str() && !held {
            tracing::info!(campaign.id = id, "campaign cancelled mid-send; the remaining calls are skipped");
            continue;
        }
        let chunk = &chunk;
        let message = messages.get(chunk.variant as usize).unwrap_or(&messages[0]);
        if !held {
            match campaigns::check_draft(&ctx.api, message).await {
                Ok(()) => {}
                Err(gone @ campaigns::MissingDraft::Gone(_)) => return fail_campaign(ctx, id, &gone.to_string()).await,
                // The check could not be made (WeChat busy, its quota used up): the send itself
                // answers 40007 if the draft is gone, which fails the call with the same reason.
                Err(campaigns::MissingDraft::WeChat(e)) => {
                    tracing::warn!(campaign.id = id, error = %e, "could not check the campaign's draft; sending");
                }
            }
        }
        made = true;
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
                // The call stays pending and is made again, unchanged, once WeChat allows it.
                wait @ JobError::Wait { .. } => return Err(wait),
            }
        }
    }
    let client = ctx.pool.get().await.map_err(db)?;
    campaigns::settle(&client, ctx.account, id).await.map_err(db)?;
    let progress = store::campaigns::progress(&client, id).await.map_err(db)?;
    if progress.failed == progress.chunks && !learning_only {
        let last = store::campaigns::last_chunk_error(&client, id).await.map_err(db)?;
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
    let wait = store::campaigns::reserve_mass_slot(&client, ctx.account, ctx.campaigns.mass_interval.as_secs_f64())
        .await
        .map_err(db)?;
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
        "openids" if chunk.openids.len() < MASS_SEND_MIN_OPENIDS && chunk.taken_at.is_none() => {
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
        Err(error) if error.code() == Some(ErrCode::ClientMsgIdRetriedTooSoon) => {
            // WeChat took this clientmsgid less than a minute ago: an earlier attempt whose answer
            // was lost (a timeout, a dropped connection) did reach it. Not a failure: the call
            // stays pending and is asked again past the minute, when WeChat names the job
            // (45065), or sends it if that earlier attempt never arrived after all.
            tracing::info!(
                campaign.id = chunk.campaign_id,
                chunk.seq = chunk.seq,
                "WeChat saw this call's clientmsgid within the minute; asking again after it"
            );
            let client = ctx.pool.get().await.map_err(db)?;
            store::campaigns::mark_taken(&client, chunk.campaign_id, chunk.seq).await.map_err(db)?;
            return Err(JobError::Wait {
                reason: format!(
                    "WeChat answered 45066 for clientmsgid {} (a repeat within a minute); asked again after it",
                    chunk.clientmsgid
                ),
                until: chrono::Utc::now() + chrono::Duration::seconds(CLIENTMSGID_REPEAT_WAIT_SECS),
            });
        }
        Err(error) => {
            let result = record_failure(ctx, chunk, &error).await;
            if let (Some(tag), Err(JobError::Permanent(_))) = (temp_tag, &result) {
                // Nothing will be sent by this temporary tag: do not leave it taking one of WeChat's 100.
                let client = ctx.pool.get().await.map_err(db)?;
                store::jobs::enqueue(
                    &client,
                    ctx.account,
                    &Job::DeleteWechatTag(DeleteWechatTag { wechat_tag_id: tag }),
                )
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
    // A quota wait this send may have been in is over.
    store::api_quota::set_campaign_quota_note(&txn, chunk.campaign_id, None, crate::app::quota::QUOTA_WAIT_NOTE)
        .await
        .map_err(db)?;
    if ctx.campaigns.account_type == crate::domain::account::AccountType::Service {
        let month = crate::domain::calendar::beijing_month(ctx.campaigns.clock.now());
        if chunk.openids.is_empty() {
            let recipients = store::campaigns::list_recipients(&txn, chunk.campaign_id).await.map_err(db)?;
            store::campaigns::bump_receipts(&txn, ctx.account, &recipients, month).await.map_err(db)?;
        } else {
            store::campaigns::bump_receipts(&txn, ctx.account, &chunk.openids, month).await.map_err(db)?;
        }
    }
    // The result may have arrived before the msg_id was recorded.
    if store::campaigns::has_result(&txn, ctx.account, msg_id).await.map_err(db)? {
        if let (Some(tag), "temp_tag") = (chunk.wechat_tag_id, chunk.kind.as_str()) {
            store::jobs::enqueue(&txn, ctx.account, &Job::DeleteWechatTag(DeleteWechatTag { wechat_tag_id: tag }))
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

async fn record_failure(ctx: &JobCtx, chunk: &ChunkRow, error: &WeChatError) -> Result<(), JobError> {
    if let Some(until) = error.quota_resumes_at() {
        // Not a failure: the call stays pending, spends no attempt, and is made after Beijing
        // midnight, when WeChat's count starts over. The page says so meanwhile.
        let note = format!(
            "{}，将于 {}（北京时间）自动继续",
            crate::app::quota::QUOTA_WAIT_NOTE,
            crate::domain::calendar::beijing(until).format("%-m月%-d日 %H:%M")
        );
        tracing::info!(campaign.id = chunk.campaign_id, chunk.seq = chunk.seq, %until, "daily quota used up; the send waits");
        let client = ctx.pool.get().await.map_err(db)?;
        store::api_quota::set_campaign_quota_note(&client, chunk.campaign_id, Some(&note), "").await.map_err(db)?;
        return Err(JobError::Wait { reason: note, until });
    }
    let transient = error.is_transient() || matches!(error, WeChatError::Transport(_) | WeChatError::Http(_));
    let message = match error.code() {
        Some(ErrCode::NoMassSendQuota) => {
            "微信返回错误码 45028：公众号的群发次数已用完（订阅号每天 1 次），这次没有发出。请改天重新发送。".to_owned()
        }
        // A campaign composed before tagcast checked the length (its check is at composing).
        Some(ErrCode::Other(45002)) => {
            "文字内容超过微信允许的 2048 字节（微信错误码 45002），请缩短后重新创建群发".to_owned()
        }
        Some(ErrCode::InvalidMediaId) => {
            "图文素材（草稿）已不存在或不属于本公众号（微信错误码 40007），请重新选择草稿后再发送".to_owned()
        }
        _ => crate::wechat::errcode_zh::describe(error),
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
