//! `/api/v1/campaigns` (CONTRACT.md §4): create, list, show, send, approve, reject, cancel, preview.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, Caller, ErrorBody};
use crate::app::accounts::Accounts;
use crate::app::campaigns::approval;
use crate::app::campaigns::{self, CampaignError, CampaignRequest, CampaignSettings};
use crate::domain::account::AccountId;
use crate::domain::campaign::{Audience, Message, Variant};
use crate::store;
use crate::store::ownership::Owned;
use crate::wechat::api::ApiClient;

/// What the campaign handlers need beyond the pool.
#[derive(Debug, Clone)]
pub struct CampaignContext {
    pub settings: CampaignSettings,
    /// `None` without a WeChat account (preview is refused then).
    pub api: Option<ApiClient>,
}

impl CampaignContext {
    /// The settings and WeChat client of `account`: campaigns follow its kind and go out
    /// through its client.
    pub fn for_account(&self, accounts: &Accounts, account: AccountId) -> (CampaignSettings, Option<ApiClient>) {
        let settings = self.settings.for_account(accounts, account);
        let api = if account == AccountId::FIRST {
            self.api.clone()
        } else {
            accounts.get(account).and_then(|live| live.api.clone())
        };
        (settings, api)
    }
}

/// The answer to a failed campaign operation on campaign `id`: one the caller's account does
/// not hold is forbidden when another account holds it.
async fn refused(pool: &Pool, caller: &Caller, id: i64, error: CampaignError) -> ApiError {
    match error {
        CampaignError::NotFound => caller.missing(pool, Owned::Campaign, &id.to_string(), error.to_string()).await,
        CampaignError::UnknownSegment(segment) => {
            match caller.missing(pool, Owned::Segment, &segment.to_string(), error.to_string()).await {
                forbidden if actix_web::ResponseError::status_code(&forbidden) == StatusCode::FORBIDDEN => forbidden,
                _ => error.into(),
            }
        }
        other => other.into(),
    }
}

const MAX_PAGE: i64 = 100;
const DEFAULT_PAGE: i64 = 20;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    name: String,
    audience: Audience,
    message: Message,
    #[serde(default)]
    variants: Vec<Variant>,
    #[serde(default)]
    send_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// The `next` of the previous page: campaigns with a smaller id.
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// Followers who get the preview on their phone. Each is one WeChat call, paced at one a
    /// second, made while the caller waits.
    #[schema(min_items = 1, max_items = 10)]
    openids: Vec<String>,
}

/// A campaign's id and where it is.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CampaignStatus {
    id: i64,
    status: String,
    /// Absent from approve and cancel answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CampaignSummary {
    id: i64,
    name: String,
    status: String,
    #[schema(value_type = Audience)]
    audience: serde_json::Value,
    send_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    created_by: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CampaignPage {
    campaigns: Vec<CampaignSummary>,
    /// The `before` of the next page; `null` on the last.
    next: Option<i64>,
}

/// A campaign in full (CONTRACT.md §4 `GET /campaigns/{id}`); the nested objects are described
/// in the README.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the JSON that `get_campaign` builds")]
pub struct CampaignDetail {
    id: i64,
    name: String,
    status: String,
    audience: Audience,
    message: Message,
    variants: Vec<serde_json::Value>,
    send_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    created_by: String,
    approvals: Vec<serde_json::Value>,
    /// Every sensitive tag the audience reaches: named, through its segment, or through dynamic
    /// tags' conditions (extension).
    sensitive_tags: Vec<String>,
    /// The last 驳回 since the last approval: `{by, at, reason}` (extension).
    rejection: Option<Rejection>,
    /// The last time an approval lapsed because the campaign or what it reaches changed:
    /// `{at, why, changes}` (extension).
    #[schema(value_type = Option<Object>)]
    approval_lapsed: Option<serde_json::Value>,
    send_requested_at: Option<DateTime<Utc>>,
    send_requested_by: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    wechat_msg_ids: Vec<i64>,
    msg_data_ids: Vec<i64>,
    counts: CampaignCounts,
    /// Planned WeChat calls by state.
    #[schema(value_type = Object)]
    calls: serde_json::Map<String, serde_json::Value>,
    /// Each accepted WeChat call: `msg_id`, WeChat's `status` (`send success`, `err(30003)`, ...,
    /// null before a result), its counts, `outcome` {`state`: sent/failed/waiting, `label` and
    /// `advice` in Chinese}, and `copyright` (the originality check's matches, in Chinese).
    #[schema(value_type = Vec<Object>)]
    results: Vec<serde_json::Value>,
    /// What did not go out: each failure once, `label（n 次）：advice`, in Chinese.
    failures: Vec<String>,
    links: Vec<Link>,
    /// Deliveries, reads, clicks, conversions, unsubscribes and the A/B test.
    #[schema(value_type = Object)]
    stats: serde_json::Map<String, serde_json::Value>,
}

/// Who rejected a campaign, when, and why.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the JSON that `get_campaign` builds")]
pub struct Rejection {
    by: String,
    at: DateTime<Utc>,
    reason: String,
}

/// Followers of the send, as WeChat reported them.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the JSON that `get_campaign` builds")]
pub struct CampaignCounts {
    total: i64,
    filter: i64,
    sent: i64,
    error: i64,
}

/// A short link of a campaign.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Link {
    code: String,
    /// `/r/{code}`.
    path: String,
    url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PreviewResults {
    results: Vec<PreviewResult>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PreviewResult {
    openid: String,
    ok: bool,
    error: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Strategies {
    days: i64,
    strategies: Vec<campaigns::StrategyStats>,
}

impl From<CampaignError> for ApiError {
    fn from(error: CampaignError) -> Self {
        let message = error.to_string();
        match error {
            CampaignError::Invalid(_) => ApiError::invalid_request(message),
            CampaignError::NotFound => ApiError::not_found(message),
            CampaignError::UnknownTag(_) => ApiError::unprocessable("unknown_tag", message),
            CampaignError::UnknownSegment(_) => ApiError::unprocessable("unknown_segment", message),
            CampaignError::WrongStatus { .. } => ApiError::conflict("invalid_status", message),
            CampaignError::NeedsApproval(_) | CampaignError::PreviewReachesSensitive { .. } => {
                ApiError::conflict("needs_approval", message)
            }
            // Still "no valid approval" (CONTRACT.md §4); `lapsed` says what changed since.
            CampaignError::ApprovalLapsed { ref changes, .. } => ApiError::conflict("needs_approval", message)
                .with("lapsed", changes.iter().map(ToString::to_string).collect::<Vec<_>>()),
            CampaignError::NotCreatorOrApprover { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "not_creator_or_approver", message)
            }
            CampaignError::FrequencyCap { ref tag, frees_at, .. } => ApiError::conflict("frequency_cap", message)
                .with("tag", tag.clone())
                .with("frees_at", frees_at.to_rfc3339())
                .with("frees_on", frees_at.date_naive().to_string()),
            CampaignError::SelfApproval => ApiError::new(StatusCode::FORBIDDEN, "self_approval", message),
            CampaignError::MachineReviewer { .. } => ApiError::new(StatusCode::FORBIDDEN, "machine_reviewer", message),
            CampaignError::ChangedSinceShown => ApiError::conflict("changed", message),
            CampaignError::EmptyAudience => ApiError::unprocessable("empty_audience", message),
            CampaignError::AudienceTooSmall(_) => ApiError::unprocessable("audience_too_small", message),
            CampaignError::QuotaExhausted { next } => {
                ApiError::conflict("quota_exhausted", message).with("next_send_from", next.to_rfc3339())
            }
            CampaignError::WeChat(ref source) => {
                tracing::warn!(error = %source, "WeChat refused a preview");
                ApiError::new(StatusCode::BAD_GATEWAY, "wechat_error", format!("{message}: {source}"))
            }
            CampaignError::NoAccount => ApiError::conflict("no_account", message),
            CampaignError::Pool(_) | CampaignError::Query(_) => ApiError::database(&error, "campaign call"),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", request_body = NewCampaign,
    responses((status = 201, body = CampaignStatus),
        (status = 422, description = "`unknown_tag`, `unknown_segment`", body = ErrorBody)))]
pub async fn create_campaign(
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    accounts: web::Data<Accounts>,
    caller: Caller,
    body: web::Json<NewCampaign>,
) -> Result<HttpResponse, ApiError> {
    let NewCampaign { name, audience, message, variants, send_at } = body.into_inner();
    let request = CampaignRequest { name, audience, message, variants, send_at };
    let (settings, _) = ctx.for_account(&accounts, caller.account);
    let row = match campaigns::create_campaign(&pool, &settings, &request, &caller.name).await {
        Ok(row) => row,
        Err(error @ CampaignError::UnknownSegment(id)) => return Err(refused(&pool, &caller, id, error).await),
        Err(error) => return Err(error.into()),
    };
    Ok(HttpResponse::Created().json(CampaignStatus { id: row.id, status: row.status, name: Some(row.name) }))
}

/// Newest first.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns", params(Page),
    responses((status = 200, body = CampaignPage)))]
pub async fn list_campaigns(
    pool: web::Data<Pool>,
    caller: Caller,
    page: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let limit = ApiError::page_limit(page.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let client = pool.get().await?;
    let rows = store::campaigns::list_campaigns(&client, caller.account, page.before, limit).await?;
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.id)).flatten();
    let campaigns = rows
        .into_iter()
        .map(|r| CampaignSummary {
            id: r.id,
            name: r.name,
            status: r.status,
            audience: r.audience,
            send_at: r.send_at,
            created_at: r.created_at,
            created_by: r.created_by,
        })
        .collect();
    Ok(HttpResponse::Ok().json(CampaignPage { campaigns, next }))
}

#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns", params(("id" = i64, Path)),
    responses((status = 200, body = CampaignDetail), (status = 404, body = ErrorBody)))]
pub async fn get_campaign(
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    accounts: web::Data<Accounts>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = pool.get().await?;
    let Some(row) = store::campaigns::get_campaign(&client, caller.account, *id).await? else {
        return Err(refused(&pool, &caller, *id, CampaignError::NotFound).await);
    };
    let (settings, _) = ctx.for_account(&accounts, caller.account);
    let variants: Vec<serde_json::Value> = store::campaigns::list_variants(&client, row.id)
        .await?
        .into_iter()
        .map(|(idx, name, message)| json!({ "index": idx, "name": name, "message": message }))
        .collect();
    let approvals: Vec<serde_json::Value> = store::approvals::list_approvals(&client, row.id)
        .await?
        .into_iter()
        .map(|a| json!({ "by": a.by, "at": a.at }))
        .collect();
    // A segment deleted after the campaign was written reaches nothing that can be named.
    let sensitive_tags = match approval::sensitive_tags(&client, &row).await {
        Ok(tags) => tags,
        Err(CampaignError::UnknownSegment(_) | CampaignError::Invalid(_)) => Vec::new(),
        Err(error) => return Err(error.into()),
    };
    let review = store::approvals::get_review(&client, row.id).await?;
    let rejection = review
        .rejected_by
        .map(|by| json!({ "by": by, "at": review.rejected_at, "reason": review.rejection_reason.unwrap_or_default() }));
    let lapse = review.lapsed_at.map(|at| {
        let changes: Vec<crate::domain::approval::Change> =
            review.lapse.and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default();
        json!({ "at": at, "why": approval::describe(&changes), "changes": changes })
    });
    let msg_ids = store::campaigns::list_msg_ids(&client, row.id).await?;
    let progress = store::campaigns::progress(&client, row.id).await?;
    let call_results = campaigns::call_outcomes(&client, row.id).await?;
    let failures = campaigns::failure_summary(&call_results);
    let stats = campaigns::stats(&client, &settings, row.id).await?;
    let links: Vec<serde_json::Value> = store::campaigns::list_links(&client, row.id)
        .await?
        .into_iter()
        .map(|(code, url)| json!({ "code": code, "path": format!("/r/{code}"), "url": url }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "audience": row.audience,
        "message": row.message,
        "variants": variants,
        "send_at": row.send_at,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "approvals": approvals,
        "sensitive_tags": sensitive_tags,
        "rejection": rejection,
        "approval_lapsed": lapse,
        "send_requested_at": row.send_requested_at,
        "send_requested_by": row.send_requested_by,
        "delivered_at": row.delivered_at,
        "last_error": row.last_error,
        "wechat_msg_ids": msg_ids.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        "msg_data_ids": msg_ids.iter().filter_map(|(_, d)| *d).collect::<Vec<_>>(),
        "counts": {
            "total": progress.total,
            "filter": progress.filter,
            "sent": progress.sent,
            "error": progress.error,
        },
        "calls": {
            "planned": progress.chunks,
            "pending": progress.pending,
            "submitted": progress.submitted,
            "failed": progress.failed,
            "finished": progress.finished,
            "uncounted": progress.uncounted,
        },
        "results": call_results,
        "failures": failures,
        "links": links,
        "stats": stats,
    })))
}

#[utoipa::path(post, path = "/api/v1/campaigns/{id}/send", tag = "campaigns", params(("id" = i64, Path)),
    responses((status = 202, body = campaigns::SendAccepted), (status = 404, body = ErrorBody),
        (status = 403, description = "`not_creator_or_approver`: approved, and the caller is neither its creator \
            nor its approver", body = ErrorBody),
        (status = 409, description = "`needs_approval` (with `lapsed` when an approval no longer covers the campaign \
            as it is), `frequency_cap` (with `tag`, `frees_at`, `frees_on`), \
            `quota_exhausted` (with `next_send_from`), `invalid_status`", body = ErrorBody),
        (status = 422, description = "`empty_audience`, `audience_too_small`", body = ErrorBody)))]
pub async fn send_campaign(
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    accounts: web::Data<Accounts>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (settings, _) = ctx.for_account(&accounts, caller.account);
    let accepted = match campaigns::request_send(&pool, &settings, *id, &caller.name).await {
        Ok(accepted) => accepted,
        Err(error) => return Err(refused(&pool, &caller, *id, error).await),
    };
    Ok(HttpResponse::Accepted().json(accepted))
}

/// By an admin or approver who is not the creator, signed in as a person (not the bearer token).
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/approve", tag = "campaigns", params(("id" = i64, Path)),
    responses((status = 200, body = CampaignStatus), (status = 403, description = "`self_approval`, `forbidden`, \
        `machine_reviewer`: the bearer token is not a person", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "`invalid_status`", body = ErrorBody)))]
pub async fn approve_campaign(
    pool: web::Data<Pool>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(caller.role.may_approve(), "approve campaigns")?;
    let row = match approval::approve(&pool, caller.account, *id, &caller.name, None).await {
        Ok(row) => row,
        Err(error) => return Err(refused(&pool, &caller, *id, error).await),
    };
    Ok(HttpResponse::Ok().json(CampaignStatus { id: row.id, status: row.status, name: None }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// What the creator should change; shown to them on the campaign.
    #[schema(min_length = 1, max_length = 500, example = "折扣写错了，应为 8 折")]
    reason: String,
}

/// 驳回 (extension): by an admin or approver, of a campaign waiting for approval. It goes back
/// to `draft` with the reason; sending it again puts it back in the queue.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/reject", tag = "campaigns", params(("id" = i64, Path)),
    request_body = RejectRequest,
    responses((status = 200, body = CampaignStatus),
        (status = 400, description = "`invalid_request`: no reason, or a reason over 500 characters", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin or approver; `machine_reviewer`: the bearer token \
            is not a person", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "`invalid_status`", body = ErrorBody)))]
pub async fn reject_campaign(
    pool: web::Data<Pool>,
    caller: Caller,
    id: web::Path<i64>,
    body: web::Json<RejectRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(caller.role.may_approve(), "reject campaigns")?;
    let row = match approval::reject(&pool, caller.account, *id, &caller.name, &body.reason).await {
        Ok(row) => row,
        Err(error) => return Err(refused(&pool, &caller, *id, error).await),
    };
    Ok(HttpResponse::Ok().json(CampaignStatus { id: row.id, status: row.status, name: None }))
}

#[utoipa::path(post, path = "/api/v1/campaigns/{id}/cancel", tag = "campaigns", params(("id" = i64, Path)),
    responses((status = 200, body = CampaignStatus), (status = 404, body = ErrorBody),
        (status = 409, description = "`invalid_status`", body = ErrorBody)))]
pub async fn cancel_campaign(
    pool: web::Data<Pool>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let row = match campaigns::cancel(&pool, caller.account, *id, &caller.name).await {
        Ok(row) => row,
        Err(error) => return Err(refused(&pool, &caller, *id, error).await),
    };
    Ok(HttpResponse::Ok().json(CampaignStatus { id: row.id, status: row.status, name: None }))
}

/// Sends the message to a few followers' phones (WeChat's preview call).
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/preview", tag = "campaigns", params(("id" = i64, Path)),
    request_body = PreviewRequest,
    responses((status = 200, body = PreviewResults), (status = 404, body = ErrorBody),
        (status = 409, description = "`no_account`; `needs_approval`: an openid carries a sensitive tag the unapproved campaign reaches", body = ErrorBody),
        (status = 502, description = "`wechat_error`: WeChat refused", body = ErrorBody)))]
pub async fn preview_campaign(
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    accounts: web::Data<Accounts>,
    caller: Caller,
    id: web::Path<i64>,
    body: web::Json<PreviewRequest>,
) -> Result<HttpResponse, ApiError> {
    let (_, api) = ctx.for_account(&accounts, caller.account);
    let results = match campaigns::preview(&pool, api.as_ref(), caller.account, *id, &body.openids, &caller.name).await
    {
        Ok(results) => results,
        Err(error) => return Err(refused(&pool, &caller, *id, error).await),
    };
    let results =
        results.into_iter().map(|(openid, error)| PreviewResult { openid, ok: error.is_none(), error }).collect();
    Ok(HttpResponse::Ok().json(PreviewResults { results }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    /// http or https.
    #[schema(example = "https://shop.example/sale")]
    url: String,
    /// Which article of a multi-article (mpnews) send the link sits in, 1-based; its clicks are
    /// then shown for that article too.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 8)]
    article_idx: Option<i32>,
}

/// `POST /campaigns/{id}/links {url}` → `201 {code, path}`: a short link to put in the message.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/links", tag = "campaigns", params(("id" = i64, Path)),
    request_body = NewLink, responses((status = 201, body = Link), (status = 404, body = ErrorBody)))]
pub async fn create_link(
    pool: web::Data<Pool>,
    caller: Caller,
    id: web::Path<i64>,
    body: web::Json<NewLink>,
) -> Result<HttpResponse, ApiError> {
    let code = match campaigns::create_link(&pool, caller.account, *id, &body.url, body.article_idx).await {
        Ok(code) => code,
        Err(error) => return Err(refused(&pool, &caller, *id, error).await),
    };
    let path = format!("/r/{code}");
    Ok(HttpResponse::Created().json(Link { code, path, url: body.into_inner().url }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Default 90.
    #[serde(default)]
    #[param(minimum = 1, maximum = 365)]
    days: Option<i64>,
}

/// `GET /campaigns/strategies?days=90`: broadcast vs single tag vs segment.
#[utoipa::path(get, path = "/api/v1/campaigns/strategies", tag = "campaigns", params(Window),
    responses((status = 200, body = Strategies)))]
pub async fn compare_strategies(
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    accounts: web::Data<Accounts>,
    caller: Caller,
    window: web::Query<Window>,
) -> Result<HttpResponse, ApiError> {
    let days = window.days.unwrap_or(90);
    if !(1..=365).contains(&days) {
        return Err(ApiError::invalid_request("`days` must be 1 to 365"));
    }
    let (settings, _) = ctx.for_account(&accounts, caller.account);
    let strategies = campaigns::strategies(&pool, &settings, days).await?;
    Ok(HttpResponse::Ok().json(Strategies { days, strategies }))
}

/// `GET /tags/health`: low-click tags and merge candidates.
#[utoipa::path(get, path = "/api/v1/tags/health", tag = "tags", responses((status = 200, body = campaigns::TagHealth)))]
pub async fn tag_health(
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    accounts: web::Data<Accounts>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (settings, _) = ctx.for_account(&accounts, caller.account);
    Ok(HttpResponse::Ok().json(campaigns::tag_health(&pool, &settings).await?))
}
