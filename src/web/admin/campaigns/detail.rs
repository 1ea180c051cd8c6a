//! 群发详情: one campaign's page (its messages, delivery counts, results and A/B verdicts,
//! strategies compared) and previewing it to test followers.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;

use super::approvals::stored_lapse;
use super::preview::{self, PreviewOutcome, PreviewResult};
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
use crate::web::admin::phone::PhoneView;
use crate::web::admin::{AdminError, AdminState, AdminUser, CsrfForm, Layout, charts, render};
use crate::web::api::CampaignContext;

pub struct MessageView {
    pub label: String,
    pub kind: &'static str,
    pub body: String,
    pub phone: PhoneView,
}

pub struct VariantView {
    pub name: String,
    pub recipients: i64,
    pub clickers: i64,
    pub click_rate: String,
    pub conversions: i64,
    pub conversion_rate: String,
    pub unsubscribes: i64,
    /// Against the control, on clicks, in words (显著优于对照 …), or "—" for the control itself.
    pub versus: String,
    /// The test behind [`VariantView::versus`], shown on hover.
    pub versus_title: String,
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
    /// Nothing went out yet: 删除 is offered.
    can_delete: bool,
    /// Submitted and waiting for an approver: no second 提交审批.
    waiting: bool,
    preview_openids: String,
    preview_choices: Vec<preview::PreviewChoice>,
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
    let account_name = user.live_account().map(|a| a.display_name.clone()).unwrap_or_default();
    let mut messages = Vec::new();
    let mut article_titles = Vec::new();
    let variant_names: Vec<String> =
        store::campaigns::list_variants(&client, id).await?.into_iter().map(|(_, name, _)| name).collect();
    for (i, message) in campaigns::messages_of(&client, &row).await.map_err(say)?.iter().enumerate() {
        let (kind, mut body) = message_text(message);
        let draft = match message {
            Message::Mpnews { media_id } => store::drafts::get_draft(&client, user.account, media_id).await?,
            _ => None,
        };
        let phone = PhoneView::of(&account_name, message, draft.as_ref());
        if let (Message::Mpnews { media_id }, Some(draft)) = (message, draft) {
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
        messages.push(MessageView { label, kind, body, phone });
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
            versus: versus_control(&stats, i).0,
            versus_title: versus_control(&stats, i).1,
            winner: winner == Some(v.variant),
        })
        .collect();
    let verdict = stats.ab_test.as_ref().map(|ab| match ab.clicks.winner {
        Some(w) => format!("「{}」的点击率明显高于其他方案，差异不是偶然：以后可优先用它。", group_name(w)),
        None => "各方案的点击率还看不出真正的差别（可能只是偶然波动）：继续观察，或下次发给更多人。".to_owned(),
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
    let chosen = preview.as_ref().map_or(&[][..], |p| p.chosen.as_slice());
    let preview_choices = preview::choices(&client, user.account, state.simulator.demo, chosen).await?;
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
    let preview = preview.unwrap_or(PreviewOutcome {
        openids: String::new(),
        chosen: Vec::new(),
        results: Vec::new(),
        error: None,
    });
    let page = DetailPage {
        layout: user.layout("campaigns"),
        id,
        name: row.name.clone(),
        status: status_label(&row.status),
        status_code: row.status.clone(),
        audience: audience_text(&audience, segment_name.as_deref()),
        needs_approval,
        // Once an approval covers the campaign as it is, there is nothing left to approve.
        can_approve: user.role.may_approve()
            && !own
            && status.may_approve()
            && (needs_approval || status == Status::PendingApproval),
        can_reject: user.role.may_approve() && status == Status::PendingApproval,
        fingerprint,
        sensitive,
        approvals: approvals.iter().map(|a| format!("{} 于 {} 审批通过", a.by, show_time(a.at))).collect(),
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
        can_send: status.may_send() && !(status == Status::PendingApproval && needs_approval),
        waiting: status == Status::PendingApproval && needs_approval,
        can_delete: status.may_delete(),
        own,
        may_approve: user.role.may_approve(),
        can_cancel: status.may_cancel(),
        preview_openids: preview.openids,
        preview_choices,
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

/// Variant `i` (0 is the control) against the control on clicks, in plain words, and the
/// two-sided p value with how to read it for the hover title.
fn versus_control(stats: &crate::app::campaigns::CampaignStats, i: usize) -> (String, String) {
    let test = i
        .checked_sub(1)
        .map(|j| stats.ab_test.as_ref().and_then(|ab| ab.clicks.against_control.get(j).copied().flatten()));
    in_words(test)
}

/// `None`: the control itself; `Some(None)`: no test could be computed.
fn in_words(test: Option<Option<crate::domain::campaign::ZTest>>) -> (String, String) {
    let Some(test) = test else {
        return ("—".to_owned(), "这是对照组，其他方案都和它比。".to_owned());
    };
    let Some(test) = test else {
        return ("人数不足，无法比较".to_owned(), "收件人或点击为零，检验无从计算。".to_owned());
    };
    let words = match (test.p_value < crate::domain::campaign::ALPHA, test.z > 0.0) {
        (true, true) => "显著优于对照",
        (true, false) => "显著差于对照",
        (false, _) => "与对照无显著差异",
    };
    let title = format!(
        "双比例 z 检验，双侧 p = {:.3}（低于 {} 才算显著：差异不太可能是偶然）",
        test.p_value,
        crate::domain::campaign::ALPHA
    );
    (words.to_owned(), title)
}

/// Sends every message of the campaign to the chosen test followers through WeChat's preview,
/// and shows, per follower, whether WeChat took it.
pub async fn preview_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    accounts: web::Data<crate::app::accounts::Accounts>,
    state: web::Data<Arc<AdminState>>,
    id: web::Path<i64>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    let (settings, api) = ctx.for_account(&accounts, user.account);
    let (chosen, typed, openids) = preview::recipients(&pairs);
    let outcome = match campaigns::preview(&pool, api.as_ref(), user.account, id, &openids, &user.username).await {
        Ok(results) => PreviewOutcome {
            openids: typed,
            chosen,
            results: results.into_iter().map(|(openid, error)| PreviewResult { openid, error }).collect(),
            error: None,
        },
        Err(error) => match scoped_problem(&user, &pool, id, error).await {
            Problem::Say(message) => {
                PreviewOutcome { openids: typed, chosen, results: Vec::new(), error: Some(message) }
            }
            Problem::Fail(error) => return Err(error),
        },
    };
    detail_page(&user, &pool, &settings, &state, id, Some(outcome)).await
}

#[cfg(test)]
mod tests {
    use super::in_words;
    use crate::domain::campaign::two_proportion_z;

    #[test]
    fn a_b_results_read_in_words_with_the_p_value_for_the_hover() {
        let better = two_proportion_z((60, 400), (30, 400));
        let (words, title) = in_words(Some(better));
        assert_eq!(words, "显著优于对照");
        assert!(title.contains("p = 0.00"), "{title}");
        assert_eq!(in_words(Some(two_proportion_z((30, 400), (60, 400)))).0, "显著差于对照");
        assert_eq!(in_words(Some(two_proportion_z((31, 400), (30, 400)))).0, "与对照无显著差异");
        assert_eq!(in_words(Some(None)).0, "人数不足，无法比较");
        assert_eq!(in_words(None).0, "—");
    }
}
