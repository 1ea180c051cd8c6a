//! Campaign operations shared by the JSON API and the send job: creating, asking to send
//! (approval, monthly cap, the account's quota, the estimate of what WeChat will filter),
//! approving, cancelling, previewing, planning the WeChat calls of a send, and taking in
//! MASSSENDJOBFINISH. Each state change is one transaction with its audit row. Only preview
//! calls WeChat here; sends go through the `send_campaign` job.

pub mod approval;

use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::{GenericClient, Pool};
use serde::Serialize;

use crate::app::audience::index::AudienceIndex;
use crate::app::inbox::{Handler, HandlerError, HandlerFuture};
use crate::domain::account::AccountType;
use crate::domain::approval::Change;
use crate::domain::calendar::{beijing_day_start, beijing_month};
use crate::domain::campaign::{self, Audience, Message, SendDecision, Status, Variant};
use crate::domain::clock::Clock;
use crate::domain::expr::{self, Expr};
use crate::domain::tag::TagPath;
use crate::store;
use crate::store::campaigns::{CampaignRow, NewChunk};
use crate::wechat::api::{MASS_SEND_MAX_OPENIDS, MASS_SEND_MIN_OPENIDS, MassMessage};
use crate::wechat::message::{Inbound, Message as Push};
use crate::wechat::reply::Reply;

/// The job kind that delivers a campaign.
pub const SEND_JOB: &str = "send_campaign";

/// Mass messages a service account's follower receives per month before WeChat filters them.
pub const WECHAT_MONTHLY_RECEIPTS: i32 = 4;

/// What campaigns need to know about the account and the operator's limits.
#[derive(Debug, Clone)]
pub struct CampaignSettings {
    pub account_type: AccountType,
    /// `TAGCAST_MONTHLY_TAG_CAP`: sends reaching one tag per 30 days.
    pub monthly_tag_cap: u32,
    /// `TAGCAST_CONVERSION_WINDOW_HOURS`: orders this long after delivery are conversions.
    pub conversion_window: std::time::Duration,
    /// Between two mass sends of the account, across every process (the mass-send pace of
    /// `TAGCAST_WECHAT_RATE_LIMITS`; WeChat allows 60 a minute).
    pub mass_interval: std::time::Duration,
    /// Send times, the cap's window and scheduled sends follow this clock.
    pub clock: Clock,
    /// `TAGCAST_MASS_RESULT_WAIT_SECS`: an accepted call whose MASSSENDJOBFINISH has not come
    /// this long after is asked about with `mass/get`, so a lost push cannot leave its campaign
    /// `sending` for ever.
    pub result_wait: std::time::Duration,
    /// Resolves tag and segment audiences from memory (a million openids in well under a
    /// second); `None`, or an index not built yet, means SQL.
    pub audience_index: Option<AudienceIndex>,
}

impl Default for CampaignSettings {
    fn default() -> Self {
        Self {
            account_type: AccountType::Service,
            monthly_tag_cap: 4,
            conversion_window: std::time::Duration::from_secs(72 * 3600),
            mass_interval: std::time::Duration::from_secs(1),
            result_wait: std::time::Duration::from_secs(1800),
            clock: Clock::system(),
            audience_index: None,
        }
    }
}

/// Why a campaign operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such campaign")]
    NotFound,
    #[error("no tag `{0}`")]
    UnknownTag(String),
    #[error("no segment {0}")]
    UnknownSegment(i64),
    #[error("a campaign that is {status} cannot be {action}")]
    WrongStatus { status: String, action: &'static str },
    #[error("the audience touches the sensitive tag(s) {0}; an admin or approver other than the creator must approve")]
    NeedsApproval(String),
    #[error(
        "{openids} carry the sensitive tag(s) {tags} this campaign reaches; until it is approved, preview it to \
         followers who do not"
    )]
    PreviewReachesSensitive { openids: String, tags: String },
    #[error("the tag `{tag}` already had {cap} sends in the last 30 days; it frees up on {frees_at}")]
    FrequencyCap { tag: String, cap: u32, frees_at: DateTime<Utc> },
    #[error(
        "the approval lapsed ({}); the audience touches the sensitive tag(s) {tags}, so the campaign is back in the approval queue",
        approval::describe(changes)
    )]
    ApprovalLapsed { tags: String, changes: Vec<Change> },
    #[error("once approved, only its creator ({creator}) or its approver ({approver}) may send it")]
    NotCreatorOrApprover { creator: String, approver: String },
    #[error("the creator of a campaign cannot approve it")]
    SelfApproval,
    #[error(
        "`{actor}` is a machine actor (the API's bearer token or tagcast itself): approving or rejecting a campaign \
         takes a person, signed in as themselves (HTTP Basic or the admin pages)"
    )]
    MachineReviewer { actor: String },
    #[error("the campaign, or a tag or segment it reaches, changed since it was shown; look again before approving")]
    ChangedSinceShown,
    #[error("the audience has no subscribed followers")]
    EmptyAudience,
    #[error("{0}")]
    AudienceTooSmall(String),
    #[error(
        "a subscription account may mass-send once a day and today's send is used; the next is possible from {next}"
    )]
    QuotaExhausted { next: DateTime<Utc> },
    #[error("WeChat refused the preview")]
    WeChat(#[from] crate::wechat::api::WeChatError),
    #[error("no WeChat account is configured")]
    NoAccount,
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
}

/// What an operator asks for when creating a campaign.
#[derive(Debug, Clone)]
pub struct CampaignRequest {
    pub name: String,
    pub audience: Audience,
    pub message: Message,
    pub variants: Vec<Variant>,
    pub send_at: Option<DateTime<Utc>>,
}

/// Converts a campaign message to what the mass APIs take.
pub fn mass_message(message: &Message) -> MassMessage {
    match message {
        Message::Text { content } => MassMessage::Text { content: content.clone() },
        Message::Mpnews { media_id } => MassMessage::Mpnews { media_id: media_id.clone() },
        Message::Image { media_id } => MassMessage::Image { media_ids: vec![media_id.clone()] },
        Message::Voice { media_id } => MassMessage::Voice { media_id: media_id.clone() },
        Message::Mpvideo { media_id } => MassMessage::Mpvideo { media_id: media_id.clone() },
    }
}

fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("campaign types serialise to JSON")
}

/// The audience of a stored campaign.
///
/// # Errors
/// A row not written by [`create_campaign`].
pub fn audience_of(row: &CampaignRow) -> Result<Audience, CampaignError> {
    serde_json::from_value(row.audience.clone()).map_err(|e| CampaignError::Invalid(format!("stored audience: {e}")))
}

/// The messages of a stored campaign, control first.
///
/// # Errors
/// The database, or rows not written by [`create_campaign`].
pub async fn messages_of(client: &impl GenericClient, row: &CampaignRow) -> Result<Vec<Message>, CampaignError> {
    let parse = |v: serde_json::Value| {
        serde_json::from_value::<Message>(v).map_err(|e| CampaignError::Invalid(format!("stored message: {e}")))
    };
    let mut messages = vec![parse(row.message.clone())?];
    for (_, _, message) in store::campaigns::list_variants(client, row.id).await? {
        messages.push(parse(message)?);
    }
    Ok(messages)
}

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
        return Err(CampaignError::Invalid("`name` must be 1 to 100 characters".into()));
    }
    if let Some(problem) = request.audience.problem() {
        return Err(CampaignError::Invalid(problem.into()));
    }
    for message in std::iter::once(&request.message).chain(request.variants.iter().map(|v| &v.message)) {
        if let Some(problem) = message.problem() {
            return Err(CampaignError::Invalid(problem.into()));
        }
    }
    if request.variants.len() > campaign::MAX_VARIANTS {
        return Err(CampaignError::Invalid(format!("at most {} variants", campaign::MAX_VARIANTS)));
    }
    if request.variants.iter().any(|v| v.name.trim().is_empty()) {
        return Err(CampaignError::Invalid("every variant needs a `name`".into()));
    }
    if !request.variants.is_empty() && settings.account_type == AccountType::Subscription {
        return Err(CampaignError::Invalid(
            "a subscription account may mass-send once a day, and each A/B variant is a send of its own".into(),
        ));
    }
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    match &request.audience {
        Audience::Tag(path) => {
            if store::campaigns::find_tags(&txn, &[path.as_str()]).await?.is_empty() {
                return Err(CampaignError::UnknownTag(path.clone()));
            }
        }
        Audience::Segment(id) => {
            if store::segments::get_segment(&txn, *id).await?.is_none() {
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
    let row = store::campaigns::insert_campaign(&txn, &new).await?;
    for (i, variant) in request.variants.iter().enumerate() {
        store::campaigns::insert_variant(&txn, row.id, i as i32 + 1, variant.name.trim(), &json(&variant.message))
            .await?;
    }
    let detail = serde_json::json!({ "name": name, "audience": new.audience, "variants": request.variants.len() });
    store::audit::record(&txn, actor, "create", "campaign", &row.id.to_string(), &detail).await?;
    txn.commit().await?;
    tracing::info!(campaign.id = row.id, audience = request.audience.kind(), "campaign created");
    Ok(row)
}

/// A tag the audience touches: (id, path, sensitive, WeChat tag id).
type TouchedTag = (i64, String, bool, Option<i64>);

/// Every tag the audience names: the tag itself, or the tags a segment's expression names.
async fn touched_tags(client: &impl GenericClient, audience: &Audience) -> Result<Vec<TouchedTag>, CampaignError> {
    let paths: Vec<String> = match audience {
        Audience::Tag(path) => vec![path.clone()],
        Audience::Segment(id) => {
            let segment = store::segments::get_segment(client, *id).await?.ok_or(CampaignError::UnknownSegment(*id))?;
            let parsed = expr::parse(&segment.expr)
                .map_err(|e| CampaignError::Invalid(format!("the segment's expression no longer parses: {e}")))?;
            parsed.tag_paths().iter().map(|p| p.as_str().to_owned()).collect()
        }
        Audience::All(_) => Vec::new(),
    };
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    Ok(store::campaigns::find_tags(client, &refs).await?)
}

/// The subscribed followers the audience reaches now, in openid order.
async fn resolve(
    txn: &deadpool_postgres::Transaction<'_>,
    index: Option<&AudienceIndex>,
    audience: &Audience,
    now: i64,
) -> Result<Vec<String>, CampaignError> {
    let expr = match audience {
        Audience::Tag(path) => {
            let tags = store::campaigns::find_tags(txn, &[path.as_str()]).await?;
            let (id, ..) = tags.first().ok_or_else(|| CampaignError::UnknownTag(path.clone()))?;
            if index.is_none() {
                return Ok(store::campaigns::list_tag_members(txn, *id).await?);
            }
            let path = TagPath::parse(path).map_err(|e| CampaignError::Invalid(format!("tag {path}: {e}")))?;
            Expr::Tag(path)
        }
        Audience::Segment(id) => {
            let segment = store::segments::get_segment(txn, *id).await?.ok_or(CampaignError::UnknownSegment(*id))?;
            expr::parse(&segment.expr)
                .map_err(|e| CampaignError::Invalid(format!("the segment's expression no longer parses: {e}")))?
        }
        Audience::All(_) => return Ok(store::campaigns::list_subscribed(txn).await?),
    };
    if let Some(index) = index
        && let Some(members) = index.members(&expr, now).await
    {
        return Ok(members);
    }
    Ok(store::segments::list_all_members(txn, &expr, now).await?)
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
    let row = store::campaigns::lock_campaign(&txn, id).await?.ok_or(CampaignError::NotFound)?;
    let status = Status::parse(&row.status).unwrap_or(Status::Failed);
    if !status.may_send() {
        return Err(CampaignError::WrongStatus { status: row.status, action: "sent" });
    }
    let audience = audience_of(&row)?;
    // The monthly cap counts the tags the audience names; approval looks at every tag it reaches.
    let tags = touched_tags(&txn, &audience).await?;
    let standing = approval::standing(&txn, &row).await?;
    let sensitive = standing.covered.sensitive();
    if let (Some(changes), false) = (&standing.lapsed, sensitive.is_empty()) {
        approval::lapse(&txn, id, changes, actor).await?;
        txn.commit().await?;
        return Err(CampaignError::ApprovalLapsed { tags: sensitive.join(", "), changes: changes.clone() });
    }
    if let Some(approver) = standing.approved_by.as_deref().filter(|a| *a != actor && row.created_by != actor) {
        let detail = serde_json::json!({ "refused": "not_creator_or_approver", "approved_by": approver });
        store::audit::record(&txn, actor, "send", "campaign", &id.to_string(), &detail).await?;
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
        store::audit::record(&txn, actor, "send", "campaign", &id.to_string(), &detail).await?;
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
        && store::campaigns::sent_on_day(&txn, beijing_day_start(send_day)).await?
    {
        return Err(CampaignError::QuotaExhausted { next: beijing_day_start(send_day) + Duration::days(1) });
    }
    let openids = resolve(&txn, settings.audience_index.as_ref(), &audience, now.timestamp()).await?;
    if openids.is_empty() {
        return Err(CampaignError::EmptyAudience);
    }
    let by_list = !matches!(audience, Audience::All(_)) || !store::campaigns::list_variants(&txn, id).await?.is_empty();
    if settings.account_type == AccountType::Service && by_list && openids.len() < MASS_SEND_MIN_OPENIDS {
        // Only a mirrored tag without variants goes by tag; the rest need WeChat's minimum list.
        let by_tag = matches!(audience, Audience::Tag(_)) && tags.first().is_some_and(|t| t.3.is_some());
        if !by_tag {
            return Err(CampaignError::AudienceTooSmall(format!(
                "WeChat sends openid lists of at least {MASS_SEND_MIN_OPENIDS}; this audience has {}",
                openids.len()
            )));
        }
    }
    let will_be_filtered = match settings.account_type {
        AccountType::Service => {
            store::campaigns::count_at_monthly_limit(&txn, &openids, beijing_month(now), WECHAT_MONTHLY_RECEIPTS)
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
        store::jobs::enqueue(&txn, SEND_JOB, &serde_json::json!({ "campaign_id": id })).await?;
    }
    let detail = serde_json::json!({
        "status": next.as_str(),
        "recipients": openids.len(),
        "will_be_filtered": will_be_filtered,
        "send_at": row.send_at,
    });
    store::audit::record(&txn, actor, "send", "campaign", &id.to_string(), &detail).await?;
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
pub async fn cancel(pool: &Pool, id: i64, actor: &str) -> Result<CampaignRow, CampaignError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let row = store::campaigns::lock_campaign(&txn, id).await?.ok_or(CampaignError::NotFound)?;
    let status = Status::parse(&row.status).unwrap_or(Status::Failed);
    if !status.may_cancel() {
        return Err(CampaignError::WrongStatus { status: row.status, action: "cancelled" });
    }
    let skipped = store::campaigns::skip_pending_chunks(&txn, id).await?;
    if store::campaigns::list_msg_ids(&txn, id).await?.is_empty() {
        store::campaigns::delete_tag_sends(&txn, id).await?;
    }
    store::campaigns::update_status(&txn, id, Status::Cancelled.as_str(), None).await?;
    let detail = serde_json::json!({ "was": row.status, "calls_skipped": skipped });
    store::audit::record(&txn, actor, "cancel", "campaign", &id.to_string(), &detail).await?;
    let row = store::campaigns::get_campaign(&txn, id).await?.ok_or(CampaignError::NotFound)?;
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
    id: i64,
    openids: &[String],
    actor: &str,
) -> Result<Vec<(String, Option<String>)>, CampaignError> {
    let api = api.ok_or(CampaignError::NoAccount)?;
    if openids.is_empty() || openids.len() > 10 {
        return Err(CampaignError::Invalid("`openids` must list 1 to 10 test followers".into()));
    }
    let client = pool.get().await?;
    let row = store::campaigns::get_campaign(&client, id).await?.ok_or(CampaignError::NotFound)?;
    let messages = messages_of(&client, &row).await?;
    refuse_unapproved_sensitive_preview(&client, &row, openids).await?;
    drop(client);
    // Previews run while the caller waits, each paced by the client (1/s by default), and
    // WeChat allows 100 a day.
    if openids.len() * messages.len() > MAX_PREVIEW_CALLS {
        return Err(CampaignError::Invalid(format!(
            "a preview makes one call per test follower and message; at most {MAX_PREVIEW_CALLS} at once \
             ({} messages here)",
            messages.len()
        )));
    }
    let mut results = Vec::with_capacity(openids.len());
    for openid in openids {
        let mut outcome = None;
        for message in &messages {
            if let Err(error) = api.mass_preview(openid, &mass_message(message)).await {
                outcome = Some(error.to_string());
                break;
            }
        }
        results.push((openid.clone(), outcome));
    }
    let client = pool.get().await?;
    let detail = serde_json::json!({ "openids": openids });
    store::audit::record(&client, actor, "preview", "campaign", &id.to_string(), &detail).await?;
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
    let carried = store::tags::list_follower_tag_paths(client, &asked).await?;
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

/// Plans a campaign's WeChat calls and its recipients, once: a mirrored tag without variants
/// goes by tag, everyone without variants by `is_to_all`; anything else by openid lists (service
/// account, ≤ 10,000 per call, split by variant) or a temporary tag (subscription account).
///
/// # Errors
/// An audience that resolves to nobody, or the database.
pub async fn plan(pool: &Pool, settings: &CampaignSettings, row: &CampaignRow) -> Result<(), CampaignError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    // Two workers never plan the same campaign: the job row is held by one, and this lock
    // covers a hand-run job.
    store::campaigns::lock_campaign(&txn, row.id).await?;
    if store::campaigns::has_plan(&txn, row.id).await? {
        return Ok(());
    }
    // Approval is checked again when the send starts: a scheduled send waits for hours, and a
    // segment or dynamic tag can change in between.
    let standing = approval::standing(&txn, row).await?;
    if standing.needs_approval() {
        let changes = standing.lapsed.unwrap_or_default();
        approval::lapse(&txn, row.id, &changes, crate::domain::admin::SEND_JOB_ACTOR).await?;
        txn.commit().await?;
        let tags = standing.covered.sensitive().join(", ");
        return Err(CampaignError::ApprovalLapsed { tags, changes });
    }
    let audience = audience_of(row)?;
    let variants = 1 + store::campaigns::list_variants(&txn, row.id).await?.len();
    let openids = resolve(&txn, settings.audience_index.as_ref(), &audience, settings.clock.unix()).await?;
    if openids.is_empty() {
        return Err(CampaignError::EmptyAudience);
    }
    let mut chunks = Vec::new();
    let whole = match (&audience, variants) {
        (Audience::All(true), 1) => {
            Some(NewChunk { variant: 0, kind: "all", wechat_tag_id: None, openids: Vec::new() })
        }
        (Audience::Tag(path), 1) => {
            let tags = store::campaigns::find_tags(&txn, &[path.as_str()]).await?;
            tags.first().and_then(|t| t.3).map(|wechat_tag_id| NewChunk {
                variant: 0,
                kind: "tag",
                wechat_tag_id: Some(wechat_tag_id),
                openids: Vec::new(),
            })
        }
        _ => None,
    };
    if let Some(chunk) = whole {
        store::campaigns::insert_recipients(&txn, row.id, openids.iter().map(|o| (o.as_str(), 0)).collect()).await?;
        chunks.push(chunk);
    } else {
        let mut by_variant: Vec<Vec<String>> = vec![Vec::new(); variants];
        for openid in openids {
            let v = campaign::variant_of(row.id, &openid, variants);
            by_variant[v].push(openid);
        }
        for (variant, list) in by_variant.into_iter().enumerate() {
            match settings.account_type {
                AccountType::Service => {
                    let mut rest = list.as_slice();
                    for size in campaign::chunk_sizes(rest.len(), MASS_SEND_MIN_OPENIDS, MASS_SEND_MAX_OPENIDS) {
                        let (head, tail) = rest.split_at(size);
                        chunks.push(NewChunk {
                            variant: variant as i32,
                            kind: "openids",
                            wechat_tag_id: None,
                            openids: head.to_vec(),
                        });
                        rest = tail;
                    }
                }
                AccountType::Subscription if !list.is_empty() => {
                    chunks.push(NewChunk {
                        variant: variant as i32,
                        kind: "temp_tag",
                        wechat_tag_id: None,
                        openids: list,
                    });
                }
                AccountType::Subscription => {}
            }
        }
    }
    if chunks.is_empty() {
        return Err(CampaignError::AudienceTooSmall("no variant has enough followers for a WeChat call".into()));
    }
    store::campaigns::insert_plan(&txn, row.id, &chunks).await?;
    txn.commit().await?;
    tracing::info!(campaign.id = row.id, calls = chunks.len(), "campaign planned");
    Ok(())
}

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
        messages: &'a [&'a Push],
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
                    record_finish(txn, &finish).await.map_err(|e| Box::new(e) as HandlerError)?;
                }
                replies.push(None);
            }
            Ok(replies)
        })
    }
}

async fn record_finish(
    client: &impl GenericClient,
    finish: &store::campaigns::Finish<'_>,
) -> Result<(), tokio_postgres::Error> {
    let Some((call, arrival)) = store::campaigns::record_finish(client, finish).await? else {
        tracing::info!(
            mass.msg_id = finish.msg_id,
            "MASSSENDJOBFINISH repeated, or for a job no campaign has recorded (yet); kept by msg_id"
        );
        return Ok(());
    };
    after_result(client, call, arrival == store::campaigns::Arrival::First).await
}

/// Takes in a job's final status read back with `mass/get` (`SEND_SUCCESS`, `SEND_FAIL` or
/// `DELETE`) when its MASSSENDJOBFINISH did not come: the call counts as finished, without
/// counts. `SENDING` (or anything else) records nothing.
///
/// # Errors
/// The database.
pub async fn record_read_back(
    client: &impl GenericClient,
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
    if let Some(call) = store::campaigns::record_read_back(client, msg_id, status).await? {
        after_result(client, call, true).await?;
    }
    Ok(true)
}

/// A call's job has finished: its temporary tag goes (once: `first` result heard), and the
/// campaign's status follows.
async fn after_result(
    client: &impl GenericClient,
    (campaign_id, kind, wechat_tag_id): (i64, String, Option<i64>),
    first: bool,
) -> Result<(), tokio_postgres::Error> {
    if let (Some(tag), "temp_tag", true) = (wechat_tag_id, kind.as_str(), first) {
        store::jobs::enqueue(client, "delete_wechat_tag", &serde_json::json!({ "wechat_tag_id": tag })).await?;
    }
    settle(client, campaign_id).await
}

/// Moves a `sending` campaign to `sent` or `failed` once nothing is left to hear about.
///
/// # Errors
/// The database.
pub async fn settle(client: &impl GenericClient, campaign_id: i64) -> Result<(), tokio_postgres::Error> {
    // Two results settling at once in two transactions would each miss the other's: inside a
    // transaction the campaign's row lock makes the second wait and then see the first.
    store::campaigns::lock_campaign(client, campaign_id).await?;
    let p = store::campaigns::progress(client, campaign_id).await?;
    if p.chunks == 0 || p.pending > 0 || p.finished < p.submitted {
        return Ok(());
    }
    let status = if p.succeeded > 0 { Status::Sent } else { Status::Failed };
    store::campaigns::finish_sending(client, campaign_id, status.as_str()).await?;
    tracing::info!(campaign.id = campaign_id, status = status.as_str(), sent = p.sent, "campaign finished");
    Ok(())
}

/// Unsubscribes this long after delivery are counted against a campaign (SEED.md §3's 退订率).
pub const UNSUBSCRIBE_WINDOW_SECS: f64 = 48.0 * 3600.0;
/// Tags whose campaigns' click rate stays under this over 30 days are weeding candidates (SEED.md §5).
pub const LOW_CLICK_RATE: f64 = 0.05;
/// Tags sharing at least this much of the smaller one's members are merge candidates.
pub const MERGE_OVERLAP: f64 = 0.9;

/// Creates a short link `/r/{code}` to `url` for a campaign's message.
///
/// # Errors
/// An unknown campaign, a URL that is not http(s), or the database.
pub async fn create_link(pool: &Pool, campaign_id: i64, url: &str) -> Result<String, CampaignError> {
    let parsed = url::Url::parse(url).map_err(|e| CampaignError::Invalid(format!("`url`: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(CampaignError::Invalid("`url` must be http or https".into()));
    }
    let client = pool.get().await?;
    store::campaigns::get_campaign(&client, campaign_id).await?.ok_or(CampaignError::NotFound)?;
    loop {
        // 8 base62 characters: short in a message, far too many to guess.
        let code: String = {
            use rand::Rng as _;
            const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
            let mut rng = rand::thread_rng();
            (0..8).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
        };
        if store::campaigns::insert_link(&client, &code, campaign_id, parsed.as_str()).await? {
            return Ok(code);
        }
    }
}

/// Records a click on a short link (attributed when `openid` is known) and returns where it goes.
///
/// # Errors
/// The database.
pub async fn record_click(
    pool: &Pool,
    clock: &Clock,
    code: &str,
    openid: Option<&str>,
) -> Result<Option<String>, CampaignError> {
    let client = pool.get().await?;
    let Some((campaign_id, url)) = store::campaigns::get_link(&client, code).await? else { return Ok(None) };
    store::campaigns::insert_click(&client, code, campaign_id, openid, clock.now()).await?;
    Ok(Some(url))
}

fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// A campaign's measured results: rates over its recipients, per variant, and the A/B verdicts.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignStats {
    pub recipients: i64,
    pub clicks: i64,
    /// Clicks nobody could be named for (opened outside WeChat).
    pub anonymous_clicks: i64,
    pub clickers: i64,
    pub conversions: i64,
    pub unsubscribes: i64,
    /// Attributed clickers plus anonymous clicks, over recipients.
    pub click_rate: Option<f64>,
    pub conversion_rate: Option<f64>,
    pub unsubscribe_rate: Option<f64>,
    /// mpnews only: the readers datacube last reported for the campaign's articles (cumulative
    /// since publishing) over SentCount; `None` before any figure.
    pub read_rate: Option<f64>,
    pub variants: Vec<VariantStats>,
    /// Present with variants: significance tests on clicks and on conversions.
    pub ab_test: Option<AbVerdict>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantStats {
    pub variant: i32,
    pub recipients: i64,
    pub clickers: i64,
    pub conversions: i64,
    pub unsubscribes: i64,
    pub click_rate: Option<f64>,
    pub conversion_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AbVerdict {
    pub clicks: AbTest,
    pub conversions: AbTest,
}

/// Each variant against the control, and the winner when one beats all others at p < 0.05.
#[derive(Debug, Clone, Serialize)]
pub struct AbTest {
    pub against_control: Vec<Option<campaign::ZTest>>,
    pub winner: Option<i32>,
}

fn ab_test(variants: &[VariantStats], successes: impl Fn(&VariantStats) -> i64) -> AbTest {
    let results: Vec<(u64, u64)> =
        variants.iter().map(|v| (successes(v).max(0) as u64, v.recipients.max(0) as u64)).collect();
    let against_control = results.iter().skip(1).map(|r| campaign::two_proportion_z(*r, results[0])).collect();
    let winner = campaign::winner(&results).map(|i| variants[i].variant);
    AbTest { against_control, winner }
}

/// Measures a campaign.
///
/// # Errors
/// The database.
pub async fn stats(
    client: &impl GenericClient,
    settings: &CampaignSettings,
    campaign_id: i64,
) -> Result<CampaignStats, CampaignError> {
    let outcomes = store::campaigns::list_outcomes(
        client,
        campaign_id,
        settings.conversion_window.as_secs_f64(),
        UNSUBSCRIBE_WINDOW_SECS,
    )
    .await?;
    let (clicks, anonymous_clicks) = store::campaigns::count_clicks(client, campaign_id).await?;
    let reads = store::campaigns::sum_article_reads(client, campaign_id).await?;
    let delivered = store::campaigns::progress(client, campaign_id).await?.sent;
    let sum = |f: fn(&store::campaigns::VariantOutcome) -> i64| outcomes.iter().map(f).sum::<i64>();
    let recipients = sum(|o| o.recipients);
    let clickers = sum(|o| o.clickers);
    let conversions = sum(|o| o.converted);
    let unsubscribes = sum(|o| o.unsubscribed);
    let variants: Vec<VariantStats> = outcomes
        .iter()
        .map(|o| VariantStats {
            variant: o.variant,
            recipients: o.recipients,
            clickers: o.clickers,
            conversions: o.converted,
            unsubscribes: o.unsubscribed,
            click_rate: rate(o.clickers, o.recipients),
            conversion_rate: rate(o.converted, o.recipients),
        })
        .collect();
    let ab_test = (variants.len() > 1).then(|| AbVerdict {
        clicks: ab_test(&variants, |v| v.clickers),
        conversions: ab_test(&variants, |v| v.conversions),
    });
    Ok(CampaignStats {
        recipients,
        clicks,
        anonymous_clicks,
        clickers,
        conversions,
        unsubscribes,
        click_rate: rate((clickers + anonymous_clicks).min(recipients), recipients),
        conversion_rate: rate(conversions, recipients),
        unsubscribe_rate: rate(unsubscribes, recipients),
        read_rate: reads.and_then(|r| rate(r, delivered)),
        variants,
        ab_test,
    })
}

/// One strategy's results over the account's history (SEED.md §3's table).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct StrategyStats {
    pub strategy: &'static str,
    pub campaigns: i64,
    pub recipients: i64,
    pub click_rate: Option<f64>,
    pub conversion_rate: Option<f64>,
    pub unsubscribe_rate: Option<f64>,
}

/// Broadcast (`all`) against a single tag against a segment, over delivered campaigns of the
/// last `days` days (at most 500 campaigns).
///
/// # Errors
/// The database.
pub async fn strategies(
    pool: &Pool,
    settings: &CampaignSettings,
    days: i64,
) -> Result<Vec<StrategyStats>, CampaignError> {
    let client = pool.get().await?;
    let since = settings.clock.now() - Duration::days(days);
    let mut totals: Vec<(StrategyStats, i64, i64, i64)> = ["all", "tag", "segment"]
        .into_iter()
        .map(|strategy| (StrategyStats { strategy, ..StrategyStats::default() }, 0, 0, 0))
        .collect();
    for (id, audience) in store::campaigns::list_delivered(&client, since, 500).await? {
        let Ok(audience) = serde_json::from_value::<Audience>(audience) else { continue };
        let s = stats(&client, settings, id).await?;
        let entry = totals.iter_mut().find(|t| t.0.strategy == audience.kind()).expect("every kind is listed");
        entry.0.campaigns += 1;
        entry.0.recipients += s.recipients;
        entry.1 += (s.clickers + s.anonymous_clicks).min(s.recipients);
        entry.2 += s.conversions;
        entry.3 += s.unsubscribes;
    }
    Ok(totals
        .into_iter()
        .map(|(mut t, clicked, converted, unsubscribed)| {
            t.click_rate = rate(clicked, t.recipients);
            t.conversion_rate = rate(converted, t.recipients);
            t.unsubscribe_rate = rate(unsubscribed, t.recipients);
            t
        })
        .collect())
}

/// What the admin page shows about tag health (SEED.md §5).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TagHealth {
    /// Tags whose campaigns of the last 30 days reached followers who clicked less than 5%.
    pub low_click_tags: Vec<serde_json::Value>,
    /// Pairs of tags whose members overlap ≥ 90% of the smaller: merge candidates.
    pub overlapping_tags: Vec<serde_json::Value>,
}

/// # Errors
/// The database.
pub async fn tag_health(pool: &Pool, settings: &CampaignSettings) -> Result<TagHealth, CampaignError> {
    let client = pool.get().await?;
    let since = settings.clock.now() - Duration::days(30);
    let mut low_click_tags = Vec::new();
    for (tag_id, path, campaign_ids) in store::campaigns::list_tag_campaigns(&client, since).await? {
        let (mut recipients, mut clicked) = (0, 0);
        for id in &campaign_ids {
            let s = stats(&client, settings, *id).await?;
            recipients += s.recipients;
            clicked += (s.clickers + s.anonymous_clicks).min(s.recipients);
        }
        if let Some(click_rate) = rate(clicked, recipients).filter(|r| *r < LOW_CLICK_RATE) {
            low_click_tags.push(serde_json::json!({
                "tag_id": tag_id, "path": path, "campaigns": campaign_ids.len(),
                "recipients": recipients, "click_rate": click_rate,
            }));
        }
    }
    let overlapping_tags = store::campaigns::list_overlapping_tags(&client, MERGE_OVERLAP)
        .await?
        .into_iter()
        .map(|(a, b, common, na, nb)| {
            serde_json::json!({
                "tags": [a, b], "common_members": common, "members": [na, nb],
                "overlap": common as f64 / na.min(nb).max(1) as f64,
            })
        })
        .collect();
    Ok(TagHealth { low_click_tags, overlapping_tags })
}
