//! `/api/v1/admins`: the people on the admin page (admins only).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller};
use crate::accounts::{self, AccountError};
use crate::domain::admin::AdminRole;
use crate::store;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    username: String,
    password: String,
    role: AdminRole,
}

#[derive(Serialize)]
struct AdminView {
    id: i64,
    username: String,
    role: AdminRole,
    created_at: DateTime<Utc>,
    created_by: String,
    disabled: bool,
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Invalid(message) => ApiError::invalid_request(message),
            AccountError::Exists(_) => ApiError::conflict("admin_exists", error.to_string()),
            AccountError::Hash | AccountError::Pool(_) | AccountError::Query(_) => {
                tracing::error!(error = ?error, "creating an admin user failed");
                ApiError::internal()
            }
        }
    }
}

pub async fn create_admin(
    pool: web::Data<Pool>,
    caller: Caller,
    body: web::Json<NewAdmin>,
) -> Result<HttpResponse, ApiError> {
    caller.require(caller.role.may_manage_admins(), "manage admin users")?;
    let NewAdmin { username, password, role } = body.into_inner();
    let id = accounts::create_admin(&pool, &username, &password, role, &caller.name).await?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "id": id, "username": username, "role": role })))
}

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
