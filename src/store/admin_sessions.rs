//! `admin_sessions`: which admin-page sessions are still valid (issue 15 point 5).
//!
//! The cookie holds a random id; this table holds its hash, the user and the expiry. Reading
//! the session and the user's row is one indexed query per request, so a signed-out, expired,
//! disabled or changed user's cookie stops working on every instance at once.

use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;
use crate::domain::admin::AdminRole;

/// The user a live session belongs to, with the account chosen in the switcher and the user's
/// roles (for the switcher and the role on the chosen account).
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub username: String,
    /// `admins.role`: `admin` is the deployment admin.
    pub role: AdminRole,
    pub account: AccountId,
    pub roles: Vec<(AccountId, AdminRole)>,
}

/// Records a new session for `username`, lasting `hours`, working on the first account the user
/// holds; false when no enabled user has that name (disabled between the password check and now).
pub async fn insert_session(
    client: &impl GenericClient,
    id_hash: &[u8],
    username: &str,
    hours: i32,
) -> Result<bool, tokio_postgres::Error> {
    const SQL: &str = "INSERT INTO admin_sessions (id_hash, admin_id, expires_at, account_id)
         SELECT $1, a.id, now() + make_interval(hours => $3),
                CASE WHEN a.role = 'admin' THEN 1
                     ELSE coalesce((SELECT min(r.account_id) FROM admin_roles r WHERE r.admin_id = a.id), 1) END
         FROM admins a WHERE a.username = $2 AND a.disabled_at IS NULL";
    let statement = client.prepare_cached(SQL).await?;
    Ok(client.execute(&statement, &[&id_hash, &username, &hours]).await? == 1)
}

/// The enabled user of a live session.
pub async fn get_session_user(
    client: &impl GenericClient,
    id_hash: &[u8],
) -> Result<Option<SessionUser>, tokio_postgres::Error> {
    const SQL: &str = "SELECT a.username, a.role, s.account_id,
                coalesce(array_agg(r.account_id ORDER BY r.account_id) FILTER (WHERE r.account_id IS NOT NULL), '{}'),
                coalesce(array_agg(r.role ORDER BY r.account_id) FILTER (WHERE r.account_id IS NOT NULL), '{}')
         FROM admin_sessions s JOIN admins a ON a.id = s.admin_id
         LEFT JOIN admin_roles r ON r.admin_id = a.id
         WHERE s.id_hash = $1 AND s.expires_at > now() AND a.disabled_at IS NULL
         GROUP BY a.id, s.account_id";
    let statement = client.prepare_cached(SQL).await?;
    Ok(client.query_opt(&statement, &[&id_hash]).await?.map(|row| {
        let accounts: Vec<i64> = row.get(3);
        let roles: Vec<String> = row.get(4);
        SessionUser {
            username: row.get(0),
            // The CHECK constraint admits only the three roles.
            role: AdminRole::parse(row.get(1)).unwrap_or(AdminRole::Operator),
            account: AccountId(row.get(2)),
            roles: accounts
                .into_iter()
                .zip(roles)
                .filter_map(|(a, r)| AdminRole::parse(&r).map(|role| (AccountId(a), role)))
                .collect(),
        }
    }))
}

/// Switches a live session to `account` (the console's switcher).
pub async fn set_session_account(
    client: &impl GenericClient,
    id_hash: &[u8],
    account: AccountId,
) -> Result<bool, tokio_postgres::Error> {
    const SQL: &str = "UPDATE admin_sessions SET account_id = $2 WHERE id_hash = $1 AND expires_at > now()";
    let statement = client.prepare_cached(SQL).await?;
    Ok(client.execute(&statement, &[&id_hash, &account.get()]).await? == 1)
}

/// Ends one session (signing out).
pub async fn delete_session(client: &impl GenericClient, id_hash: &[u8]) -> Result<(), tokio_postgres::Error> {
    const SQL: &str = "DELETE FROM admin_sessions WHERE id_hash = $1";
    let statement = client.prepare_cached(SQL).await?;
    client.execute(&statement, &[&id_hash]).await?;
    Ok(())
}

/// Deletes expired sessions; run at each sign-in, which keeps the table to the live ones plus
/// those that expired since the last sign-in.
pub async fn delete_expired_sessions(client: &impl GenericClient) -> Result<u64, tokio_postgres::Error> {
    const SQL: &str = "DELETE FROM admin_sessions WHERE expires_at <= now()";
    let statement = client.prepare_cached(SQL).await?;
    client.execute(&statement, &[]).await
}
