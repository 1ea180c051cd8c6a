//! `/api/v1/admins`: the people on the admin page and their roles per account (deployment admins
//! only).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller, ErrorBody};
use crate::app::accounts::Accounts;
use crate::app::admins::{self, AccountError, NewUser};
use crate::domain::account::AccountId;
use crate::domain::admin::AdminRole;
use crate::store;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    #[schema(pattern = "^[A-Za-z0-9_.@-]{1,64}$")]
    username: String,
    #[schema(min_length = 8)]
    password: String,
    /// `admin`: a deployment admin (every account, and managing accounts and users). Otherwise the
    /// role on the account the call names (`Tagcast-Account`, the first when absent), unless
    /// `roles` is given.
    #[serde(default)]
    role: Option<AdminRole>,
    /// The role on each account, by account name, e.g. `{"main": "operator", "shop": "approver"}`.
    #[serde(default)]
    roles: Option<BTreeMap<String, AdminRole>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesChange {
    /// The user's roles from now on, by account name; accounts left out are no longer held. The
    /// user's sessions on the admin pages end when anything changes.
    roles: BTreeMap<String, AdminRole>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AdminView {
    id: i64,
    username: String,
    /// `admin` for a deployment admin; otherwise the role on the first account (or `operator`).
    role: AdminRole,
    deployment_admin: bool,
    /// The role on each account the user holds, by account name (every account for a deployment admin).
    roles: BTreeMap<String, AdminRole>,
    created_at: DateTime<Utc>,
    created_by: String,
    disabled: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AdminCreated {
    id: i64,
    username: String,
    role: AdminRole,
    roles: BTreeMap<String, AdminRole>,
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Invalid(ref reason) => ApiError::invalid_request(reason.to_string()),
            AccountError::Exists(_) => ApiError::conflict("admin_exists", error.to_string()),
            AccountError::Pool(_) | AccountError::Query(_) => ApiError::database(&error, "creating an admin user"),
            AccountError::Hash => {
                tracing::error!(error = ?error, "creating an admin user failed");
                ApiError::internal()
            }
        }
    }
}

/// Account names to ids; `400` for a name no account has.
fn resolve(accounts: &Accounts, roles: &BTreeMap<String, AdminRole>) -> Result<Vec<(AccountId, AdminRole)>, ApiError> {
    roles
        .iter()
        .map(|(name, role)| {
            accounts
                .by_name(name)
                .map(|a| (a.id, *role))
                .ok_or_else(|| ApiError::invalid_request(format!("roles: no account is named `{name}`")))
        })
        .collect()
}

fn names(accounts: &Accounts, roles: &[(AccountId, AdminRole)]) -> BTreeMap<String, AdminRole> {
    roles.iter().filter_map(|(id, role)| accounts.get(*id).map(|a| (a.name.clone(), *role))).collect()
}

/// Deployment admins only.
#[utoipa::path(post, path = "/api/v1/admins", tag = "admins", request_body = NewAdmin,
    responses((status = 201, body = AdminCreated), (status = 403, body = ErrorBody),
        (status = 409, description = "`admin_exists`", body = ErrorBody)))]
pub async fn create_admin(
    pool: web::Data<Pool>,
    accounts: web::Data<Accounts>,
    caller: Caller,
    body: web::Json<NewAdmin>,
) -> Result<HttpResponse, ApiError> {
    caller.require_deployment_admin("manage admin users")?;
    let NewAdmin { username, password, role, roles } = body.into_inner();
    let deployment_admin = role == Some(AdminRole::Admin);
    let roles = match (roles, role) {
        (Some(roles), _) => resolve(&accounts, &roles)?,
        (None, Some(role)) if !deployment_admin => vec![(caller.account, role)],
        (None, Some(_)) => Vec::new(),
        (None, None) => return Err(ApiError::invalid_request("give `role` or `roles`")),
    };
    let user = NewUser { username: &username, password: &password, deployment_admin, roles: roles.clone() };
    let id = admins::create_admin(&pool, &user, &caller.name).await?;
    let role = if deployment_admin { AdminRole::Admin } else { role.unwrap_or(AdminRole::Operator) };
    let roles = if deployment_admin { every_account(&accounts) } else { names(&accounts, &roles) };
    Ok(HttpResponse::Created().json(AdminCreated { id, username, role, roles }))
}

fn every_account(accounts: &Accounts) -> BTreeMap<String, AdminRole> {
    accounts.all().iter().map(|a| (a.name.clone(), AdminRole::Admin)).collect()
}

/// Deployment admins only.
#[utoipa::path(get, path = "/api/v1/admins", tag = "admins",
    responses((status = 200, body = Vec<AdminView>), (status = 403, body = ErrorBody)))]
pub async fn list_admins(
    pool: web::Data<Pool>,
    accounts: web::Data<Accounts>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_deployment_admin("see admin users")?;
    let client = pool.get().await?;
    let all_roles = store::admins::all_roles(&client).await?;
    let admins: Vec<AdminView> = store::admins::list_admins(&client)
        .await?
        .into_iter()
        .map(|a| {
            let deployment_admin = a.role == AdminRole::Admin;
            let roles = if deployment_admin {
                every_account(&accounts)
            } else {
                let mine: Vec<_> =
                    all_roles.iter().filter(|(id, _, _)| *id == a.id).map(|(_, acc, role)| (*acc, *role)).collect();
                names(&accounts, &mine)
            };
            AdminView {
                id: a.id,
                username: a.username,
                role: a.role,
                deployment_admin,
                roles,
                created_at: a.created_at,
                created_by: a.created_by,
                disabled: a.disabled,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(admins))
}

/// Deployment admins only. Replaces the user's roles per account and ends their sessions.
#[utoipa::path(put, path = "/api/v1/admins/{username}/roles", tag = "admins", request_body = RolesChange,
    params(("username" = String, Path, description = "the user")),
    responses((status = 200, body = AdminCreated), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn set_roles(
    pool: web::Data<Pool>,
    accounts: web::Data<Accounts>,
    caller: Caller,
    username: web::Path<String>,
    body: web::Json<RolesChange>,
) -> Result<HttpResponse, ApiError> {
    caller.require_deployment_admin("change roles")?;
    let roles = resolve(&accounts, &body.roles)?;
    admins::set_roles(&pool, &username, &roles, &caller.name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user is named `{username}`")))?;
    let client = pool.get().await?;
    let row = store::admins::find_by_username(&client, &username).await?.ok_or_else(|| ApiError::not_found("gone"))?;
    let roles = if row.role == AdminRole::Admin { every_account(&accounts) } else { names(&accounts, &roles) };
    Ok(HttpResponse::Ok().json(AdminCreated { id: row.id, username: row.username, role: row.role, roles }))
}
