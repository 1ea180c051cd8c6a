//! 测试粉丝: the followers an admin keeps as preview recipients. Campaign previews offer them
//! (and the simulator's followers) as choices, so nobody types an openid WeChat would refuse.

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::{audit, refused, show_time};
use crate::store;
use crate::web::admin::{AdminError, AdminUser, CsrfForm, Layout, render, see_other};

/// The longest note, as the table's check allows.
const MAX_NOTE_CHARS: usize = 40;

pub struct TesterView {
    pub openid: String,
    pub note: String,
    pub subscribed: bool,
    pub added: String,
    pub added_by: String,
}

#[derive(Template)]
#[template(path = "admin/testers/index.html")]
struct TestersPage {
    layout: Layout,
    may_edit: bool,
    testers: Vec<TesterView>,
    openid: String,
    note: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct TesterForm {
    #[serde(default)]
    openid: String,
    #[serde(default)]
    note: String,
    /// `follower`: go back to the follower's page (marked from there); otherwise to this list.
    #[serde(default)]
    back: String,
}

async fn testers_page(
    user: &AdminUser,
    pool: &Pool,
    openid: String,
    note: String,
    error: Option<String>,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let testers = store::test_followers::list_testers(&client, user.account)
        .await?
        .into_iter()
        .map(|t| TesterView {
            openid: t.openid,
            note: t.note,
            subscribed: t.subscribed,
            added: show_time(t.added_at),
            added_by: t.added_by,
        })
        .collect();
    let may_edit = user.role.may_manage_admins();
    render(&TestersPage { layout: user.layout("followers"), may_edit, testers, openid, note, error })
}

pub async fn list_testers(user: AdminUser, pool: web::Data<Pool>) -> Result<HttpResponse, AdminError> {
    testers_page(&user, &pool, String::new(), String::new(), None).await
}

/// Built here from the openid, never taken from the form: no redirect can lead elsewhere.
fn back_to(form: &TesterForm, openid: &str) -> String {
    if form.back == "follower" {
        format!("/admin/followers/{}", url::form_urlencoded::byte_serialize(openid.as_bytes()).collect::<String>())
    } else {
        "/admin/testers".to_owned()
    }
}

/// Marks a follower of the account as a tester (admins only).
pub async fn add_tester(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(form): CsrfForm<TesterForm>,
) -> Result<HttpResponse, AdminError> {
    user.require(user.role.may_manage_admins())?;
    let openid = form.openid.trim().to_owned();
    let note = form.note.trim().to_owned();
    let problem = if openid.is_empty() {
        Some("请填写粉丝的 openid（可在「粉丝」页搜索后复制，或在粉丝详情页点「设为测试粉丝」）。".to_owned())
    } else if note.chars().count() > MAX_NOTE_CHARS {
        Some(format!("备注最多 {MAX_NOTE_CHARS} 个字，请缩短。"))
    } else if note.chars().any(char::is_control) {
        Some("备注不能含换行或控制字符。".to_owned())
    } else {
        None
    };
    if let Some(problem) = problem {
        return refused(testers_page(&user, &pool, openid, note, Some(problem)).await);
    }
    let client = pool.get().await?;
    if !store::test_followers::mark_tester(&client, user.account, &openid, &note, &user.username).await? {
        drop(client);
        let problem = format!(
            "本公众号没有 openid 为「{openid}」的粉丝：微信的预览只能发给关注了本公众号的人。请让测试人员先关注，再从「粉丝」页找到他。"
        );
        return refused(testers_page(&user, &pool, openid, note, Some(problem)).await);
    }
    drop(client);
    audit(&pool, &user, "mark_tester", "follower", &openid, serde_json::json!({ "note": note })).await?;
    user.flash(format!("已把 {openid} 设为测试粉丝。"));
    Ok(see_other(&back_to(&form, &openid)))
}

/// Takes a follower off the testers list (admins only); the follower is untouched.
pub async fn remove_tester(
    user: AdminUser,
    pool: web::Data<Pool>,
    openid: web::Path<String>,
    CsrfForm(form): CsrfForm<TesterForm>,
) -> Result<HttpResponse, AdminError> {
    user.require(user.role.may_manage_admins())?;
    let openid = openid.into_inner();
    let client = pool.get().await?;
    let removed = store::test_followers::unmark_tester(&client, user.account, &openid).await?;
    drop(client);
    if removed {
        audit(&pool, &user, "unmark_tester", "follower", &openid, serde_json::json!({})).await?;
        user.flash(format!("已把 {openid} 移出测试粉丝（粉丝本身不受影响）。"));
    } else {
        user.flash(format!("{openid} 不在测试粉丝名单中，无需移除。"));
    }
    Ok(see_other(&back_to(&form, &openid)))
}
