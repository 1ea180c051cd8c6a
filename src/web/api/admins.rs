//! `/api/v1/admins`: the people on the admin page (admins only).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller, ErrorBody};
use crate::app::admins::{self, AccountError};
use crate::domain::admin::AdminRole;
use crate::store;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    #[schema(pattern = "^[A-Za-z0-9_.@-]{1,64}$")]
    username: String,
    #[schema(min_length = 8)]
    password: String,
    role: AdminRole,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AdminView {
    id: i64,
    username: String,
    role: AdminRole,
    created_at: DateTime<Utc>,
    created_by: String,
    disabled: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AdminCreated {
    id: i64,
    username: String,
    role: AdminRole,
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

/// Admins only.
#[utoipa::path(post, path = "/api/v1/admins", tag = "admins", request_body = NewAdmin,
    responses((status = 201, body = AdminCreated), (status = 403, body = ErrorBody),
        (status = 409, description = "`admin_exists`", body = ErrorBody)))]
pub async fn create_admin(
    pool: web::Data<Pool>,
    caller: Caller,
    body: web::Json<NewAdmin>,
) -> Result<HttpResponse, ApiError> {
    caller.require(caller.role.may_manage_admins(), "manage admin users")?;
    let NewAdmin { username, password, role } = body.into_inner();
    let id = admins::create_admin(&pool, &username, &password, role, &caller.name).await?;
    Ok(HttpResponse::Created().json(AdminCreated { id, username, role }))
}

/// Admins only.
#[utoipa::path(get, path = "/api/v1/admins", tag = "admins",
    responses((status = 200, body = Vec<AdminView>), (status = 403, body = ErrorBody)))]
pub async fn list_admins(pool: web::Data<Pool>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(caller.role.may_manage_admins(), "see admin users")?;
    let client = pool.get().await?;
    let admins: Vec<AdminView> = store::admins::list_admins(&client)
        .await?
        .into_iter()
        .map(|a| AdminView {
            id: a.id,
            username: a.username,
            role: a.role,
            created_at: a.created_at,
            created_by: a.created_by,
            disabled: a.disabled,
        })
        .collect();
    Ok(HttpResponse::Ok().json(admins))
}
