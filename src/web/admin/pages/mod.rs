//! 标签, 规则, 测验, 人群, 审计 and 用户: the configuration pages, one file per page family.
//! Each handler prepares plain view rows so the templates only display; a refused form is shown
//! again with its message. This file holds what the pages share (paging, times, auditing, the
//! operator's wording of refusals) and re-exports the handlers for the routes.

mod accounts;
mod audit;
mod audit_words;
mod high_potential;
pub mod intents;
mod predictions;
mod quiz_form;
mod quizzes;
mod rules;
mod segment_builder;
mod segment_removal;
mod segments;
mod tag_picker;
mod tag_sync;
mod tags;
mod testers;
mod users;

pub use super::confirm::ConfirmForm;
pub use accounts::{create_account, edit_account, list_accounts, update_account};
pub use audit::list_audit;
pub use predictions::save_high_potential;
pub use predictions::{predictions_page, train_now};
pub use quizzes::{delete_quiz, list_quizzes, save_quiz, save_quiz_form};
pub use rules::{create_rule, delete_rule, list_rules};
pub use segment_removal::delete_segment;
pub use segments::{count_segment, create_segment, show_segments};
pub use tag_picker::{ParentOption, TagGroup, TagOption, groups as tag_groups, tag_names, tag_options};
pub use tag_sync::retry_refused;
pub use tags::{create_tag, delete_tag, list_tags, rename_tag, set_tag_sensitive};
pub use testers::{add_tester, list_testers, remove_tester};
pub use users::{create_user, disable_user, enable_user, list_users, set_user_roles};

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use super::{AdminError, AdminUser};
use crate::app::tagging::TaggingError;
use crate::domain::tag::TagPathError;
use crate::store;

/// Rows per page of every list that grows.
pub const PAGE: i64 = 50;

/// How the pages show a time: Beijing time, to the minute.
pub fn show_time(at: DateTime<Utc>) -> String {
    crate::domain::calendar::beijing_minute(at)
}

fn show_opt_time(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "—".to_owned(), show_time)
}

/// Records what a page changed in the user's chosen account; after the change, since the domain
/// functions own their transactions.
pub async fn audit(
    pool: &Pool,
    user: &AdminUser,
    action: &str,
    kind: &str,
    id: &str,
    detail: serde_json::Value,
) -> Result<(), AdminError> {
    record(pool, user, Some(user.account), action, kind, id, &detail).await
}

/// Records a deployment-wide act (users, accounts), which belongs to no account.
pub async fn audit_deployment(
    pool: &Pool,
    user: &AdminUser,
    action: &str,
    kind: &str,
    id: &str,
    detail: serde_json::Value,
) -> Result<(), AdminError> {
    record(pool, user, None, action, kind, id, &detail).await
}

async fn record(
    pool: &Pool,
    user: &AdminUser,
    account: Option<crate::domain::account::AccountId>,
    action: &str,
    kind: &str,
    id: &str,
    detail: &serde_json::Value,
) -> Result<(), AdminError> {
    let client = pool.get().await?;
    store::audit::record(&client, account, &user.username, action, kind, id, detail).await?;
    Ok(())
}

fn refused(response: Result<HttpResponse, AdminError>) -> Result<HttpResponse, AdminError> {
    response.map(|mut r| {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        r
    })
}

/// A domain refusal as a sentence for the operator, or the error page for the rest.
fn tagging_message(error: TaggingError) -> Result<String, AdminError> {
    match error {
        TaggingError::Pool(e) => Err(AdminError::Pool(e)),
        TaggingError::Query(e) => Err(AdminError::Query(e)),
        TaggingError::TagExists(path) => Ok(format!("标签「{path}」已存在。")),
        TaggingError::SensitiveTag(path) => {
            Ok(format!("「{path}」是敏感标签，只有管理员可以删除（删除后重建即等于取消敏感）。请联系管理员。"))
        }
        TaggingError::WeChatTagLimit => {
            Ok("微信每个账号最多 100 个标签，已用完：请取消勾选「同步到微信」，创建仅本地使用的标签。".to_owned())
        }
        other => Ok(other.to_string()),
    }
}

/// A tag path's problem in the operator's words.
pub fn tag_path_problem(raw: &str, error: &TagPathError) -> String {
    match error {
        TagPathError::Empty => "请填写标签路径，如「肤质/油性」。".to_owned(),
        TagPathError::EmptyLevel { level, .. } => format!("「{raw}」的第 {level} 级是空的。"),
        TagPathError::TooDeep { levels, .. } => {
            format!("「{raw}」有 {levels} 级，微信标签最多 3 级（大类/子类/细项）。")
        }
        TagPathError::TooLongForWeChat { bytes, .. } => {
            format!("「{raw}」共 {bytes} 字节，微信标签名最多 30 字节（约 10 个汉字），请缩短。")
        }
        TagPathError::ControlCharacter { .. } => format!("「{raw}」含有控制字符。"),
    }
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}
