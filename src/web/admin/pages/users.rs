//! 用户: the admin users, their roles, and disabling or enabling them.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::{Choice, ConfirmForm, audit, refused, show_time};
use crate::domain::admin::AdminRole;
use crate::store;
use crate::web::admin::{AdminError, AdminState, AdminUser, CsrfForm, Layout, render, see_other};

pub struct UserView {
    pub username: String,
    pub role: &'static str,
    pub created: String,
    pub created_by: String,
    pub disabled: bool,
    pub is_self: bool,
}

#[derive(Template)]
#[template(path = "admin/users/index.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<UserView>,
    roles: Vec<Choice>,
    error: Option<String>,
    username: String,
}

#[derive(Deserialize, Default)]
pub struct UserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

async fn users_page(
    user: &AdminUser,
    pool: &Pool,
    error: Option<String>,
    form: &UserForm,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let users = store::admins::list_admins(&client)
        .await?
        .into_iter()
        .map(|a| UserView {
            is_self: a.username == user.username,
            username: a.username,
            role: a.role.label_zh(),
            created: show_time(a.created_at),
            created_by: a.created_by,
            disabled: a.disabled,
        })
        .collect();
    let roles = [AdminRole::Operator, AdminRole::Approver, AdminRole::Admin]
        .into_iter()
        .map(|r| Choice {
            value: r.as_str().to_owned(),
            label: r.label_zh().to_owned(),
            selected: form.role == r.as_str(),
        })
        .collect();
    render(&UsersPage { layout: user.layout("users"), users, roles, error, username: form.username.clone() })
}

pub async fn list_users(user: AdminUser, pool: web::Data<Pool>) -> Result<HttpResponse, AdminError> {
    user.require(user.role.may_manage_admins())?;
    users_page(&user, &pool, None, &UserForm::default()).await
}

pub async fn create_user(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(form): CsrfForm<UserForm>,
) -> Result<HttpResponse, AdminError> {
    user.require(user.role.may_manage_admins())?;
    let Some(role) = AdminRole::parse(&form.role) else {
        return refused(users_page(&user, &pool, Some("请选择角色。".to_owned()), &form).await);
    };
    let username = form.username.trim();
    match crate::app::admins::create_admin(&pool, username, &form.password, role, &user.username).await {
        Ok(_) => {
            user.flash(format!("已创建用户「{username}」（{}）。", role.label_zh()));
            Ok(see_other("/admin/users"))
        }
        Err(crate::app::admins::AccountError::Invalid(reason)) => {
            use crate::domain::admin::{self, NewAdminError};
            let message = match reason {
                NewAdminError::PasswordTooShort { .. } | NewAdminError::PasswordTooLong { .. } => {
                    format!("密码至少 {} 个字符。", admin::MIN_PASSWORD_CHARS)
                }
                NewAdminError::ReservedUsername { username } => format!(
                    "用户名「{username}」是保留名（审计日志用 {} 记录系统自身的操作），请换一个用户名。",
                    admin::RESERVED_USERNAMES.join("、")
                ),
                NewAdminError::BadUsername { .. } => {
                    format!("用户名需 1–{} 个字符，只能用字母、数字和 _ - . @。", admin::MAX_USERNAME_BYTES)
                }
            };
            refused(users_page(&user, &pool, Some(message), &form).await)
        }
        Err(crate::app::admins::AccountError::Exists(name)) => {
            refused(users_page(&user, &pool, Some(format!("用户名「{name}」已被使用。")), &form).await)
        }
        Err(error) => {
            tracing::error!(error = ?error, "creating an admin user failed");
            Err(AdminError::Internal)
        }
    }
}

async fn set_disabled(
    user: AdminUser,
    pool: &Pool,
    state: &AdminState,
    username: &str,
    disabled: bool,
) -> Result<HttpResponse, AdminError> {
    user.require(user.role.may_manage_admins())?;
    if username == user.username {
        user.flash("不能停用自己的账号。");
        return Ok(see_other("/admin/users"));
    }
    let client = pool.get().await?;
    if !store::admins::set_disabled(&client, username, disabled).await? {
        return Err(AdminError::NotFound);
    }
    state.users.forget(username);
    let action = if disabled { "disable" } else { "enable" };
    audit(pool, &user.username, action, "admin", username, serde_json::json!({})).await?;
    user.flash(if disabled {
        format!("已停用「{username}」。")
    } else {
        format!("已启用「{username}」。")
    });
    Ok(see_other("/admin/users"))
}

pub async fn disable_user(
    user: AdminUser,
    pool: web::Data<Pool>,
    state: web::Data<Arc<AdminState>>,
    username: web::Path<String>,
    CsrfForm(_): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AdminError> {
    set_disabled(user, &pool, &state, &username, true).await
}

pub async fn enable_user(
    user: AdminUser,
    pool: web::Data<Pool>,
    state: web::Data<Arc<AdminState>>,
    username: web::Path<String>,
    CsrfForm(_): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AdminError> {
    set_disabled(user, &pool, &state, &username, false).await
}
