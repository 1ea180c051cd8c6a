//! `/api/v1/campaigns` (CONTRACT.md §4): create, list, show, send, approve, cancel, preview.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, Caller};
use crate::campaigns::{self, CampaignError, CampaignRequest, CampaignSettings};
use crate::domain::campaign::{Audience, Message, Variant};
use crate::store;
use crate::wechat::api::ApiClient;

/// What the campaign handlers need beyond the pool.
#[derive(Debug, Clone)]
pub struct CampaignContext {
    pub settings: CampaignSettings,
    /// `None` without a WeChat account (preview is refused then).
    pub api: Option<ApiClient>,
}

const MAX_PAGE: i64 = 100;
const DEFAULT_PAGE: i64 = 20;

#[derive(Deserialize)]
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    openids: Vec<String>,
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
            CampaignError::NeedsApproval(_) => ApiError::conflict("needs_approval", message),
            CampaignError::FrequencyCap { ref tag, frees_at, .. } => ApiError::conflict("frequency_cap", message)
                .with("tag", tag.clone())
                .with("frees_at", frees_at.to_rfc3339())
                .with("frees_on", frees_at.date_naive().to_string()),
            CampaignError::SelfApproval => ApiError::new(StatusCode::FORBIDDEN, "self_approval", message),
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
            CampaignError::Pool(_) | CampaignError::Query(_) => {
                tracing::error!(error = ?error, "campaign call failed on the database");
                ApiError::internal()
            }
        }
    }
}

pub async fn create_campaign(
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    caller: Caller,
    body: web::Json<NewCampaign>,
) -> Result<HttpResponse, ApiError> {
    let NewCampaign { name, audience, message, variants, send_at } = body.into_inner();
    let request = CampaignRequest { name, audience, message, variants, send_at };
    let row = campaigns::create_campaign(&pool, &ctx.settings, &request, &caller.name).await?;
    Ok(HttpResponse::Created().json(json!({ "id": row.id, "status": row.status, "name": row.name })))
}

pub async fn list_campaigns(
    pool: web::Data<Pool>,
    _caller: Caller,
    page: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let limit = ApiError::page_limit(page.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let client = pool.get().await?;
    let rows = store::campaigns::list_campaigns(&client, page.before, limit).await?;
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.id)).flatten();
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "name": r.name, "status": r.status, "audience": r.audience,
                "send_at": r.send_at, "created_at": r.created_at, "created_by": r.created_by,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "campaigns": items, "next": next })))
}

pub async fn get_campaign(
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    _caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = pool.get().await?;
    let row = store::campaigns::get_campaign(&client, *id).await?.ok_or(CampaignError::NotFound)?;
    let variants: Vec<serde_json::Value> = store::campaigns::list_variants(&client, row.id)
        .await?
        .into_iter()
        .map(|(idx, name, message)| json!({ "index": idx, "name": name, "message": message }))
        .collect();
    let approvals: Vec<serde_json::Value> = store::campaigns::list_approvals(&client, row.id)
        .await?
        .into_iter()
        .map(|(by, at)| json!({ "by": by, "at": at }))
        .collect();
    let msg_ids = store::campaigns::list_msg_ids(&client, row.id).await?;
    let progress = store::campaigns::progress(&client, row.id).await?;
    let stats = campaigns::stats(&client, &ctx.settings, row.id).await?;
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
        },
        "links": links,
        "stats": stats,
    })))
}

pub async fn send_campaign(
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let accepted = campaigns::request_send(&pool, &ctx.settings, *id, &caller.name).await?;
    Ok(HttpResponse::Accepted().json(accepted))
}

pub async fn approve_campaign(
    pool: web::Data<Pool>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(caller.role.may_approve(), "approve campaigns")?;
    let row = campaigns::approve(&pool, *id, &caller.name).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": row.id, "status": row.status })))
}

pub async fn cancel_campaign(
    pool: web::Data<Pool>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let row = campaigns::cancel(&pool, *id, &caller.name).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": row.id, "status": row.status })))
}

pub async fn preview_campaign(
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    caller: Caller,
    id: web::Path<i64>,
    body: web::Json<PreviewRequest>,
) -> Result<HttpResponse, ApiError> {
    let results = campaigns::preview(&pool, ctx.api.as_ref(), *id, &body.openids, &caller.name).await?;
    let results: Vec<serde_json::Value> = results
        .into_iter()
        .map(|(openid, error)| json!({ "openid": openid, "ok": error.is_none(), "error": error }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "results": results })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    url: String,
}

/// `POST /campaigns/{id}/links {url}` → `201 {code, path}`: a short link to put in the message.
pub async fn create_link(
    pool: web::Data<Pool>,
    _caller: Caller,
    id: web::Path<i64>,
    body: web::Json<NewLink>,
) -> Result<HttpResponse, ApiError> {
    let code = campaigns::create_link(&pool, *id, &body.url).await?;
    Ok(HttpResponse::Created().json(json!({ "code": code, "path": format!("/r/{code}"), "url": body.url })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(default)]
    days: Option<i64>,
}

/// `GET /campaigns/strategies?days=90`: broadcast vs single tag vs segment.
pub async fn compare_strategies(
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    _caller: Caller,
    window: web::Query<Window>,
) -> Result<HttpResponse, ApiError> {
    let days = window.days.unwrap_or(90);
    if !(1..=365).contains(&days) {
        return Err(ApiError::invalid_request("`days` must be 1 to 365"));
    }
    let strategies = campaigns::strategies(&pool, &ctx.settings, days).await?;
    Ok(HttpResponse::Ok().json(json!({ "days": days, "strategies": strategies })))
}

/// `GET /tags/health`: low-click tags and merge candidates.
pub async fn tag_health(
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(campaigns::tag_health(&pool, &ctx.settings).await?))
}
