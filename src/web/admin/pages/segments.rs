//! 人群: segments written in the expression language or put together in the builder
//! ([`super::segment_builder`]), counted live, and saved. A tag the account lacks is refused
//! with the nearest existing one as a suggestion, since it would count nobody.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::segment_builder::{self, Action, Builder, Built, Group, Row};
use super::tag_picker::{self, TagOption};
use super::{PAGE, audit, show_time};
use crate::app::audience::index::AudienceIndex;
use crate::domain::account::AccountId;
use crate::domain::clock::Clock;
use crate::domain::expr;
use crate::store;
use crate::web::admin::{AdminError, AdminState, AdminUser, CsrfForm, Layout, render, see_other};

/// Where an expression went wrong, split so the page can mark the offending character.
pub struct ExprProblem {
    pub position: usize,
    pub message: String,
    pub before: String,
    pub at: String,
    pub after: String,
}

fn expr_problem(text: &str, error: &expr::ExprError) -> ExprProblem {
    let chars: Vec<char> = text.chars().collect();
    let index = error.position.saturating_sub(1).min(chars.len());
    ExprProblem {
        position: error.position,
        message: error.kind.to_string(),
        before: chars[..index].iter().collect(),
        at: chars.get(index).map_or_else(|| "␣".to_owned(), char::to_string),
        after: chars.get(index + 1..).map(|c| c.iter().collect()).unwrap_or_default(),
    }
}

pub struct SegmentView {
    pub id: i64,
    pub name: String,
    pub expr: String,
    pub created: String,
    pub created_by: String,
}

#[derive(Template)]
#[template(path = "admin/segments/index.html")]
struct SegmentsPage {
    layout: Layout,
    segments: Vec<SegmentView>,
    next: Option<i64>,
    name: String,
    expr: String,
    /// Members, and the expected buyers among them as shown.
    count: Option<(i64, Option<String>)>,
    problem: Option<ExprProblem>,
    error: Option<String>,
    builder: BuilderView,
}

/// The builder's part of the page.
pub struct BuilderView {
    /// 满足任一组 (else 满足全部组).
    pub join_or: bool,
    pub groups: Vec<GroupView>,
    /// Set when the builder wrote the expression shown.
    pub built: bool,
    pub problem: Option<String>,
    /// Why a typed expression could not be shown as groups.
    pub note: Option<String>,
    /// Set when the groups were filled from the typed expression.
    pub loaded: bool,
    pub can_add_group: bool,
    /// The datalist of tags, with member counts.
    pub tags: Vec<TagOption>,
    /// Menu keys the click rules know, for the key field's datalist.
    pub keys: Vec<String>,
}

pub struct GroupView {
    pub g: usize,
    pub group: Group,
    pub rows: Vec<RowView>,
    pub can_add_row: bool,
}

pub struct RowView {
    pub r: usize,
    pub row: Row,
}

/// The page's query: the typed expression, the builder's groups, and paging.
#[derive(Default)]
pub struct SegmentQuery {
    expr: Option<String>,
    name: Option<String>,
    before: Option<i64>,
    builder: Option<Builder>,
    /// One of the builder's add/remove buttons.
    action: Option<Action>,
    /// The builder was submitted (compose its groups into the expression).
    build: bool,
}

impl SegmentQuery {
    fn from_request(req: &HttpRequest) -> Result<Self, AdminError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(req.query_string()).map_err(|_| AdminError::BadRequest)?;
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let action = Action::from_pairs(&pairs);
        Ok(Self {
            expr: get("expr"),
            name: get("name"),
            before: get("before").and_then(|b| b.parse().ok()),
            builder: Builder::from_pairs(&pairs),
            action,
            build: get("build").is_some() || action.is_some(),
        })
    }
}

/// The builder as the page shows it.
struct BuilderState {
    builder: Builder,
    built: bool,
    problem: Option<String>,
    note: Option<String>,
    loaded: bool,
}

impl BuilderState {
    /// The groups a typed (or saved) expression reads as; the default groups and a note saying
    /// why when it has another shape. Text that does not parse gets no note: the page marks it.
    fn from_typed(text: &str) -> Self {
        let fresh = |note| Self { builder: Builder::default(), built: false, problem: None, note, loaded: false };
        if text.trim().is_empty() {
            return fresh(None);
        }
        let Ok(parsed) = expr::parse(text) else { return fresh(None) };
        match segment_builder::load_back(&parsed) {
            Ok(builder) => Self { builder, built: false, problem: None, note: None, loaded: true },
            Err(why) => fresh(Some(why)),
        }
    }

    fn view(self, tags: Vec<TagOption>, keys: Vec<String>) -> BuilderView {
        let can_add_group = self.builder.groups.len() < segment_builder::MAX_GROUPS;
        let groups = self
            .builder
            .groups
            .into_iter()
            .enumerate()
            .map(|(g, mut group)| {
                let rows = std::mem::take(&mut group.rows);
                GroupView {
                    g,
                    can_add_row: rows.len() < segment_builder::MAX_ROWS,
                    rows: rows.into_iter().enumerate().map(|(r, row)| RowView { r, row }).collect(),
                    group,
                }
            })
            .collect();
        BuilderView {
            join_or: self.builder.join == "or",
            groups,
            built: self.built,
            problem: self.problem,
            note: self.note,
            loaded: self.loaded,
            can_add_group,
            tags,
            keys,
        }
    }
}

enum Counted {
    /// How many match, and how many of them the purchase model expects to buy within 7 days
    /// (when followers have scores and the in-memory index can answer).
    Members(i64, Option<f64>),
    Problem(ExprProblem),
}

/// Counts through the in-memory audience index when it can answer, else with SQL, as the API does.
async fn count(
    pool: &Pool,
    index: &AudienceIndex,
    account: AccountId,
    clock: &Clock,
    text: &str,
) -> Result<Counted, AdminError> {
    let parsed = match expr::parse(text) {
        Ok(parsed) => parsed,
        Err(error) => return Ok(Counted::Problem(expr_problem(text, &error))),
    };
    if let Some(problem) = unknown_tag_problem(pool, account, &parsed, text).await? {
        return Ok(Counted::Problem(problem));
    }
    let members =
        crate::app::audience::count_members(pool, index, account, &parsed, clock.unix()).await.map_err(|error| {
            match error {
                crate::app::audience::AudienceError::Pool(e) => AdminError::Pool(e),
                crate::app::audience::AudienceError::Query(e) => AdminError::Query(e),
            }
        })?;
    let expected = index.expected(account, &parsed, clock.unix(), crate::app::predictions::PURCHASE_MODEL).await;
    Ok(Counted::Members(members, expected))
}

/// The first tag `parsed` names that the account lacks, marked in the text with its suggestion.
async fn unknown_tag_problem(
    pool: &Pool,
    account: AccountId,
    parsed: &expr::Expr,
    text: &str,
) -> Result<Option<ExprProblem>, AdminError> {
    let unknown = crate::app::audience::tag_check::unknown_tags(&pool.get().await?, account, parsed, text).await?;
    Ok(unknown.into_iter().next().map(|tag| {
        let chars: Vec<char> = text.chars().collect();
        let start = tag.position.saturating_sub(1).min(chars.len());
        let end = text.find(&format!("\"{}\"", tag.path)).map_or(start + 1, |_| start + tag.path.chars().count() + 2);
        let end = end.min(chars.len()).max(start);
        ExprProblem {
            position: tag.position,
            message: tag.message_zh(),
            before: chars[..start].iter().collect(),
            at: chars[start..end].iter().collect(),
            after: chars[end..].iter().collect(),
        }
    }))
}

/// What the page shows besides the saved list: the expression, its name, and the builder.
struct Shown {
    name: String,
    expr: String,
    error: Option<String>,
    builder: BuilderState,
}

impl Shown {
    fn typed(name: String, expr: String, error: Option<String>) -> Self {
        let builder = BuilderState::from_typed(&expr);
        Self { name, expr, error, builder }
    }
}

#[expect(clippy::too_many_arguments, reason = "one page's inputs, passed once")]
async fn segments_page(
    user: &AdminUser,
    pool: &Pool,
    index: &AudienceIndex,
    clock: &Clock,
    state: &AdminState,
    before: Option<i64>,
    shown: Shown,
    status: StatusCode,
) -> Result<HttpResponse, AdminError> {
    let Shown { name, expr: expr_text, error, builder } = shown;
    let (count, problem) = if expr_text.trim().is_empty() {
        (None, None)
    } else {
        match count(pool, index, user.account, clock, &expr_text).await? {
            Counted::Members(n, expected) => (Some((n, expected.map(|e| format!("{e:.0}")))), None),
            Counted::Problem(p) => (None, Some(p)),
        }
    };
    let client = pool.get().await?;
    let rows = store::segments::list_segments(&client, user.account, before, PAGE).await?;
    let next = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.id)).flatten();
    let segments = rows
        .into_iter()
        .map(|s| SegmentView {
            id: s.id,
            name: s.name,
            expr: s.expr,
            created: show_time(s.created_at),
            created_by: s.created_by,
        })
        .collect();
    let keys = store::rules::list_rules(&client, user.account)
        .await?
        .into_iter()
        .filter(|r| r.spec.on == crate::domain::rule::Trigger::Click)
        .map(|r| r.spec.key)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    drop(client);
    let tags = tag_picker::tag_options(pool, user.account, state).await?;
    let status = if problem.is_some() || builder.problem.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { status };
    render(&SegmentsPage {
        layout: user.layout("segments"),
        segments,
        next,
        name,
        expr: expr_text,
        count,
        problem,
        error,
        builder: builder.view(tags, keys),
    })
    .map(|mut r| {
        *r.status_mut() = status;
        r
    })
}

pub async fn show_segments(
    user: AdminUser,
    pool: web::Data<Pool>,
    index: web::Data<AudienceIndex>,
    clock: web::Data<Clock>,
    state: web::Data<Arc<AdminState>>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let query = SegmentQuery::from_request(&req)?;
    let name = query.name.unwrap_or_default();
    let typed = query.expr.unwrap_or_default();
    let shown = match query.builder {
        None => Shown::typed(name, typed, None),
        Some(builder) => {
            let (builder, text) = submitted(builder, query.action, query.build, typed);
            Shown { name, expr: text, error: None, builder }
        }
    };
    segments_page(&user, &pool, &index, &clock, &state, query.before, shown, StatusCode::OK).await
}

/// The submitted groups, after the button's change, and the expression to show: theirs when
/// they compose, else `typed`. While rows are being added or removed a half-filled row is not
/// yet a problem.
fn submitted(mut builder: Builder, action: Option<Action>, build: bool, typed: String) -> (BuilderState, String) {
    let mut problem = action.and_then(|action| builder.apply(action).err());
    let mut text = typed;
    let mut built = false;
    if build {
        match segment_builder::compose(&builder) {
            Built::Expr(composed) => {
                text = composed;
                built = true;
            }
            Built::Empty if action.is_none() => {
                problem = Some("请至少填写一个条件：选择条件类型，再填标签、菜单 key 或次数。".to_owned());
            }
            Built::Problem(why) if action.is_none() => problem = Some(why),
            Built::Empty | Built::Problem(_) => {}
        }
    }
    (BuilderState { builder, built, problem, note: None, loaded: false }, text)
}

/// The live count for the page's script: `{"members": n, "expr": ".."}` or `{"position",
/// "message"}` for a typed expression; with the builder's groups and `build`, their composition
/// (`{"message"}` alone when a row is wrong).
pub async fn count_segment(
    user: AdminUser,
    pool: web::Data<Pool>,
    index: web::Data<AudienceIndex>,
    clock: web::Data<Clock>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let query = SegmentQuery::from_request(&req)?;
    let text = match (query.build, query.builder) {
        (true, Some(builder)) => match segment_builder::compose(&builder) {
            Built::Expr(text) => text,
            Built::Empty => return Ok(HttpResponse::Ok().json(serde_json::json!({ "empty": true }))),
            Built::Problem(message) => return Ok(HttpResponse::Ok().json(serde_json::json!({ "message": message }))),
        },
        _ => query.expr.unwrap_or_default(),
    };
    let body = match count(&pool, &index, user.account, &clock, &text).await? {
        // `expected_buyers` only once followers have scores, so the answer is unchanged before.
        Counted::Members(n, Some(expected)) => {
            serde_json::json!({ "members": n, "expected_buyers": expected.round(), "expr": text })
        }
        Counted::Members(n, None) => serde_json::json!({ "members": n, "expr": text }),
        Counted::Problem(p) => serde_json::json!({ "position": p.position, "message": p.message, "expr": text }),
    };
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
pub struct SegmentForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    expr: String,
}

pub async fn create_segment(
    user: AdminUser,
    pool: web::Data<Pool>,
    index: web::Data<AudienceIndex>,
    clock: web::Data<Clock>,
    state: web::Data<Arc<AdminState>>,
    CsrfForm(form): CsrfForm<SegmentForm>,
) -> Result<HttpResponse, AdminError> {
    let name = form.name.trim().to_owned();
    let bad = StatusCode::UNPROCESSABLE_ENTITY;
    if name.is_empty() || name.chars().count() > 100 {
        let shown = Shown::typed(name, form.expr, Some("人群名称需 1–100 个字。".to_owned()));
        return segments_page(&user, &pool, &index, &clock, &state, None, shown, bad).await;
    }
    let Ok(parsed) = expr::parse(&form.expr) else {
        let shown = Shown::typed(name, form.expr, None);
        return segments_page(&user, &pool, &index, &clock, &state, None, shown, bad).await;
    };
    if unknown_tag_problem(&pool, user.account, &parsed, &form.expr).await?.is_some() {
        // The page marks the tag and suggests the nearest (it counts the expression again).
        let shown = Shown::typed(name, form.expr, None);
        return segments_page(&user, &pool, &index, &clock, &state, None, shown, bad).await;
    }
    let client = pool.get().await?;
    let segment = store::segments::insert_segment(&client, user.account, &name, &parsed, &user.username).await?;
    audit(&pool, &user, "create", "segment", &segment.id.to_string(), serde_json::json!({ "expr": segment.expr }))
        .await?;
    user.flash(format!("已保存人群「{}」。", segment.name));
    Ok(see_other("/admin/segments"))
}
