//! Creating a campaign, asking to send it (approval, monthly cap, the account's quota, the
//! estimate of what WeChat will filter), cancelling and previewing it. Each state change is one
//! transaction with its audit row; only preview calls WeChat.

use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::{GenericClient, Pool};
use serde::Serialize;

use super::plan::{resolve, touched_tags};
use super::{
    CampaignError, CampaignRequest, CampaignSettings, Invalid, WECHAT_MONTHLY_RECEIPTS, approval, audience_of, json,
    mass_message, messages_of,
};
use crate::domain::account::{AccountId, AccountType};
use crate::domain::calendar::{beijing_day_start, beijing_month};
use crate::domain::campaign::{self, Audience, SendDecision, Status};
use crate::domain::job::{Job, SendCampaign};
use crate::store;
use crate::store::campaigns::CampaignRow;
use crate::wechat::api::MASS_SEND_MIN_OPENIDS;

/// Creates a draft campaign, with its audit row.
///
/// # Errors
/// An invalid request, an unknown tag or segment, or the database.
pub async fn create_campaign(
    pool: &Pool,
    settings: &CampaignSettings,
    request: &CampaignRequest,
    actor: &str,
) -> Result<CampaignRow, CampaignError> {
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Invalid::Name.into());
    }
    if let Some(problem) = request.audience.problem() {
        return Err(Invalid::Request(problem).into());
    }
    for message in std::iter::once(&request.message).chain(request.variants.iter().map(|v| &v.message)) {
        if let Some(problem) = message.problem() {
            return Err(Invalid::Request(problem).into());
        }
    }
    if request.variants.len() > campaign::MAX_VARIANTS {
        return Err(Invalid::TooManyVariants { max: campaign::MAX_VARIANTS }.into());
    }
    if request.variants.iter().any(|v| v.name.trim().is_empty()) {
        return Err(Invalid::UnnamedVariant.into());
    }
    if !request.variants.is_empty() && settings.account_type == AccountType::Subscription {
        return Err(Invalid::VariantsOnSubscription.into());
    }
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    match &request.audience {
        Audience::Tag(path) => {
            if store::campaigns::find_tags(&txn, settings.account, &[path.as_str()]).await?.is_empty() {
                return Err(CampaignError::UnknownTag(path.clone()));
            }
        }
        Audience::Segment(id) => {
            if store::segments::get_segment(&txn, settings.account, *id).await?.is_none() {
                return Err(CampaignError::UnknownSegment(*id));
            }
        }
        Audience::All(_) => {}
    }
    let new = store::campaigns::NewCampaign {
        name,
        audience: &json(&request.audience),
        message: &json(&request.message),
        send_at: request.send_at,
        created_by: actor,
    };
    let row = store::campaigns::insert_campaign(&txn, settings.account, &new).await?;
    for (i, variant) in request.variants.iter().enumerate() {
        store::campaigns::insert_variant(&txn, row.id, i as i32 + 1, variant.name.trim(), &json(&variant.message))
            .await?;
    }
    let detail = serde_json::json!({ "name": name, "audience": new.audience, "variants": request.variants.len() });
    store::audit::record(&txn, Some(row.account), actor, "create", "campaign", &row.id.to_string(), &detail).await?;
    txn.commit().await?;
    tracing::info!(campaign.id = row.id, audience = request.audience.kind(), "campaign created");
    Ok(row)
}

/// What a send request did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SendAccepted {
    pub id: i64,
    pub status: &'static str,
    /// Subscribed followers the audience reaches now.
    pub recipients: usize,
    /// Of those, how many already received WeChat's monthly 4 (service accounts): WeChat will
    /// filter them out of this send.
    pub will_be_filtered: i64,
    pub send_at: Option<DateTime<Utc>>,
}

/// Asks to send a campaign: refuses what approval, the cap or the quota forbid; otherwise queues
/// it now or schedules it, with its audit row. A refused request for approval leaves the
/// campaign `pending_approval`.
///
/// # Errors
/// See [`CampaignError`].
pub async fn request_send(
    pool: &Pool,
    settings: &CampaignSettings,
    id: i64,
    actor: &str,
) -> Result<SendAccepted, CampaignError> {
    let now = settings.clock.now();
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let row = store::campaigns::lock_campaign(&txn, settings.account, id).await?.ok_or(CampaignError::NotFound)?;
    let status = Status::parse(&row.status).unwrap_or(Status::Failed);
    if !status.may_send() {
        return Err(CampaignError::WrongStatus { status: row.status, action: "sent" });
    }
    let audience = audience_of(&row)?;
    // The monthly cap counts the tags the audience names; approval looks at every tag it reaches.
    let tags = touched_tags(&txn, row.account, &audience).await?;
    let standing = approval::standing(&txn, &row).await?;
    let sensitive = standing.covered.sensitive();
    if let (Some(changes), false) = (&standing.lapsed, sensitive.is_empty()) {
        approval::lapse(&txn, row.account, id, changes, actor).await?;
        txn.commit().await?;
        return Err(CampaignError::ApprovalLapsed { tags: sensitive.join(", "), changes: changes.clone() });
    }
    if let Some(approver) = standing.approved_by.as_deref().filter(|a| *a != actor && row.created_by != actor) {
        let detail = serde_json::json!({ "refused": "not_creator_or_approver", "approved_by": approver });
        store::audit::record(&txn, Some(row.account), actor, "send", "campaign", &id.to_string(), &detail).await?;
        txn.commit().await?;
        return Err(CampaignError::NotCreatorOrApprover { creator: row.created_by, approver: approver.to_owned() });
    }
    let decision = campaign::decide_send(
        !sensitive.is_empty(),
        standing.approved_by.is_some(),
        row.send_at.map(|t| t.timestamp()),
        now.timestamp(),
    );
    if decision == SendDecision::NeedsApproval {
        store::campaigns::update_status(&txn, id, Status::PendingApproval.as_str(), None).await?;
        let detail = serde_json::json!({ "refused": "needs_approval", "sensitive_tags": sensitive });
        store::audit::record(&txn, Some(row.account), actor, "send", "campaign", &id.to_string(), &detail).await?;
        txn.commit().await?;
        return Err(CampaignError::NeedsApproval(sensitive.join(", ")));
    }
    let tag_ids: Vec<i64> = tags.iter().map(|t| t.0).collect();
    store::campaigns::lock_tags_for_cap(&txn, &tag_ids).await?;
    let sends =
        store::campaigns::list_tag_sends(&txn, &tag_ids, now - Duration::seconds(campaign::CAP_WINDOW_SECS)).await?;
    for (tag_id, path, ..) in &tags {
        let times = sends.iter().filter(|(t, _)| t == tag_id).map(|(_, at)| at.timestamp()).collect();
        if let Some(frees) = campaign::cap_frees_at(times, settings.monthly_tag_cap, now.timestamp()) {
            return Err(CampaignError::FrequencyCap {
                tag: path.clone(),
                cap: settings.monthly_tag_cap,
                frees_at: DateTime::from_timestamp(frees, 0).unwrap_or(now),
            });
        }
    }
    let send_day = row.send_at.filter(|_| decision == SendDecision::Schedule).unwrap_or(now);
    if settings.account_type == AccountType::Subscription
        && store::campaigns::sent_on_day(&txn, row.account, beijing_day_start(send_day)).await?
    {
        return Err(CampaignError::QuotaExhausted { next: beijing_day_start(send_day) + Duration::days(1) });
    }
    let openids = resolve(&txn, settings.audience_index.as_ref(), row.account, &audience, now.timestamp()).await?;
    if openids.is_empty() {
        return Err(CampaignError::EmptyAudience);
    }
    let by_list = !matches!(audience, Audience::All(_)) || !store::campaigns::list_variants(&txn, id).await?.is_empty();
    if settings.account_type == AccountType::Service && by_list && openids.len() < MASS_SEND_MIN_OPENIDS {
        // Only a mirrored tag without variants goes by tag; the rest need WeChat's minimum list.
        let by_tag = matches!(audience, Audience::Tag(_)) && tags.first().is_some_and(|t| t.3.is_some());
        if !by_tag {
            return Err(CampaignError::AudienceTooSmall(format!(
                "受众人数太少：微信按 openid 列表群发至少需要 {MASS_SEND_MIN_OPENIDS} 位粉丝，这个受众只有 {} 位",
                openids.len()
            )));
        }
    }
    let will_be_filtered = match settings.account_type {
        AccountType::Service => {
            store::campaigns::count_at_monthly_limit(
                &txn,
                row.account,
                &openids,
                beijing_month(now),
                WECHAT_MONTHLY_RECEIPTS,
            )
            .await?
        }
        AccountType::Subscription => 0,
    };
    let next = match decision {
        SendDecision::Schedule => Status::Scheduled,
        _ => Status::Sending,
    };
    // Counted when asked for, so a scheduled send holds its place under the cap.
    store::campaigns::insert_tag_sends(&txn, id, &tag_ids, now).await?;
    store::campaigns::record_send_request(&txn, id, next.as_str(), actor, now).await?;
    if next == Status::Sending {
        store::jobs::enqueue(&txn, row.account, &Job::SendCampaign(SendCampaign { campaign_id: id })).await?;
    }
    let detail = serde_json::json!({
        "status": next.as_str(),
        "recipients": openids.len(),
        "will_be_filtered": will_be_filtered,
        "send_at": row.send_at,
    });
    store::audit::record(&txn, Some(row.account), actor, "send", "campaign", &id.to_string(), &detail).await?;
    txn.commit().await?;
    tracing::info!(
        campaign.id = id,
        recipients = openids.len(),
        will_be_filtered,
        status = next.as_str(),
        "campaign send accepted"
    );
    Ok(SendAccepted { id, status: next.as_str(), recipients: openids.len(), will_be_filtered, send_at: row.send_at })
}

/// Cancels a campaign: calls not made yet are skipped (a send under way stops before its next
/// call); if nothing reached WeChat, its tags' cap slots are given back.
///
/// # Errors
/// A campaign already finished, or the database.
pub async fn cancel(pool: &Pool, account: AccountId, id: i64, actor: &str) -> Result<CampaignRow, CampaignError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let row = store::campaigns::lock_campaign(&txn, account, id).await?.ok_or(CampaignError::NotFound)?;
    let status = Status::parse(&row.status).unwrap_or(Status::Failed);
    if !status.may_cancel() {
        return Err(CampaignError::WrongStatus { status: row.status, action: "cancelled" });
    }
    // Calls WeChat holds (45066, msg_id still to be learned) went out: not skipped, and their
    // tags' cap slots stay spent.
    let skipped = store::campaigns::skip_pending_chunks(&txn, id).await?;
    if store::campaigns::list_msg_ids(&txn, id).await?.is_empty()
        && !store::campaigns::has_taken_calls(&txn, id).await?
    {
        store::campaigns::delete_tag_sends(&txn, id).await?;
    }
    store::campaigns::update_status(&txn, id, Status::Cancelled.as_str(), None).await?;
    // A send that waited for the quota waits no more.
    store::api_quota::set_campaign_quota_note(&txn, id, None, crate::app::quota::QUOTA_WAIT_NOTE).await?;
    let detail = serde_json::json!({ "was": row.status, "calls_skipped": skipped });
    store::audit::record(&txn, Some(row.account), actor, "cancel", "campaign", &id.to_string(), &detail).await?;
    let row = store::campaigns::get_campaign(&txn, account, id).await?.ok_or(CampaignError::NotFound)?;
    txn.commit().await?;
    Ok(row)
}

/// Preview calls one request may make.
pub const MAX_PREVIEW_CALLS: usize = 10;

/// Sends every message of the campaign (control and variants) to each test openid by
/// `mass/preview`; returns, per openid, `None` or WeChat's refusal.
///
/// # Errors
/// An unknown campaign, more than 10 openids, or the database.
pub async fn preview(
    pool: &Pool,
    api: Option<&crate::wechat::api::ApiClient>,
    account: AccountId,
    id: i64,
    openids: &[String],
    actor: &str,
) -> Result<Vec<(String, Option<String>)>, CampaignError> {
    let api = api.ok_or(CampaignError::NoAccount)?;
    if openids.is_empty() || openids.len() > 10 {
        return Err(Invalid::PreviewOpenids.into());
    }
    let client = pool.get().await?;
    let row = store::campaigns::get_campaign(&client, account, id).await?.ok_or(CampaignError::NotFound)?;
    let messages = messages_of(&client, &row).await?;
    refuse_unapproved_sensitive_preview(&client, &row, openids).await?;
    drop(client);
    // Previews run while the caller waits, each paced by the client (1/s by default), and
    // WeChat allows 100 a day.
    if openids.len() * messages.len() > MAX_PREVIEW_CALLS {
        return Err(Invalid::PreviewTooManyCalls { max: MAX_PREVIEW_CALLS, messages: messages.len() }.into());
    }
    let mut results = Vec::with_capacity(openids.len());
    for openid in openids {
        let mut outcome = None;
        for message in &messages {
            if let Err(error) = api.mass_preview(openid, &mass_message(message)).await {
                outcome = Some(crate::wechat::errcode_zh::describe(&error));
                break;
            }
        }
        results.push((openid.clone(), outcome));
    }
    let client = pool.get().await?;
    let detail = serde_json::json!({ "openids": openids });
    store::audit::record(&client, Some(row.account), actor, "preview", "campaign", &id.to_string(), &detail).await?;
    Ok(results)
}

/// A preview is a real message: before approval, it may not go to a follower who carries a
/// sensitive tag the campaign reaches, or ten previews at a time would reach them unapproved.
async fn refuse_unapproved_sensitive_preview(
    client: &impl GenericClient,
    row: &CampaignRow,
    openids: &[String],
) -> Result<(), CampaignError> {
    let standing = approval::standing(client, row).await?;
    if !standing.needs_approval() {
        return Ok(());
    }
    let sensitive: Vec<&str> = standing.covered.sensitive();
    let asked: Vec<&str> = openids.iter().map(String::as_str).collect();
    let carried = store::tags::list_follower_tag_paths(client, row.account, &asked).await?;
    let mut refused: Vec<&str> = Vec::new();
    let mut tags: Vec<&str> = Vec::new();
    for openid in &asked {
        let Some(paths) = carried.get(*openid) else { continue };
        let hits: Vec<&str> = sensitive.iter().copied().filter(|s| paths.iter().any(|p| p == s)).collect();
        if !hits.is_empty() {
            refused.push(openid);
            tags.extend(hits);
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    tags.sort_unstable();
    tags.dedup();
    Err(CampaignError::PreviewReachesSensitive { openids: refused.join(", "), tags: tags.join(", ") })
}
