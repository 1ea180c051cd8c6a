//! Deleting a campaign that never went out (草稿, 待审批, 已审批), after a confirmation. Once a
//! send was requested the campaign is history: its delivery records and statistics stay.

use actix_web::{HttpResponse, web};
use deadpool_postgres::Pool;

use super::{Problem, scoped_problem, status_label};
use crate::app::campaigns::{self, CampaignError};
use crate::domain::admin::AdminRole;
use crate::domain::campaign::Status;
use crate::store;
use crate::store::ownership::Owned;
use crate::web::admin::confirm::{ConfirmForm, Confirmation, confirm_page};
use crate::web::admin::{AdminError, AdminUser, CsrfForm, see_other};

/// Why a campaign in `status` cannot be deleted, in the operator's words.
fn kept(name: &str, status: &str) -> String {
    let stop = match Status::parse(status) {
        Some(Status::Scheduled | Status::Sending) => "如需停止，请用「取消群发」。",
        _ => "",
    };
    format!(
        "不能删除群发「{name}」：它当前为「{}」，已经提交发送的群发要保留送达记录和统计，不能删除。{stop}",
        status_label(status)
    )
}

/// An operator deletes only the campaigns they created; admins and approvers, who answer for the
/// account's sends, may delete any that never went out.
fn not_theirs(user: &AdminUser, name: &str, created_by: &str) -> Option<String> {
    (user.role == AdminRole::Operator && created_by != user.username).then(|| {
        format!(
            "不能删除群发「{name}」：它由「{created_by}」创建，运营只能删除自己创建的群发。请联系创建人或管理员删除。"
        )
    })
}

pub async fn delete_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    let back = format!("/admin/campaigns/{id}");
    let client = pool.get().await?;
    let Some(row) = store::campaigns::get_campaign(&client, user.account, id).await? else {
        drop(client);
        return Err(user.missing(&pool, Owned::Campaign, &id.to_string()).await);
    };
    // Checked on both steps: the confirmed post can be sent without ever seeing the page.
    if let Some(refusal) = not_theirs(&user, &row.name, &row.created_by) {
        user.flash(refusal);
        return Ok(see_other(&back));
    }
    if !form.confirmed() {
        if !Status::parse(&row.status).is_some_and(Status::may_delete) {
            user.flash(kept(&row.name, &row.status));
            return Ok(see_other(&back));
        }
        let variants = store::campaigns::list_variants(&client, id).await?.len();
        let mut consequences = vec![
            format!("群发「{}」（{}）会被删除，无法恢复；它还没有发给任何粉丝。", row.name, status_label(&row.status)),
            "它的内容、对比方案、审批和驳回记录一起删除；审计日志里仍留有删除记录。".to_owned(),
        ];
        if variants > 0 {
            consequences.push(format!("包括 {variants} 个对比方案。"));
        }
        return confirm_page(
            &user,
            "campaigns",
            Confirmation::delete(
                format!("删除群发「{}」？", row.name),
                consequences,
                format!("/admin/campaigns/{id}/delete"),
                back,
            ),
        );
    }
    drop(client);
    match campaigns::delete(&pool, user.account, id, &user.username).await {
        Ok(row) => {
            user.flash(format!("已删除群发「{}」。", row.name));
            Ok(see_other("/admin/campaigns"))
        }
        Err(CampaignError::WrongStatus { status, .. }) => {
            let name = store::campaigns::get_campaign(&pool.get().await?, user.account, id)
                .await?
                .map_or_else(|| format!("#{id}"), |r| r.name);
            user.flash(kept(&name, &status));
            Ok(see_other(&back))
        }
        Err(error) => match scoped_problem(&user, &pool, id, error).await {
            Problem::Say(message) => {
                user.flash(message);
                Ok(see_other(&back))
            }
            Problem::Fail(error) => Err(error),
        },
    }
}
