//! Playbook export and import: the chosen account's whole configuration as one TOML file
//! (CONTRACT.md §5).

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::pages::audit;
use super::{AdminError, AdminUser, CsrfForm, Layout, render};
use crate::app::playbook::{self, PlaybookError};

#[derive(Template)]
#[template(path = "admin/playbook/index.html")]
struct PlaybookPage {
    layout: Layout,
    source: String,
    problems: Vec<String>,
    changes: Vec<String>,
    summary: Option<String>,
}

const FILE: &str = "网页导入";

pub async fn show_playbook(user: AdminUser) -> Result<HttpResponse, AdminError> {
    render(&PlaybookPage {
        layout: user.layout("playbook"),
        source: String::new(),
        problems: Vec::new(),
        changes: Vec::new(),
        summary: None,
    })
}

/// The configuration as a downloadable `playbook.toml`.
pub async fn export_playbook(user: AdminUser, pool: web::Data<Pool>) -> Result<HttpResponse, AdminError> {
    let toml = playbook::export(&pool, user.account).await.map_err(|error| {
        tracing::error!(error = ?error, "exporting the playbook failed");
        AdminError::Internal
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/toml; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"playbook.toml\""))
        .body(toml))
}

#[derive(Deserialize)]
pub struct ImportForm {
    source: String,
}

/// Applies a pasted playbook; every problem is listed with its line, and nothing changes then.
pub async fn import_playbook(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(form): CsrfForm<ImportForm>,
) -> Result<HttpResponse, AdminError> {
    let page = |problems: Vec<String>, changes: Vec<String>, summary: Option<String>| PlaybookPage {
        layout: user.layout("playbook"),
        source: form.source.clone(),
        problems,
        changes,
        summary,
    };
    let applier = playbook::Applier {
        actor: &user.username,
        account: user.account,
        may_change_sensitivity: user.role.may_change_sensitivity(),
    };
    match playbook::apply_as(&pool, FILE, &form.source, applier).await {
        Ok(applied) => {
            audit(&pool, &user, "import", "playbook", FILE, serde_json::json!({ "summary": applied.summary() }))
                .await?;
            let mut changes: Vec<String> = applied.changes.iter().map(ToString::to_string).collect();
            changes.extend(applied.warnings.iter().map(|w| format!("第 {} 行：{}", w.line, w.message)));
            render(&page(Vec::new(), changes, Some(applied.summary())))
        }
        Err(PlaybookError::Invalid(problems)) => {
            let problems = problems.problems.iter().map(|p| format!("第 {} 行：{}", p.line, p.message)).collect();
            render(&page(problems, Vec::new(), None)).map(|mut r| {
                *r.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
                r
            })
        }
        Err(PlaybookError::Sensitivity { changes, .. }) => {
            let problems = changes
                .iter()
                .map(|(path, from, to)| {
                    let change = match (from, to) {
                        (None, _) => "新建为敏感标签",
                        (Some(_), true) => "标为敏感",
                        (Some(_), false) => "取消敏感",
                    };
                    format!(
                        "标签「{path}」：配置文件会{change}。只有管理员可以标记或取消敏感标签（决定哪些群发需要审批）；                         请删去该标签的 sensitive 一行后再导入，或请管理员导入。"
                    )
                })
                .collect();
            render(&page(problems, Vec::new(), None)).map(|mut r| {
                *r.status_mut() = actix_web::http::StatusCode::FORBIDDEN;
                r
            })
        }
        Err(PlaybookError::Apply { source, .. }) => {
            let problem = match source {
                crate::app::tagging::TaggingError::Pool(e) => return Err(AdminError::Pool(e)),
                crate::app::tagging::TaggingError::Query(e) => return Err(AdminError::Query(e)),
                other => other.to_string(),
            };
            render(&page(vec![problem], Vec::new(), None)).map(|mut r| {
                *r.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
                r
            })
        }
        Err(error @ PlaybookError::Read { .. }) => {
            tracing::error!(error = ?error, "importing a playbook failed");
            Err(AdminError::Internal)
        }
    }
}
