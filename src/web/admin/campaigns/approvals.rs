//! 审批队列: campaigns waiting for approval, longest waiting first; approve or 驳回.

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::{Problem, audience_text, lapse_text, message_text, problem, scoped_problem};
use crate::app::audience::index::AudienceIndex;
use crate::app::campaigns::approval;
use crate::app::campaigns::{self, CampaignError};
use crate::domain::approval::Change;
use crate::domain::campaign::{Message, Status};
use crate::domain::clock::Clock;
use crate::store;
use crate::web::admin::pages::show_time;
use crate::web::admin::{AdminError, AdminUser, CsrfForm, Layout, render, see_other};

pub struct QueueRow {
    pub id: i64,
    /// Back in the queue because its approval lapsed: why.
    pub lapsed: Option<String>,
    /// Of what the row shows, sent with the approval.
    pub fingerprint: String,
    pub name: String,
    pub audience: String,
    /// Subscribed followers the audience reaches now, as the approver lets it out.
    pub reach: String,
    pub sensitive: Vec<String>,
    pub message: String,
    pub created: String,
    pub created_by: String,
    pub own: bool,
}

/// Campaigns shown at once, longest waiting first: each counts its audience now, so the page stays
/// within its time budget however long the queue grows (the nav badge says how many wait in all).
const SHOWN: i64 = 20;

#[derive(Template)]
#[template(path = "admin/campaigns/approvals.html")]
struct QueuePage {
    layout: Layout,
    rows: Vec<QueueRow>,
    may_approve: bool,
    /// Waiting beyond those shown.
    more: i64,
}

pub async fn list_approvals(
    user: AdminUser,
    pool: web::Data<Pool>,
    index: web::Data<AudienceIndex>,
    clock: web::Data<Clock>,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let waiting =
        store::campaigns::list_campaigns_in_status(&client, user.account, Status::PendingApproval.as_str(), SHOWN)
            .await?;
    let more = (user.pending_approvals - waiting.len() as i64).max(0);
    let mut rows = Vec::with_capacity(waiting.len());
    for row in waiting {
        let (sensitive, fingerprint) = match approval::covered(&client, &row).await {
            Ok(covered) => (covered.sensitive().into_iter().map(str::to_owned).collect(), covered.fingerprint()),
            Err(error) => match problem(error) {
                Problem::Say(message) => (vec![message], String::new()),
                Problem::Fail(error) => return Err(error),
            },
        };
        let audience = campaigns::audience_of(&row).map_or_else(|_| "？".to_owned(), |a| audience_text(&a, None));
        let message = serde_json::from_value::<Message>(row.message.clone())
            .map_or_else(|_| String::new(), |m| message_text(&m).1);
        let reach = match campaigns::audience_size(&pool, &index, &row, clock.unix()).await {
            Ok(Some(n)) => format!("{n} 人"),
            Ok(None) => "受众已不存在".to_owned(),
            Err(error) => match problem(error) {
                Problem::Say(message) => message,
                Problem::Fail(error) => return Err(error),
            },
        };
        let lapsed = stored_lapse(&store::approvals::get_review(&client, row.id).await?);
        rows.push(QueueRow {
            lapsed,
            fingerprint,
            id: row.id,
            own: row.created_by == user.username,
            name: row.name,
            audience,
            reach,
            sensitive,
            message,
            created: show_time(row.created_at),
            created_by: row.created_by,
        });
    }
    render(&QueuePage { layout: user.layout("campaigns"), rows, may_approve: user.role.may_approve(), more })
}

#[derive(Deserialize)]
pub struct ApproveForm {
    /// `queue` to come back to the approval queue, else the campaign's page.
    #[serde(default)]
    back: String,
    /// The fingerprint of what the page showed: an approval is for what the approver saw.
    #[serde(default)]
    shown: Option<String>,
}

pub async fn approve_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ApproveForm>,
) -> Result<HttpResponse, AdminError> {
    user.require(user.role.may_approve())?;
    let id = id.into_inner();
    let done = approval::approve(&pool, user.account, id, &user.username, form.shown.as_deref()).await;
    let said = done.map(|row| format!("已审批群发「{}」。创建人或你现在可以发送。", row.name));
    after_review(&user, &pool, said, &form.back, id).await
}

/// Says how an approval or a rejection went, then goes back where the reviewer came from.
async fn after_review(
    user: &AdminUser,
    pool: &Pool,
    done: Result<String, CampaignError>,
    back: &str,
    id: i64,
) -> Result<HttpResponse, AdminError> {
    match done {
        Ok(message) => user.flash(message),
        Err(error) => match scoped_problem(user, pool, id, error).await {
            Problem::Say(message) => user.flash(message),
            Problem::Fail(error) => return Err(error),
        },
    }
    Ok(see_other(&if back == "queue" {
        "/admin/campaigns/approvals".to_owned()
    } else {
        format!("/admin/campaigns/{id}")
    }))
}

/// Why a campaign's approval lapsed, as recorded when it did.
pub(super) fn stored_lapse(review: &store::approvals::Review) -> Option<String> {
    review.lapsed_at.map(|at| {
        let changes: Vec<Change> =
            review.lapse.clone().and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default();
        format!("{}（{}）", lapse_text(&changes), show_time(at))
    })
}

#[derive(Deserialize)]
pub struct RejectForm {
    #[serde(default)]
    reason: String,
    /// `queue` to come back to the approval queue, else the campaign's page.
    #[serde(default)]
    back: String,
}

/// 驳回: the campaign goes back to its creator as a draft, with the reason on its page.
pub async fn reject_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<RejectForm>,
) -> Result<HttpResponse, AdminError> {
    user.require(user.role.may_approve())?;
    let id = id.into_inner();
    let done = approval::reject(&pool, user.account, id, &user.username, &form.reason).await;
    after_review(
        &user,
        &pool,
        done.map(|row| format!("已驳回群发「{}」，创建人会在群发页面看到原因。", row.name)),
        &form.back,
        id,
    )
    .await
}
