//! Playbook export and import: the chosen account's whole configuration as one TOML file
//! (CONTRACT.md §5).

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::confirm::{Confirmation, confirm_page};
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
    /// `1` from the confirmation page: overwriting existing objects was agreed to.
    #[serde(default)]
    confirmed: Option<String>,
}

/// `tag 肤质/油性` → 标签「肤质/油性」; `rule click SKIN_TEST` → 规则（点击菜单 SKIN_TEST）.
fn object_zh(what: &str) -> String {
    match what.split_once(' ') {
        Some(("tag", path)) => format!("标签「{path}」"),
        Some(("quiz", id)) => format!("测验「{id}」"),
        Some(("rule", rest)) => match rest.split_once(' ') {
            Some((on, key)) => {
                let on = crate::domain::rule::Trigger::parse(on).map_or(on, |t| t.label_zh());
                format!("规则（{on} {key}）")
            }
            None => format!("规则（{rest}）"),
        },
        _ => what.to_owned(),
    }
}

/// The application's report line in Chinese: what happened to which object, and why.
fn change_zh(change: &playbook::Change) -> String {
    let outcome = match change.outcome {
        playbook::Outcome::Created => "新建",
        playbook::Outcome::Updated => "更新",
        playbook::Outcome::Unchanged => "未改动",
    };
    let mut line = format!("{outcome} {}", object_zh(&change.what));
    if let Some(note) = &change.note {
        let note = match note.split_once("named by ") {
            Some((_, by)) => format!("{}用到它", object_zh(by)),
            None if note == "local-only" => "仅本地使用，不同步到微信".to_owned(),
            None if note.starts_with("the playbook says") => {
                "配置文件写的同步方式与现有标签不同；导入不改变已有标签是否同步到微信".to_owned()
            }
            None => {
                let fields: Vec<&str> = note
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .split(", ")
                    .map(|f| match f.trim() {
                        "description" => "说明",
                        "sensitive" => "敏感标记",
                        "when" => "动态条件",
                        other => other,
                    })
                    .collect();
                format!("改动：{}", fields.join("、"))
            }
        };
        line.push_str(&format!("（{note}）"));
    }
    line
}

fn summary_zh(applied: &playbook::Applied) -> String {
    let n = |outcome| applied.changes.iter().filter(|c| c.outcome == outcome).count();
    if applied.changed() {
        format!(
            "新建 {} 项，更新 {} 项，未改动 {} 项",
            n(playbook::Outcome::Created),
            n(playbook::Outcome::Updated),
            n(playbook::Outcome::Unchanged)
        )
    } else {
        format!("没有变化：全部 {} 项已与配置文件一致", applied.changes.len())
    }
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
    // Creating is never destructive; overwriting a live quiz, rule or tag is, so it is shown first.
    if form.confirmed.as_deref() != Some("1")
        && let Ok(planned) = playbook::preview_as(&pool, FILE, &form.source, applier).await
        && planned.changes.iter().any(|c| c.outcome == playbook::Outcome::Updated)
    {
        let mut consequences = vec![format!(
            "导入会改动已有的内容（{}）；被更新的测验整体换成配置文件中的版本，粉丝正在答的题从新版本继续：",
            summary_zh(&planned)
        )];
        consequences
            .extend(planned.changes.iter().filter(|c| c.outcome != playbook::Outcome::Unchanged).map(change_zh));
        return confirm_page(
            &user,
            "playbook",
            Confirmation {
                title: "导入会覆盖已有内容，确定吗？".to_owned(),
                consequences,
                action: "/admin/playbook/import".to_owned(),
                hidden: Vec::new(),
                source: Some(form.source.clone()),
                button: "确认导入".to_owned(),
                back: "/admin/playbook".to_owned(),
            },
        );
    }
    match playbook::apply_as(&pool, FILE, &form.source, applier).await {
        Ok(applied) => {
            audit(&pool, &user, "import", "playbook", FILE, serde_json::json!({ "summary": summary_zh(&applied) }))
                .await?;
            let mut changes: Vec<String> = applied.changes.iter().map(change_zh).collect();
            changes.extend(applied.warnings.iter().map(|w| format!("第 {} 行：{}", w.line, w.message)));
            render(&page(Vec::new(), changes, Some(summary_zh(&applied))))
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
