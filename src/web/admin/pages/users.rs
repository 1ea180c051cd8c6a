//! 用户: the admin users, their roles, and disabling or enabling them.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::{Choice, ConfirmForm, audit_deployment, refused, show_time};
use crate::app::accounts::Accounts;
use crate::app::admins::NewUser;
use crate::domain::account::AccountId;
use crate::domain::admin::AdminRole;
use crate::store;
use crate::web::admin::confirm::{Confirmation, confirm_page};
use crate::web::admin::{AdminError, AdminState, AdminUser, CsrfForm, Layout, render, see_other};

pub struct UserView {
    pub username: String,
    pub role: String,
    pub created: String,
    pub created_by: String,
    pub disabled: bool,
    pub is_self: bool,
    pub deployment_admin: bool,
    /// One select per account for the roles form.
    pub grants: Vec<Grant>,
}

pub struct Grant {
    pub field: String,
    pub account: String,
    pub options: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "admin/users/index.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<UserView>,
    roles: Vec<Choice>,
    error: Option<String>,
    username: String,
    account: String,
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

/// The roles form's field for an account.
fn field(account: &str) -> String {
    format!("role_{account}")
}

fn grant_options(current: Option<AdminRole>) -> Vec<Choice> {
    let none = Choice { value: String::new(), label: "无权限".to_owned(), selected: current.is_none() };
    std::iter::once(none)
        .chain([AdminRole::Operator, AdminRole::Approver, AdminRole::Admin].into_iter().map(|r| Choice {
            value: r.as_str().to_owned(),
            label: account_role_label(r).to_owned(),
            selected: current == Some(r),
        }))
        .collect()
}

/// A role on one account; the deployment admin is named apart.
fn account_role_label(role: AdminRole) -> &'static str {
    match role {
        AdminRole::Admin => "公众号管理员",
        other => other.label_zh(),
    }
}

async fn users_page(
    user: &AdminUser,
    pool: &Pool,
    accounts: &Accounts,
    error: Option<String>,
    form: &UserForm,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let all_roles = store::admins::all_roles(&client).await?;
    let live = accounts.all();
    let users = store::admins::list_admins(&client)
        .await?
        .into_iter()
        .map(|a| {
            let deployment_admin = a.role == AdminRole::Admin;
            let role_on = |id: AccountId| {
                all_roles.iter().find(|(admin, account, _)| *admin == a.id && *account == id).map(|(_, _, r)| *r)
            };
            let role = if deployment_admin {
                "部署管理员（全部公众号）".to_owned()
            } else {
                let held: Vec<String> = live
                    .iter()
                    .filter_map(|acc| {
                        role_on(acc.id).map(|r| format!("{}：{}", acc.display_name, account_role_label(r)))
                    })
                    .collect();
                if held.is_empty() { "无公众号权限".to_owned() } else { held.join("；") }
            };
            let grants = live
                .iter()
                .map(|acc| Grant {
                    field: field(&acc.name),
                    account: acc.display_name.clone(),
                    options: grant_options(role_on(acc.id)),
                })
                .collect();
            UserView {
                is_self: a.username == user.username,
                username: a.username,
                role,
                created: show_time(a.created_at),
                created_by: a.created_by,
                disabled: a.disabled,
                deployment_admin,
                grants,
            }
        })
        .collect();
    let roles = [
        ("operator", "运营"),
        ("approver", "审批人"),
        ("account_admin", "公众号管理员"),
        ("admin", "部署管理员（全部公众号，含管理公众号和用户）"),
    ]
    .into_iter()
    .map(|(value, label)| Choice { value: value.to_owned(), label: label.to_owned(), selected: form.role == value })
    .collect();
    let account = user.live_account().map(|a| a.display_name.clone()).unwrap_or_default();
    render(&UsersPage { layout: user.layout("users"), users, roles, error, username: form.username.clone(), account })
}

pub async fn list_users(
    user: AdminUser,
    pool: web::Data<Pool>,
    accounts: web::Data<Accounts>,
) -> Result<HttpResponse, AdminError> {
    user.require_deployment_admin()?;
    users_page(&user, &pool, &accounts, None, &UserForm::default()).await
}

pub async fn create_user(
    user: AdminUser,
    pool: web::Data<Pool>,
    accounts: web::Data<Accounts>,
    CsrfForm(form): CsrfForm<UserForm>,
) -> Result<HttpResponse, AdminError> {
    user.require_deployment_admin()?;
    // The role applies to the account chosen in the switcher; `admin` is the deployment admin.
    let (deployment_admin, role) = match form.role.as_str() {
        "admin" => (true, AdminRole::Admin),
        "account_admin" => (false, AdminRole::Admin),
        other => match AdminRole::parse(other) {
            Some(role) => (false, role),
            None => return refused(users_page(&user, &pool, &accounts, Some("请选择角色。".to_owned()), &form).await),
        },
    };
    let username = crate::domain::admin::normalize_username(&form.username);
    let new_user = NewUser {
        username: &username,
        password: &form.password,
        deployment_admin,
        roles: if deployment_admin { Vec::new() } else { vec![(user.account, role)] },
    };
    match crate::app::admins::create_admin(&pool, &new_user, &user.username).await {
        Ok(_) => {
            let what =
                if deployment_admin { "部署管理员".to_owned() } else { account_role_label(role).to_owned() };
            user.flash(format!("已创建用户「{username}」（{what}）。"));
            Ok(see_other("/admin/users"))
        }
        Err(crate::app::admins::AccountError::Invalid(reason)) => {
            let message = format!("{reason}。");
            refused(users_page(&user, &pool, &accounts, Some(message), &form).await)
        }
        Err(crate::app::admins::AccountError::Exists(name)) => {
            refused(users_page(&user, &pool, &accounts, Some(format!("用户名「{name}」已被使用。")), &form).await)
        }
        Err(error) => {
            tracing::error!(error = ?error, "creating an admin user failed");
            Err(AdminError::Internal)
        }
    }
}

/// Sets a user's role on every account at once (one select per account); ends their sessions
/// when anything changed.
pub async fn set_user_roles(
    user: AdminUser,
    pool: web::Data<Pool>,
    accounts: web::Data<Accounts>,
    state: web::Data<Arc<AdminState>>,
    username: web::Path<String>,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    user.require_deployment_admin()?;
    let mut roles = Vec::new();
    for account in accounts.all() {
        let chosen = fields.iter().find(|(k, _)| *k == field(&account.name)).map(|(_, v)| v.as_str());
        match chosen.unwrap_or_default() {
            "" => {}
            value => roles.push((account.id, AdminRole::parse(value).ok_or(AdminError::BadRequest)?)),
        }
    }
    let done = crate::app::admins::set_roles(&pool, &username, &roles, &user.username).await.map_err(|error| {
        tracing::error!(error = ?error, "changing a user's roles failed");
        AdminError::Internal
    })?;
    done.ok_or(AdminError::NotFound)?;
    state.users.forget(&username);
    user.flash(format!("已更新「{username}」的公众号权限；该用户需要重新登录。"));
    Ok(see_other("/admin/users"))
}

async fn set_disabled(
    user: AdminUser,
    pool: &Pool,
    state: &AdminState,
    username: &str,
    disabled: bool,
) -> Result<HttpResponse, AdminError> {
    user.require_deployment_admin()?;
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
    audit_deployment(pool, &user, action, "admin", username, serde_json::json!({})).await?;
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
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AdminError> {
    if !form.confirmed() {
        user.require_deployment_admin()?;
        let username = username.into_inner();
        let client = pool.get().await?;
        if store::admins::find_by_username(&client, &username).await?.is_none() {
            return Err(AdminError::NotFound);
        }
        // Stopping someone mid-work (a send under review, a quiz being edited) is not a stray click.
        return confirm_page(
            &user,
            "users",
            Confirmation {
                title: format!("停用账号「{username}」？"),
                consequences: vec![
                    "该用户会立即退出登录，之后无法再登录控制台。".to_owned(),
                    "他创建的标签、规则、人群和群发都保留；随时可以在本页重新启用。".to_owned(),
                ],
                action: format!("/admin/users/{username}/disable"),
                hidden: Vec::new(),
                source: None,
                button: "确认停用".to_owned(),
                back: "/admin/users".to_owned(),
            },
        );
    }
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
