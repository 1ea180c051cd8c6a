//! `admins`: users of the admin page and of HTTP Basic on the API.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;
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

/// Sets `admins.role` (the deployment admin's mark, and the previous release's one role).
pub async fn set_role(client: &impl GenericClient, id: i64, role: AdminRole) -> Result<(), tokio_postgres::Error> {
    client.execute("UPDATE admins SET role = $2 WHERE id = $1", &[&id, &role.as_str()]).await?;
    Ok(())
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

/// A user's roles per account (`admin_roles`); a deployment admin (`admins.role = 'admin'`) holds
/// every account whatever is listed here.
pub async fn roles_of(
    client: &impl GenericClient,
    admin_id: i64,
) -> Result<Vec<(AccountId, AdminRole)>, tokio_postgres::Error> {
    let rows = client
        .query("SELECT account_id, role FROM admin_roles WHERE admin_id = $1 ORDER BY account_id", &[&admin_id])
        .await?;
    Ok(rows.iter().filter_map(|r| AdminRole::parse(r.get(1)).map(|role| (AccountId(r.get(0)), role))).collect())
}

/// Every user's roles per account, keyed by admin id (the users page).
pub async fn all_roles(client: &impl GenericClient) -> Result<Vec<(i64, AccountId, AdminRole)>, tokio_postgres::Error> {
    let rows =
        client.query("SELECT admin_id, account_id, role FROM admin_roles ORDER BY admin_id, account_id", &[]).await?;
    Ok(rows
        .iter()
        .filter_map(|r| AdminRole::parse(r.get(2)).map(|role| (r.get(0), AccountId(r.get(1)), role)))
        .collect())
}

/// Replaces a user's roles with `roles`; whether anything changed. Rows that stay the same are
/// not written, so the trigger that ends the user's sessions fires only when something changed.
pub async fn set_roles(
    client: &impl GenericClient,
    admin_id: i64,
    roles: &[(AccountId, AdminRole)],
) -> Result<bool, tokio_postgres::Error> {
    let accounts: Vec<i64> = roles.iter().map(|(a, _)| a.get()).collect();
    let names: Vec<&str> = roles.iter().map(|(_, r)| r.as_str()).collect();
    let removed = client
        .execute("DELETE FROM admin_roles WHERE admin_id = $1 AND NOT (account_id = ANY($2))", &[&admin_id, &accounts])
        .await?;
    let written = client
        .execute(
            "INSERT INTO admin_roles (admin_id, account_id, role)
             SELECT $1, account_id, role FROM unnest($2::bigint[], $3::text[]) AS r (account_id, role)
             ON CONFLICT (admin_id, account_id) DO UPDATE SET role = EXCLUDED.role
             WHERE admin_roles.role IS DISTINCT FROM EXCLUDED.role",
            &[&admin_id, &accounts, &names],
        )
        .await?;
    Ok(removed + written > 0)
}

/// What `username` (enabled) may do on `account`: whether they are a deployment admin, and their
/// role there if listed. `None` when no enabled user has that name.
pub async fn role_on(
    client: &impl GenericClient,
    username: &str,
    account: AccountId,
) -> Result<Option<(bool, Option<AdminRole>)>, tokio_postgres::Error> {
    const SQL: &str = "SELECT a.role = 'admin', r.role FROM admins a
         LEFT JOIN admin_roles r ON r.admin_id = a.id AND r.account_id = $2
         WHERE a.username = $1 AND a.disabled_at IS NULL";
    let statement = client.prepare_cached(SQL).await?;
    Ok(client
        .query_opt(&statement, &[&username, &account.get()])
        .await?
        .map(|row| (row.get(0), row.get::<_, Option<&str>>(1).and_then(AdminRole::parse))))
}
