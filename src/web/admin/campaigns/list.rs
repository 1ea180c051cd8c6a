//! 群发列表: campaigns newest first, with their audience, status and WeChat's counts.

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::{GenericClient, Pool};
use serde::Deserialize;

use super::{QUEUE, audience_text, filtered_out, status_label};
use crate::app::campaigns;
use crate::domain::campaign::Status;
use crate::store;
use crate::store::campaigns::CampaignRow;
use crate::web::admin::pages::{PAGE, show_time};
use crate::web::admin::{AdminError, AdminUser, Layout, render};

pub struct CampaignListRow {
    pub id: i64,
    pub name: String,
    pub audience: String,
    pub status: &'static str,
    pub status_code: String,
    pub created: String,
    pub created_by: String,
    /// (total, filtered out, sent, failed) once WeChat reported.
    pub counts: Option<(i64, i64, i64, i64)>,
}

#[derive(Template)]
#[template(path = "admin/campaigns/index.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<CampaignListRow>,
    waiting: usize,
    next: Option<i64>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    before: Option<i64>,
}

async fn list_rows(client: &impl GenericClient, rows: Vec<CampaignRow>) -> Result<Vec<CampaignListRow>, AdminError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let counts = store::campaigns::list_counts(client, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let audience = campaigns::audience_of(&r).map_or_else(|_| "？".to_owned(), |a| audience_text(&a, None));
            CampaignListRow {
                counts: counts.iter().find(|c| c.0 == r.id).map(|c| (c.1, filtered_out(c.1, c.2), c.3, c.4)),
                id: r.id,
                name: r.name,
                audience,
                status: status_label(&r.status),
                status_code: r.status,
                created: show_time(r.created_at),
                created_by: r.created_by,
            }
        })
        .collect())
}

pub async fn list_campaigns(
    user: AdminUser,
    pool: web::Data<Pool>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let rows = store::campaigns::list_campaigns(&client, user.account, query.before, PAGE).await?;
    let next = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.id)).flatten();
    let waiting =
        store::campaigns::list_campaigns_in_status(&client, user.account, Status::PendingApproval.as_str(), QUEUE)
            .await?
            .len();
    let rows = list_rows(&client, rows).await?;
    render(&ListPage { layout: user.layout("campaigns"), rows, waiting, next })
}
