//! 审计: the chosen account's audit log (and the deployment-wide entries for deployment admins),
//! newest first, filtered by actor.

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::audit_words as words;
use super::{PAGE, show_time};
use crate::store;
use crate::web::admin::{AdminError, AdminUser, Layout, render};

pub struct AuditView {
    pub at: String,
    pub actor: String,
    /// A Chinese verb: 创建, 删除, 审批通过 ...
    pub action: String,
    /// 标签, 群发 ...
    pub kind: String,
    pub object: String,
    /// The object's page, while it exists.
    pub link: Option<String>,
    /// Sentences, never JSON (see [`super::audit_words`]).
    pub detail: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/audit/index.html")]
struct AuditPage {
    layout: Layout,
    entries: Vec<AuditView>,
    actor: String,
    next: Option<i64>,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    before: Option<i64>,
}

pub async fn list_audit(
    user: AdminUser,
    pool: web::Data<Pool>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AdminError> {
    let actor = query.actor.as_deref().map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned);
    let filter = store::audit::AuditFilter { before_id: query.before, actor: actor.clone(), ..Default::default() };
    let client = pool.get().await?;
    // Users and accounts belong to no account: their entries are for the deployment admins.
    let rows = store::audit::list(&client, user.account, user.deployment_admin, &filter, PAGE).await?;
    let next = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.id)).flatten();
    let entries = rows
        .into_iter()
        .map(|e| AuditView {
            at: show_time(e.at),
            actor: e.actor,
            action: words::action_label(&e.action, &e.detail),
            kind: words::kind_label(&e.object_kind),
            object: words::object_name(&e.object_kind, &e.object_id, &e.detail),
            link: words::object_link(&e.action, &e.object_kind, &e.object_id),
            detail: words::detail_lines(&e.action, &e.object_kind, &e.detail),
        })
        .collect();
    render(&AuditPage { layout: user.layout("audit"), entries, actor: actor.unwrap_or_default(), next })
}
