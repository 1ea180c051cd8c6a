//! 人群: segments written in the expression language, counted live while typing, and saved.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::{PAGE, audit, show_time};
use crate::app::audience::index::AudienceIndex;
use crate::domain::account::AccountId;
use crate::domain::clock::Clock;
use crate::domain::expr;
use crate::store;
use crate::web::admin::{AdminError, AdminUser, CsrfForm, Layout, render, see_other};

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
    count: Option<i64>,
    problem: Option<ExprProblem>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct SegmentQuery {
    #[serde(default)]
    expr: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    before: Option<i64>,
}

enum Counted {
    Members(i64),
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
    let members =
        crate::app::audience::count_members(pool, index, account, &parsed, clock.unix()).await.map_err(|error| {
            match error {
                crate::app::audience::AudienceError::Pool(e) => AdminError::Pool(e),
                crate::app::audience::AudienceError::Query(e) => AdminError::Query(e),
            }
        })?;
    Ok(Counted::Members(members))
}

#[expect(clippy::too_many_arguments, reason = "one page's inputs, passed once")]
async fn segments_page(
    user: &AdminUser,
    pool: &Pool,
    index: &AudienceIndex,
    clock: &Clock,
    before: Option<i64>,
    name: String,
    expr_text: String,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, AdminError> {
    let (count, problem) = if expr_text.trim().is_empty() {
        (None, None)
    } else {
        match count(pool, index, user.account, clock, &expr_text).await? {
            Counted::Members(n) => (Some(n), None),
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
    let status = if problem.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { status };
    render(&SegmentsPage {
        layout: user.layout("segments"),
        segments,
        next,
        name,
        expr: expr_text,
        count,
        problem,
        error,
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
    query: web::Query<SegmentQuery>,
) -> Result<HttpResponse, AdminError> {
    let query = query.into_inner();
    segments_page(
        &user,
        &pool,
        &index,
        &clock,
        query.before,
        query.name.unwrap_or_default(),
        query.expr.unwrap_or_default(),
        None,
        StatusCode::OK,
    )
    .await
}

/// The live count for the page's script: `{"members": n}` or `{"position", "message"}`.
pub async fn count_segment(
    user: AdminUser,
    pool: web::Data<Pool>,
    index: web::Data<AudienceIndex>,
    clock: web::Data<Clock>,
    query: web::Query<SegmentQuery>,
) -> Result<HttpResponse, AdminError> {
    let text = query.expr.clone().unwrap_or_default();
    let body = match count(&pool, &index, user.account, &clock, &text).await? {
        Counted::Members(n) => serde_json::json!({ "members": n }),
        Counted::Problem(p) => serde_json::json!({ "position": p.position, "message": p.message }),
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
    CsrfForm(form): CsrfForm<SegmentForm>,
) -> Result<HttpResponse, AdminError> {
    let name = form.name.trim().to_owned();
    let bad = StatusCode::UNPROCESSABLE_ENTITY;
    if name.is_empty() || name.chars().count() > 100 {
        let error = Some("人群名称需 1–100 个字。".to_owned());
        return segments_page(&user, &pool, &index, &clock, None, name, form.expr, error, bad).await;
    }
    let Ok(parsed) = expr::parse(&form.expr) else {
        return segments_page(&user, &pool, &index, &clock, None, name, form.expr, None, bad).await;
    };
    let client = pool.get().await?;
    let segment = store::segments::insert_segment(&client, user.account, &name, &parsed, &user.username).await?;
    audit(&pool, &user, "create", "segment", &segment.id.to_string(), serde_json::json!({ "expr": segment.expr }))
        .await?;
    user.flash(format!("已保存人群「{}」。", segment.name));
    Ok(see_other("/admin/segments"))
}
