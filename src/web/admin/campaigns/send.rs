//! 发送、取消: asking to send a campaign (after a confirmation page naming how many followers it
//! reaches: the first post only shows it, the page's button posts again with `confirmed=1`), and
//! cancelling it.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::reach::ReachView;
use super::{Problem, scoped_problem, status_label};
use crate::app::campaigns::{self, CampaignError};
use crate::domain::campaign::Status;
use crate::store;
use crate::web::admin::pages::show_time;
use crate::web::admin::{AdminError, AdminState, AdminUser, CsrfForm, Layout, render, see_other};
use crate::web::api::CampaignContext;

#[derive(Deserialize)]
pub struct SendForm {
    /// The status the page showed when the button was pressed: the send's idempotency key. A
    /// second press (or a reload that posts again) finds the campaign already on its way and
    /// is told so instead of being refused.
    #[serde(default)]
    shown_status: String,
    /// `1` from the confirmation page's button: without it a send only shows whom it reaches.
    #[serde(default)]
    confirmed: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/campaigns/confirm_send.html")]
struct ConfirmPage {
    layout: Layout,
    id: i64,
    name: String,
    status_code: String,
    /// "将发送给 N 位粉丝（…）" with the schedule when there is one.
    question: String,
    reach: Option<ReachView>,
}

/// What the send button would do, before it does it: a page naming how many followers the send
/// reaches, with the button that really sends. `None`: nothing to confirm (it would only queue
/// the campaign for approval, or it cannot be sent and the refusal says so).
async fn confirmation(
    user: &AdminUser,
    pool: &Pool,
    settings: &campaigns::CampaignSettings,
    id: i64,
) -> Result<Option<HttpResponse>, AdminError> {
    let client = pool.get().await?;
    let Some(row) = store::campaigns::get_campaign(&client, user.account, id).await? else { return Ok(None) };
    if !Status::parse(&row.status).is_some_and(Status::may_send) {
        return Ok(None);
    }
    let needs_approval = match campaigns::approval::standing(&client, &row).await {
        Ok(standing) => standing.needs_approval(),
        Err(_) => return Ok(None),
    };
    if needs_approval {
        return Ok(None);
    }
    let names: Vec<String> =
        store::campaigns::list_variants(&client, id).await?.into_iter().map(|(_, name, _)| name).collect();
    drop(client);
    let reach = match campaigns::reach_of_campaign(pool, settings, &row).await {
        Ok(reach) => reach,
        Err(_) => return Ok(None),
    };
    let headline = super::reach::headline(&reach);
    let sentence = match row.send_at.filter(|at| *at > settings.clock.now()) {
        Some(at) => headline.replacen("将发送给", &format!("将在 {} 定时发送给", show_time(at)), 1),
        None => format!("现在{headline}"),
    };
    let question = format!("{sentence}。确认发送吗？发出后无法撤回。");
    let page = ConfirmPage {
        layout: user.layout("campaigns"),
        id,
        name: row.name,
        status_code: row.status,
        question,
        reach: Some(ReachView::new(&reach, &names)),
    };
    Ok(Some(render(&page)?))
}

pub async fn send_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    accounts: web::Data<crate::app::accounts::Accounts>,
    state: web::Data<Arc<AdminState>>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<SendForm>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    let (settings, _) = ctx.for_account(&accounts, user.account);
    if form.confirmed.as_deref() != Some("1")
        && let Some(page) = confirmation(&user, &pool, &settings, id).await?
    {
        return Ok(page);
    }
    match campaigns::request_send(&pool, &settings, id, &user.username).await {
        Ok(accepted) => {
            state.strategies.forget(user.account);
            let filtered = if accepted.will_be_filtered > 0 {
                format!("其中 {} 位本月已收满 4 条群发，微信会过滤掉。", accepted.will_be_filtered)
            } else {
                String::new()
            };
            user.flash(match accepted.send_at.filter(|_| accepted.status == Status::Scheduled.as_str()) {
                Some(at) => format!("已定时在 {} 发送给 {} 位粉丝。{filtered}", show_time(at), accepted.recipients),
                None => {
                    format!("已开始发送给 {} 位粉丝。{filtered}微信处理完成后这里会显示送达人数。", accepted.recipients)
                }
            });
        }
        Err(CampaignError::WrongStatus { status, .. })
            if Status::parse(&form.shown_status).is_some_and(Status::may_send)
                && Status::parse(&status).is_some_and(|s| !s.may_send() && s != Status::Cancelled) =>
        {
            user.flash(format!("该群发已提交（当前：{}），没有重复发送。", status_label(&status)));
        }
        Err(error) => match scoped_problem(&user, &pool, id, error).await {
            Problem::Say(message) => user.flash(message),
            Problem::Fail(error) => return Err(error),
        },
    }
    Ok(see_other(&format!("/admin/campaigns/{id}")))
}

#[derive(Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    confirm: Option<String>,
}

pub async fn cancel_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<CancelForm>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    if form.confirm.is_none() {
        user.flash("未取消：请勾选「确认」后再点取消。");
        return Ok(see_other(&format!("/admin/campaigns/{id}")));
    }
    match campaigns::cancel(&pool, user.account, id, &user.username).await {
        Ok(row) => user.flash(format!("已取消群发「{}」：尚未发出的部分不会再发送。", row.name)),
        Err(error) => match scoped_problem(&user, &pool, id, error).await {
            Problem::Say(message) => user.flash(message),
            Problem::Fail(error) => return Err(error),
        },
    }
    Ok(see_other(&format!("/admin/campaigns/{id}")))
}
