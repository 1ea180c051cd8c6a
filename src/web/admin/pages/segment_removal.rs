//! Deleting a saved segment (人群), after a confirmation; refused while a campaign that has not
//! gone out is addressed to it, since that campaign could then not be sent.

use actix_web::{HttpResponse, web};
use deadpool_postgres::Pool;

use super::audit;
use crate::domain::campaign::Status;
use crate::store;
use crate::store::ownership::Owned;
use crate::web::admin::campaigns::status_label;
use crate::web::admin::confirm::{ConfirmForm, Confirmation, confirm_page};
use crate::web::admin::{AdminError, AdminUser, CsrfForm, see_other};

pub async fn delete_segment(
    user: AdminUser,
    pool: web::Data<Pool>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    let client = pool.get().await?;
    let Some(segment) = store::segments::get_segment(&client, user.account, id).await? else {
        drop(client);
        return Err(user.missing(&pool, Owned::Segment, &id.to_string()).await);
    };
    let campaigns = store::campaigns::list_campaigns_using_segment(&client, user.account, id).await?;
    let (waiting, past): (Vec<_>, Vec<_>) =
        campaigns.iter().partition(|(_, _, status)| Status::parse(status).is_some_and(Status::may_cancel));
    if !waiting.is_empty() {
        let named: Vec<String> = waiting
            .iter()
            .map(|(cid, name, status)| format!("「{name}」（#{cid}，{}）", status_label(status)))
            .collect();
        user.flash(format!(
            "未删除人群「{}」：群发 {} 还要发给它。请先删除、取消或改选受众后再删除。",
            segment.name,
            named.join("、")
        ));
        return Ok(see_other("/admin/segments"));
    }
    if !form.confirmed() {
        let mut consequences = vec![
            format!("人群「{}」（#{id}）会被删除，无法恢复。条件：{}", segment.name, segment.expr),
            "粉丝和标签不受影响：人群只是保存下来的筛选条件。".to_owned(),
        ];
        if !past.is_empty() {
            consequences.push(format!("已发出的 {} 个群发的受众之后显示为「人群 #{id}」。", past.len()));
        }
        return confirm_page(
            &user,
            "segments",
            Confirmation::delete(
                format!("删除人群「{}」？", segment.name),
                consequences,
                format!("/admin/segments/{id}/delete"),
                "/admin/segments".to_owned(),
            ),
        );
    }
    if !store::segments::delete_segment(&client, user.account, id).await? {
        drop(client);
        return Err(user.missing(&pool, Owned::Segment, &id.to_string()).await);
    }
    drop(client);
    audit(
        &pool,
        &user,
        "delete",
        "segment",
        &id.to_string(),
        serde_json::json!({ "name": segment.name, "expr": segment.expr }),
    )
    .await?;
    user.flash(format!("已删除人群「{}」。", segment.name));
    Ok(see_other("/admin/segments"))
}
