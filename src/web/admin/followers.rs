//! 粉丝: follower lookup by openid prefix, one follower's tags, quiz answers and timeline
//! (keyset-paged), the same person in the deployment's other accounts (by unionid, read-only),
//! and erasure on request (PIPL). All within the account the user works on.

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::pages::{PAGE, audit, show_time};
use super::{AdminError, AdminUser, CsrfForm, Layout, render, see_other};
use crate::app::accounts::Accounts;
use crate::app::tagging;
use crate::store;
use crate::store::ownership::Owned;

pub struct FollowerView {
    pub openid: String,
    pub subscribed: bool,
    pub subscribed_at: String,
    pub last_seen: String,
}

#[derive(Template)]
#[template(path = "admin/followers/index.html")]
struct SearchPage {
    layout: Layout,
    q: String,
    followers: Vec<FollowerView>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

fn view(f: store::followers::FollowerRow) -> FollowerView {
    FollowerView {
        openid: f.openid,
        subscribed: f.subscribed,
        subscribed_at: f.subscribed_at.map_or_else(|| "—".to_owned(), show_time),
        last_seen: show_time(f.last_seen_at),
    }
}

pub async fn search_followers(
    user: AdminUser,
    pool: web::Data<Pool>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, AdminError> {
    let q = query.q.trim().to_owned();
    let client = pool.get().await?;
    let rows = store::board::search_followers(&client, user.account, &q, &query.after, PAGE).await?;
    let next = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.openid.clone())).flatten();
    let followers = rows.into_iter().map(view).collect();
    render(&SearchPage { layout: user.layout("followers"), q, followers, next })
}

pub struct EventView {
    pub at: String,
    pub kind: String,
    pub key: String,
    pub content: String,
}

pub struct AnswerView {
    pub quiz: String,
    pub tags: String,
    pub at: String,
}

/// The same person as a follower of another account.
pub struct ElsewhereView {
    pub account: String,
    pub subscribed: bool,
    pub tags: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/followers/show.html")]
struct FollowerPage {
    layout: Layout,
    follower: FollowerView,
    scene: String,
    unionid: Option<String>,
    elsewhere: Vec<ElsewhereView>,
    tags: Vec<String>,
    answers: Vec<AnswerView>,
    events: Vec<EventView>,
    next: Option<i64>,
    /// On the 测试粉丝 list, which admins keep from here.
    tester: bool,
    may_mark_tester: bool,
}

#[derive(Deserialize)]
pub struct TimelineQuery {
    #[serde(default)]
    before: Option<i64>,
}

pub(super) fn kind_label(kind: &str) -> &str {
    match kind {
        "text" => "发消息",
        "subscribe" => "关注",
        "unsubscribe" => "取消关注",
        "click" => "点击菜单",
        "view" => "打开链接",
        "scan" => "扫码",
        "location" | "location_report" => "位置",
        "image" => "发图片",
        "voice" => "发语音",
        other => other,
    }
}

pub async fn show_follower(
    user: AdminUser,
    pool: web::Data<Pool>,
    accounts: web::Data<Accounts>,
    openid: web::Path<String>,
    query: web::Query<TimelineQuery>,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let Some(follower) = store::followers::get_follower(&client, user.account, &openid).await? else {
        drop(client);
        return Err(user.missing(&pool, Owned::Follower, &openid).await);
    };
    let tags = store::tags::list_follower_tag_paths(&client, user.account, &[openid.as_str()])
        .await?
        .remove(openid.as_str())
        .unwrap_or_default();
    let elsewhere = match &follower.unionid {
        Some(unionid) => store::followers::list_same_person_elsewhere(&client, user.account, unionid).await?,
        None => Vec::new(),
    };
    let elsewhere = elsewhere
        .into_iter()
        // Only accounts the user holds: another account's followers are that account's objects.
        .filter(|e| user.holds.iter().any(|(held, _)| held.id == e.account))
        .filter_map(|e| {
            let account = accounts.get(e.account)?;
            Some(ElsewhereView { account: account.display_name.clone(), subscribed: e.subscribed, tags: e.tags })
        })
        .collect();
    let answers = store::board::list_quiz_answers(&client, user.account, &openid)
        .await?
        .into_iter()
        .map(|a| AnswerView { quiz: a.quiz_id, tags: a.tags.join("、"), at: show_time(a.finished_at) })
        .collect();
    let rows = store::board::list_follower_events(&client, user.account, &openid, query.before, PAGE).await?;
    let next = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.id)).flatten();
    let events = rows
        .into_iter()
        .map(|e| EventView {
            at: show_time(e.occurred_at),
            kind: kind_label(&e.kind).to_owned(),
            key: e.event_key.unwrap_or_default(),
            content: e.content.unwrap_or_default(),
        })
        .collect();
    let tester = store::test_followers::is_tester(&client, user.account, &openid).await?;
    let scene = follower.subscribe_scene.clone().unwrap_or_default();
    let unionid = follower.unionid.clone();
    render(&FollowerPage {
        layout: user.layout("followers"),
        follower: view(follower),
        scene,
        unionid,
        elsewhere,
        tags,
        answers,
        events,
        next,
        tester,
        may_mark_tester: user.role.may_manage_admins(),
    })
}

#[derive(Deserialize)]
pub struct EraseForm {
    #[serde(default)]
    confirm_openid: String,
}

/// Erases every row about the follower once the operator typed the openid again.
pub async fn erase_follower(
    user: AdminUser,
    pool: web::Data<Pool>,
    openid: web::Path<String>,
    CsrfForm(form): CsrfForm<EraseForm>,
) -> Result<HttpResponse, AdminError> {
    let openid = openid.into_inner();
    let back =
        format!("/admin/followers/{}", url::form_urlencoded::byte_serialize(openid.as_bytes()).collect::<String>());
    if form.confirm_openid.trim() != openid {
        user.flash("未删除：请在确认框中输入完整的 openid。");
        return Ok(see_other(&back));
    }
    let erased = tagging::erase_follower(&pool, user.account, &openid).await.map_err(|error| match error {
        tagging::TaggingError::Pool(e) => AdminError::Pool(e),
        tagging::TaggingError::Query(e) => AdminError::Query(e),
        _ => AdminError::Internal,
    })?;
    if !erased {
        return Err(user.missing(&pool, Owned::Follower, &openid).await);
    }
    audit(&pool, &user, "erase", "follower", &openid, serde_json::json!({})).await?;
    tracing::info!(user.openid = %openid, by = %user.username, "follower erased from the admin page");
    user.flash(format!("已删除粉丝 {openid} 的全部数据，微信上的标签稍后移除。"));
    Ok(see_other("/admin/followers"))
}
