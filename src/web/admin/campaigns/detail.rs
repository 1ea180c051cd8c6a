//! 群发详情: one campaign's page (its messages, delivery counts, results and A/B verdicts,
//! strategies compared) and previewing it to test followers.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::approvals::stored_lapse;
use super::reach::ReachView;
use super::{
    Problem, audience_text, filtered_out, lapse_text, message_text, percent, problem, scoped_problem, status_label,
    strategy_label,
};
use crate::app::campaigns::approval;
use crate::app::campaigns::{self, CampaignError, CampaignStats};
use crate::domain::campaign::{Audience, Message, Status};
use crate::store;
use crate::store::ownership::Owned;
use crate::web::admin::pages::show_time;
use crate::web::admin::{AdminError, AdminState, AdminUser, CsrfForm, Layout, charts, render};
use crate::web::api::CampaignContext;

pub struct MessageView {
    pub label: String,
    pub kind: &'static str,
    pub body: String,
}

pub struct VariantView {
    pub name: String,
    pub recipients: i64,
    pub clickers: i64,
    pub click_rate: String,
    pub conversions: i64,
    pub conversion_rate: String,
    pub unsubscribes: i64,
    /// Against the control, on clicks: the two-sided p-value, or "—".
    pub p_clicks: String,
    pub winner: bool,
}

pub struct StrategyView {
    pub label: &'static str,
    pub this: bool,
    pub campaigns: i64,
    pub recipients: i64,
    pub click_rate: String,
    pub conversion_rate: String,
    pub unsubscribe_rate: String,
}

/// The last 驳回, shown to the creator.
pub struct Rejection {
    pub by: String,
    pub at: String,
    pub reason: String,
}

pub struct PreviewResult {
    pub openid: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/campaigns/show.html")]
struct DetailPage {
    layout: Layout,
    id: i64,
    name: String,
    status: &'static str,
    status_code: String,
    audience: String,
    sensitive: Vec<String>,
    approvals: Vec<String>,
    /// 审批已失效: what changed since the approval.
    lapsed: Option<String>,
    rejection: Option<Rejection>,
    needs_approval: bool,
    messages: Vec<MessageView>,
    send_at: String,
    created: String,
    created_by: String,
    requested: String,
    delivered: String,
    last_error: Option<String>,
    /// (planned, pending, submitted, failed, finished) WeChat calls.
    calls: (i64, i64, i64, i64, i64),
    /// Finished calls whose status was read back with `mass/get`: no counts.
    uncounted: i64,
    /// Once calls are planned: each count with its meaning, and how they add up.
    delivery: Option<campaigns::Delivery>,
    /// Before the send: who it would reach now.
    reach: Option<ReachView>,
    /// Why `reach` could not be computed.
    reach_error: Option<String>,
    /// Each accepted call and what WeChat's result means.
    call_results: Vec<campaigns::CallOutcome>,
    /// What did not go out, each failure once with what to do.
    failures: Vec<String>,
    reported: bool,
    delivery_svg: String,
    stats: CampaignStats,
    click_rate: String,
    conversion_rate: String,
    unsubscribe_rate: String,
    read_rate: String,
    /// One row per article of an mpnews send with figures.
    articles: Vec<ArticleView>,
    variants: Vec<VariantView>,
    verdict: Option<String>,
    results_svg: String,
    strategies: Vec<StrategyView>,
    strategies_svg: String,
    can_send: bool,
    can_approve: bool,
    /// Of what the page shows, sent with the approval.
    fingerprint: String,
    can_reject: bool,
    own: bool,
    may_approve: bool,
    can_cancel: bool,
    preview_openids: String,
    preview: Vec<PreviewResult>,
    preview_error: Option<String>,
}

/// One article of a multi-article send.
struct ArticleView {
    idx: i32,
    /// From the local draft list; empty once the draft is gone.
    title: String,
    read_user: String,
    read_rate: String,
    clicks: i64,
}

struct PreviewOutcome {
    openids: String,
    results: Vec<PreviewResult>,
    error: Option<String>,
}

async fn detail_page(
    user: &AdminUser,
    pool: &Pool,
    settings: &campaigns::CampaignSettings,
    state: &AdminState,
    id: i64,
    preview: Option<PreviewOutcome>,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let Some(row) = store::campaigns::get_campaign(&client, user.account, id).await? else {
        return Err(user.missing(pool, Owned::Campaign, &id.to_string()).await);
    };
    let say = |error: CampaignError| match problem(error) {
        Problem::Say(message) => {
            tracing::warn!(campaign.id = id, message, "a stored campaign could not be read back");
            AdminError::Internal
        }
        Problem::Fail(error) => error,
    };
    let audience = campaigns::audience_of(&row).map_err(say)?;
    let segment_name = match &audience {
        Audience::Segment(sid) => store::segments::get_segment(&client, row.account, *sid).await?.map(|s| s.name),
        _ => None,
    };
    // A segment deleted (or no longer parsing) after the campaign was written names no tags:
    // sending it is refused by the domain anyway, and the page still shows what was stored.
    let standing = match approval::standing(&client, &row).await {
        Ok(standing) => Some(standing),
        Err(CampaignError::UnknownSegment(_) | CampaignError::Invalid(_)) => None,
        Err(error) => return Err(say(error)),
    };
    let sensitive: Vec<String> =
        standing.as_ref().map(|s| s.covered.sensitive().into_iter().map(str::to_owned).collect()).unwrap_or_default();
    let needs_approval = standing.as_ref().is_some_and(approval::Standing::needs_approval);
    let fingerprint = standing.as_ref().map(|s| s.covered.fingerprint()).unwrap_or_default();
    let approvals = store::approvals::list_approvals(&client, id).await?;
    let review = store::approvals::get_review(&client, id).await?;
    // Shown before anyone presses send: the approval no longer covers what would go out.
    let lapsed = match standing.as_ref().and_then(|s| s.lapsed.as_ref()) {
        Some(changes) if needs_approval => Some(lapse_text(changes)),
        _ => stored_lapse(&review),
    };
    let rejection = review.rejected_by.clone().map(|by| Rejection {
        by,
        at: review.rejected_at.map_or_else(String::new, show_time),
        reason: review.rejection_reason.clone().unwrap_or_default(),
    });
    let mut messages = Vec::new();
    let mut article_titles = Vec::new();
    let variant_names: Vec<String> =
        store::campaigns::list_variants(&client, id).await?.into_iter().map(|(_, name, _)| name).collect();
    for (i, message) in campaigns::messages_of(&client, &row).await.map_err(say)?.iter().enumerate() {
        let (kind, mut body) = message_text(message);
        if let Message::Mpnews { media_id } = message
            && let Some(draft) = store::drafts::get_draft(&client, user.account, media_id).await?
        {
            // The editor knows a draft by its title; the id stays for WeChat's console.
            body = format!("{}（{} 篇，media_id {media_id}）", draft.article_titles.join(" / "), draft.article_count);
            if i == 0 {
                article_titles = draft.article_titles;
            }
        }
        let label = match i {
            0 if variant_names.is_empty() => "内容".to_owned(),
            0 => "对照".to_owned(),
            i => format!("方案 {i}「{}」", variant_names.get(i - 1).map_or("", String::as_str)),
        };
        messages.push(MessageView { label, kind, body });
    }
    let progress = store::campaigns::progress(&client, id).await?;
    let call_results = campaigns::call_outcomes(&client, id).await?;
    let failures = campaigns::failure_summary(&call_results);
    let stats = campaigns::stats(&client, settings, id).await.map_err(say)?;
    let delivery = if progress.chunks > 0 {
        // Once delivered, the results above counted the recipients already: no second pass over
        // a million rows.
        let recipients = match row.delivered_at {
            Some(_) => stats.recipients,
            None => store::campaigns::count_recipients_by_variant(&client, id).await?.iter().map(|v| v.1).sum(),
        };
        let kinds = store::campaigns::list_call_kinds(&client, id).await?;
        let plan = campaigns::Plan {
            recipients,
            kinds: &kinds,
            waiting: (progress.submitted - progress.finished).max(0),
            uncounted: progress.uncounted,
            refused: progress.failed,
            pending: progress.pending,
        };
        Some(campaigns::explain_delivery(&plan, &call_results))
    } else {
        None
    };
    let group_name = |variant: i32| match variant {
        0 if variant_names.is_empty() => "本次群发".to_owned(),
        0 => "对照".to_owned(),
        v => variant_names.get(v as usize - 1).cloned().unwrap_or_else(|| format!("方案 {v}")),
    };
    let winner = stats.ab_test.as_ref().and_then(|ab| ab.clicks.winner);
    let variants: Vec<VariantView> = stats
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| VariantView {
            name: group_name(v.variant),
            recipients: v.recipients,
            clickers: v.clickers,
            click_rate: percent(v.click_rate),
            conversions: v.conversions,
            conversion_rate: percent(v.conversion_rate),
            unsubscribes: v.unsubscribes,
            p_clicks: stats
                .ab_test
                .as_ref()
                .and_then(|ab| i.checked_sub(1).and_then(|j| ab.clicks.against_control.get(j).copied().flatten()))
                .map_or_else(|| "—".to_owned(), |t| format!("{:.3}", t.p_value)),
            winner: winner == Some(v.variant),
        })
        .collect();
    let verdict = stats.ab_test.as_ref().map(|ab| match ab.clicks.winner {
        Some(w) => format!("点击率上「{}」显著胜出（p < 0.05）。", group_name(w)),
        None => "各方案的点击率差异尚不显著（p ≥ 0.05），继续观察或加大样本。".to_owned(),
    });
    let results_svg = if stats.recipients > 0 {
        let groups: Vec<(String, Vec<Option<f64>>)> = stats
            .variants
            .iter()
            .map(|v| {
                let unsubscribe_rate = (v.recipients > 0).then(|| v.unsubscribes as f64 / v.recipients as f64);
                (group_name(v.variant), vec![v.click_rate, v.conversion_rate, unsubscribe_rate])
            })
            .collect();
        charts::rate_chart(&groups, &["点击率", "转化率", "退订率"])
    } else {
        String::new()
    };
    drop(client);
    let status = Status::parse(&row.status).unwrap_or(Status::Failed);
    let (reach, reach_error) = if progress.chunks == 0 && !matches!(status, Status::Cancelled | Status::Failed) {
        match campaigns::reach_of_campaign(pool, settings, &row).await {
            Ok(reach) => (Some(ReachView::new(&reach, &variant_names)), None),
            Err(error) => match problem(error) {
                Problem::Say(message) => (None, Some(message)),
                Problem::Fail(error) => return Err(error),
            },
        }
    } else {
        (None, None)
    };
    let figures = state.strategies.get(pool, settings).await?;
    let strategies: Vec<StrategyView> = figures
        .iter()
        .map(|s| StrategyView {
            label: strategy_label(s.strategy),
            this: s.strategy == audience.kind(),
            campaigns: s.campaigns,
            recipients: s.recipients,
            click_rate: percent(s.click_rate),
            conversion_rate: percent(s.conversion_rate),
            unsubscribe_rate: percent(s.unsubscribe_rate),
        })
        .collect();
    let strategies_svg = if figures.iter().any(|s| s.recipients > 0) {
        let groups: Vec<(String, Vec<Option<f64>>)> = figures
            .iter()
            .filter(|s| s.recipients > 0)
            .map(|s| (strategy_label(s.strategy).to_owned(), vec![s.click_rate, s.conversion_rate, s.unsubscribe_rate]))
            .collect();
        charts::rate_chart(&groups, &["点击率", "转化率", "退订率"])
    } else {
        String::new()
    };
    let own = row.created_by == user.username;
    let reported = progress.finished > 0;
    let preview = preview.unwrap_or(PreviewOutcome { openids: String::new(), results: Vec::new(), error: None });
    let page = DetailPage {
        layout: user.layout("campaigns"),
        id,
        name: row.name.clone(),
        status: status_label(&row.status),
        status_code: row.status.clone(),
        audience: audience_text(&audience, segment_name.as_deref()),
        needs_approval,
        can_approve: user.role.may_approve()
            && !own
            && status.may_approve()
            && (!sensitive.is_empty() || status == Status::PendingApproval),
        can_reject: user.role.may_approve() && status == Status::PendingApproval,
        fingerprint,
        sensitive,
        approvals: approvals.iter().map(|a| format!("{}（{}）", a.by, show_time(a.at))).collect(),
        lapsed,
        rejection,
        messages,
        send_at: row.send_at.map_or_else(|| "立即".to_owned(), show_time),
        created: show_time(row.created_at),
        created_by: row.created_by.clone(),
        requested: match (&row.send_requested_by, row.send_requested_at) {
            (Some(by), Some(at)) => format!("{by}（{}）", show_time(at)),
            _ => "—".to_owned(),
        },
        delivered: row.delivered_at.map_or_else(|| "—".to_owned(), show_time),
        last_error: row.last_error.as_deref().map(crate::wechat::errcode_zh::humanize),
        calls: (progress.chunks, progress.pending, progress.submitted, progress.failed, progress.finished),
        uncounted: progress.uncounted,
        call_results,
        failures,
        delivery,
        reach,
        reach_error,
        reported,
        delivery_svg: if reported {
            charts::delivery_chart(progress.sent, filtered_out(progress.total, progress.filter), progress.error)
        } else {
            String::new()
        },
        click_rate: percent(stats.click_rate),
        conversion_rate: percent(stats.conversion_rate),
        unsubscribe_rate: percent(stats.unsubscribe_rate),
        read_rate: percent(stats.read_rate),
        articles: stats
            .articles
            .iter()
            .map(|a| ArticleView {
                idx: a.article_idx,
                title: usize::try_from(a.article_idx - 1)
                    .ok()
                    .and_then(|i| article_titles.get(i))
                    .cloned()
                    .unwrap_or_default(),
                read_user: a.read_user.map_or_else(|| "—".to_owned(), |r| r.to_string()),
                read_rate: percent(a.read_rate),
                clicks: a.clicks,
            })
            .collect(),
        stats,
        variants,
        verdict,
        results_svg,
        strategies,
        strategies_svg,
        can_send: status.may_send(),
        own,
        may_approve: user.role.may_approve(),
        can_cancel: status.may_cancel(),
        preview_openids: preview.openids,
        preview_error: preview.error.clone(),
        preview: preview.results,
    };
    let refused = page.preview_error.is_some();
    render(&page).map(|mut r| {
        if refused {
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        }
        r
    })
}

pub async fn show_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    accounts: web::Data<crate::app::accounts::Accounts>,
    state: web::Data<Arc<AdminState>>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AdminError> {
    let (settings, _) = ctx.for_account(&accounts, user.account);
    detail_page(&user, &pool, &settings, &state, id.into_inner(), None).await
}

#[derive(Deserialize)]
pub struct PreviewForm {
    #[serde(default)]
    openids: String,
}

/// Sends every message of the campaign to the listed test followers through WeChat's preview,
/// and shows, per follower, whether WeChat took it.
pub async fn preview_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    accounts: web::Data<crate::app::accounts::Accounts>,
    state: web::Data<Arc<AdminState>>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<PreviewForm>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    let (settings, api) = ctx.for_account(&accounts, user.account);
    let openids: Vec<String> = form
        .openids
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '，' | '、'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let outcome = match campaigns::preview(&pool, api.as_ref(), user.account, id, &openids, &user.username).await {
        Ok(results) => PreviewOutcome {
            openids: form.openids.clone(),
            results: results.into_iter().map(|(openid, error)| PreviewResult { openid, error }).collect(),
            error: None,
        },
        Err(error) => match scoped_problem(&user, &pool, id, error).await {
            Problem::Say(message) => {
                PreviewOutcome { openids: form.openids.clone(), results: Vec::new(), error: Some(message) }
            }
            Problem::Fail(error) => return Err(error),
        },
    };
    detail_page(&user, &pool, &settings, &state, id, Some(outcome)).await
}
