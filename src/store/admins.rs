//! `admins`: users of the admin page and of HTTP Basic on the API.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::admin::AdminRole;

/// An admin user as stored.
#[derive(Debug, Clone)]
pub struct AdminRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: AdminRole,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub disabled: bool,
}

const COLUMNS: &str = "id, username, password_hash, role, created_at, created_by, disabled_at IS NOT NULL";

fn from_row(row: &tokio_postgres::Row) -> AdminRow {
    AdminRow {
        id: row.get(0),
        username: row.get(1),
        password_hash: row.get(2),
        // The CHECK constraint admits only the three roles.
        role: AdminRole::parse(row.get(3)).unwrap_or(AdminRole::Operator),
        created_at: row.get(4),
        created_by: row.get(5),
        disabled: row.get(6),
    }
}

/// Inserts a user; `None` when the username is taken.
pub async fn insert_admin(
    client: &impl GenericClient,
    username: &str,
    password_hash: &str,
    role: AdminRole,
    created_by: &str,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "INSERT INTO admins (username, password_hash, role, created_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (username) DO NOTHING RETURNING id",
            &[&username, &password_hash, &role.as_str(), &created_by],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

pub async fn find_by_username(
    client: &impl GenericClient,
    username: &str,
) -> Result<Option<AdminRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM admins WHERE username = $1");
    Ok(client.query_opt(&sql, &[&username]).await?.as_ref().map(from_row))
}

pub async fn list_admins(client: &impl GenericClient) -> Result<Vec<AdminRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM admins ORDER BY id");
    Ok(client.query(&sql, &[]).await?.iter().map(from_row).collect())
}

/// Whether any enabled user with the admin role exists.
pub async fn admin_exists(client: &impl GenericClient) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT EXISTS (SELECT 1 FROM admins WHERE role = 'admin' AND disabled_at IS NULL)", &[])
        .await?;
    Ok(row.get(0))
}

/// Sets a new password hash; false when no such user.
pub async fn set_password(
    client: &impl GenericClient,
    username: &str,
    password_hash: &str,
) -> Result<bool, tokio_postgres::Error> {
    let n = client
        .execute("UPDATE admins SET password_hash = $2 WHERE username = $1", &[&username, &password_hash])
        .await?;
    Ok(n == 1)
}

/// Disables or re-enables a user; false when no such user.
pub async fn set_disabled(
    client: &impl GenericClient,
    username: &str,
    disabled: bool,
) -> Result<bool, tokio_postgres::Error> {
    let n = client
        .execute(
            "UPDATE admins SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END WHERE username = $1",
            &[&username, &disabled],
        )
        .await?;
    Ok(n == 1)
}
