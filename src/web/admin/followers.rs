//! 粉丝: follower lookup by openid prefix, or the members of a tag or a saved segment with their
//! total (from the in-memory audience index, SQL when it cannot answer); those members as CSV for
//! admins and approvers (audited, streamed); one follower's tags, quiz answers and timeline
//! (keyset-paged), the same person in the deployment's other accounts (by unionid, read-only),
//! and erasure on request (PIPL). All within the account the user works on.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::pages::{PAGE, audit, show_time};
use super::{AdminError, AdminState, AdminUser, CsrfForm, Layout, render, see_other};
use crate::app::accounts::Accounts;
use crate::app::audience::index::AudienceIndex;
use crate::app::tagging;
use crate::domain::clock::Clock;
use crate::domain::expr::Expr;
use crate::domain::tag::TagPath;
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
    /// The tag or segment filter's choices and what is chosen.
    tag: String,
    segment: Option<i64>,
    tag_groups: Vec<super::pages::TagGroup>,
    segments: Vec<super::pages::Choice>,
    /// What the list shows, in words, with its total.
    filter: Option<FilterSummary>,
    /// The next page of a tag or segment filter.
    next_page: Option<u64>,
    may_export: bool,
    error: Option<String>,
}

/// A tag or segment filter's heading.
pub struct FilterSummary {
    pub label: String,
    pub total: u64,
    /// The query string naming the filter (for the next page and the export link).
    pub query: String,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    segment: Option<String>,
    #[serde(default)]
    page: Option<u64>,
}

fn view(f: store::followers::FollowerRow) -> FollowerView {
    FollowerView {
        openid: f.openid,
        subscribed: f.subscribed,
        subscribed_at: f.subscribed_at.map_or_else(|| "—".to_owned(), show_time),
        last_seen: show_time(f.last_seen_at),
    }
}

/// The audience a filter names: a tag's path or a saved segment's expression.
struct Audience {
    label: String,
    expr: Expr,
    query: String,
    /// What the audit log records as the object.
    kind: &'static str,
    id: String,
}

/// The filter the query names, if any; an error sentence for one that names nothing.
async fn audience_of(
    pool: &Pool,
    user: &AdminUser,
    tag: &str,
    segment: Option<i64>,
) -> Result<Result<Option<Audience>, String>, AdminError> {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    if let Some(id) = segment {
        let client = pool.get().await?;
        let Some(row) = store::segments::get_segment(&client, user.account, id).await? else {
            return Ok(Err(format!("没有编号为 {id} 的人群，可能已被删除。")));
        };
        let Ok(expr) = crate::domain::expr::parse(&row.expr) else {
            return Ok(Err(format!("人群「{}」的表达式已无法解析，请在「人群」页重新保存。", row.name)));
        };
        return Ok(Ok(Some(Audience {
            label: format!("人群「{}」", row.name),
            expr,
            query: format!("segment={id}"),
            kind: "segment",
            id: id.to_string(),
        })));
    }
    if tag.is_empty() {
        return Ok(Ok(None));
    }
    let Ok(path) = TagPath::parse(tag) else {
        return Ok(Err(format!("「{tag}」不是有效的标签路径。")));
    };
    let client = pool.get().await?;
    if store::tags::get_tag_by_path(&client, user.account, &path).await?.is_none() {
        let known: Vec<String> =
            store::tags::list_tag_rows(&client, user.account).await?.into_iter().map(|t| t.path).collect();
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        return Ok(Err(match crate::domain::expr::nearest(path.as_str(), &known) {
            Some(near) => format!("没有标签「{tag}」，是不是「{near}」？"),
            None => format!("没有标签「{tag}」。"),
        }));
    }
    Ok(Ok(Some(Audience {
        label: format!("标签「{}」", path.as_str()),
        query: format!("tag={}", encode(path.as_str())),
        kind: "tag",
        id: path.as_str().to_owned(),
        expr: Expr::Tag(path),
    })))
}

/// One page of an audience's members and their total: the index answers in memory; SQL pages
/// by openid when it cannot (bounded by the page asked for).
async fn members_page(
    pool: &Pool,
    index: &AudienceIndex,
    user: &AdminUser,
    expr: &Expr,
    now: i64,
    page: u64,
) -> Result<(u64, Vec<String>), AdminError> {
    let limit = PAGE as usize;
    if let Some(found) = index.members_page(user.account, expr, now, page * PAGE as u64, limit).await {
        return Ok(found);
    }
    let total =
        crate::app::audience::count_members(pool, index, user.account, expr, now).await.map_err(|e| match e {
            crate::app::audience::AudienceError::Pool(e) => AdminError::Pool(e),
            crate::app::audience::AudienceError::Query(e) => AdminError::Query(e),
        })?;
    let client = pool.get().await?;
    let mut after = String::new();
    let mut openids = Vec::new();
    for _ in 0..=page {
        openids = store::segments::list_members(&client, user.account, expr, now, &after, PAGE).await?;
        match openids.last() {
            Some(last) => after = last.clone(),
            None => break,
        }
    }
    Ok((u64::try_from(total).unwrap_or(0), openids))
}

pub async fn search_followers(
    user: AdminUser,
    pool: web::Data<Pool>,
    index: web::Data<AudienceIndex>,
    clock: web::Data<Clock>,
    state: web::Data<Arc<AdminState>>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, AdminError> {
    let query = query.into_inner();
    let segment = query.segment.as_deref().filter(|s| !s.is_empty()).and_then(|s| s.parse::<i64>().ok());
    let tag = query.tag.trim().to_owned();
    let mut page = SearchPage {
        layout: user.layout("followers"),
        q: query.q.trim().to_owned(),
        followers: Vec::new(),
        next: None,
        tag: tag.clone(),
        segment,
        tag_groups: Vec::new(),
        segments: Vec::new(),
        filter: None,
        next_page: None,
        may_export: user.role.may_approve(),
        error: None,
    };
    let mut status = StatusCode::OK;
    match audience_of(&pool, &user, &tag, segment).await? {
        Err(problem) => {
            page.error = Some(problem);
            status = StatusCode::UNPROCESSABLE_ENTITY;
        }
        Ok(Some(audience)) => {
            let number = query.page.unwrap_or(0);
            let (total, openids) = members_page(&pool, &index, &user, &audience.expr, clock.unix(), number).await?;
            let client = pool.get().await?;
            page.followers = store::followers::list_followers_by_openids(&client, user.account, &openids)
                .await?
                .into_iter()
                .map(view)
                .collect();
            page.next_page = ((number + 1) * (PAGE as u64) < total).then_some(number + 1);
            page.filter = Some(FilterSummary { label: audience.label, total, query: audience.query });
        }
        Ok(None) => {
            let client = pool.get().await?;
            let rows = store::board::search_followers(&client, user.account, &page.q, &query.after, PAGE).await?;
            page.next = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.openid.clone())).flatten();
            page.followers = rows.into_iter().map(view).collect();
        }
    }
    fill_choices(&mut page, &pool, &user, &state).await?;
    render(&page).map(|mut r| {
        *r.status_mut() = status;
        r
    })
}

/// The filter form's tag tree and saved segments.
async fn fill_choices(
    page: &mut SearchPage,
    pool: &Pool,
    user: &AdminUser,
    state: &AdminState,
) -> Result<(), AdminError> {
    page.tag_groups = super::pages::tag_groups(super::pages::tag_options(pool, user.account, state).await?);
    let client = pool.get().await?;
    page.segments = store::segments::list_segments(&client, user.account, None, 200)
        .await?
        .into_iter()
        .map(|s| super::pages::Choice { selected: page.segment == Some(s.id), value: s.id.to_string(), label: s.name })
        .collect();
    Ok(())
}

#[derive(Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    tag: String,
    #[serde(default)]
    segment: Option<i64>,
}

/// The openids of a tag's or a segment's subscribed members as CSV, streamed in chunks. Admins
/// and approvers only: a list of openids is personal data leaving the console, so each export is
/// audited with its size. Operators are told why and who to ask.
pub async fn export_followers(
    user: AdminUser,
    pool: web::Data<Pool>,
    index: web::Data<AudienceIndex>,
    clock: web::Data<Clock>,
    state: web::Data<Arc<AdminState>>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, AdminError> {
    let tag = query.tag.trim().to_owned();
    let refusal = if user.role.may_approve() {
        None
    } else {
        Some((
            format!(
                "只有管理员和审批人可以导出粉丝名单：导出的 openid 属于个人信息，会离开后台并记入审计。你的角色是「{}」，如需导出请联系管理员或审批人。",
                user.role.label_zh()
            ),
            StatusCode::FORBIDDEN,
        ))
    };
    let audience = match (refusal, audience_of(&pool, &user, &tag, query.segment).await?) {
        (Some(refusal), _) => Err(refusal),
        (None, Err(problem)) => Err((problem, StatusCode::UNPROCESSABLE_ENTITY)),
        (None, Ok(None)) => Err(("请选择要导出的标签或人群。".to_owned(), StatusCode::UNPROCESSABLE_ENTITY)),
        (None, Ok(Some(audience))) => Ok(audience),
    };
    let audience = match audience {
        Ok(audience) => audience,
        Err((message, status)) => {
            let mut page = SearchPage {
                layout: user.layout("followers"),
                q: String::new(),
                followers: Vec::new(),
                next: None,
                tag,
                segment: query.segment,
                tag_groups: Vec::new(),
                segments: Vec::new(),
                filter: None,
                next_page: None,
                may_export: user.role.may_approve(),
                error: Some(message),
            };
            fill_choices(&mut page, &pool, &user, &state).await?;
            return render(&page).map(|mut r| {
                *r.status_mut() = status;
                r
            });
        }
    };
    let now = clock.unix();
    let openids = match index.members(user.account, &audience.expr, now).await {
        Some(openids) => openids,
        None => {
            let mut client = pool.get().await?;
            let txn = client.transaction().await?;
            let openids = store::segments::list_all_members(&txn, user.account, &audience.expr, now).await?;
            txn.commit().await?;
            openids
        }
    };
    audit(
        &pool,
        &user,
        "export",
        audience.kind,
        &audience.id,
        serde_json::json!({ "followers": openids.len(), "format": "csv" }),
    )
    .await?;
    tracing::info!(admin.username = %user.username, followers = openids.len(), "followers exported as CSV");
    let filename = format!("{}-{}.csv", audience.kind, chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{filename}\"")))
        .streaming(csv_chunks(openids)))
}

/// `openid` then one openid per line, a few thousand lines per chunk, so a million members
/// never sit in the response buffer as one string.
fn csv_chunks(openids: Vec<String>) -> impl futures_util::Stream<Item = Result<web::Bytes, AdminError>> {
    const LINES: usize = 5_000;
    let header = futures_util::stream::once(async { Ok(web::Bytes::from_static(b"openid\n")) });
    let mut rest = openids.into_iter().peekable();
    let body = futures_util::stream::iter(std::iter::from_fn(move || {
        rest.peek()?;
        let mut chunk = String::with_capacity(LINES * 30);
        for openid in rest.by_ref().take(LINES) {
            push_csv_cell(&mut chunk, &openid);
            chunk.push('\n');
        }
        Some(Ok(web::Bytes::from(chunk)))
    }));
    futures_util::StreamExt::chain(header, body)
}

/// One CSV cell: quoted when it holds a quote, comma or line break (RFC 4180), and led by `'` when
/// a spreadsheet would read it as a formula. Real openids need neither; a forged push's may.
fn push_csv_cell(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = formula || value.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    out.push_str(&value.replace('"', "\"\""));
    if quoted {
        out.push('"');
    }
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

#[cfg(test)]
mod csv_tests {
    use super::push_csv_cell;

    #[test]
    fn cells_a_spreadsheet_would_run_or_split_are_defused() {
        let cell = |v: &str| {
            let mut out = String::new();
            push_csv_cell(&mut out, v);
            out
        };
        assert_eq!(cell("oABC-123_x"), "oABC-123_x");
        assert_eq!(cell("=HYPERLINK(\"http://x\",\"y\")"), "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
        assert_eq!(cell("+1"), "\"'+1\"");
        assert_eq!(cell("a,b"), "\"a,b\"");
    }
}
