//! `admin_sessions`: which admin-page sessions are still valid (issue 15 point 5).
//!
//! The cookie holds a random id; this table holds its hash, the user and the expiry. Reading
//! the session and the user's row is one indexed query per request, so a signed-out, expired,
//! disabled or changed user's cookie stops working on every instance at once.

use deadpool_postgres::GenericClient;

use crate::domain::admin::AdminRole;

/// The user a live session belongs to.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub username: String,
    pub role: AdminRole,
}

/// Records a new session for `username`, lasting `hours`; false when no enabled user has that
/// name (disabled between the password check and now).
pub async fn insert_session(
    client: &impl GenericClient,
    id_hash: &[u8],
    username: &str,
    hours: i32,
) -> Result<bool, tokio_postgres::Error> {
    const SQL: &str = "INSERT INTO admin_sessions (id_hash, admin_id, expires_at)
         SELECT $1, id, now() + make_interval(hours => $3) FROM admins WHERE username = $2 AND disabled_at IS NULL";
    let statement = client.prepare_cached(SQL).await?;
    Ok(client.execute(&statement, &[&id_hash, &username, &hours]).await? == 1)
}

/// The enabled user of a live session.
pub async fn get_session_user(
    client: &impl GenericClient,
    id_hash: &[u8],
) -> Result<Option<SessionUser>, tokio_postgres::Error> {
    const SQL: &str = "SELECT a.username, a.role FROM admin_sessions s JOIN admins a ON a.id = s.admin_id
         WHERE s.id_hash = $1 AND s.expires_at > now() AND a.disabled_at IS NULL";
    let statement = client.prepare_cached(SQL).await?;
    Ok(client.query_opt(&statement, &[&id_hash]).await?.map(|row| SessionUser {
        username: row.get(0),
        // The CHECK constraint admits only the three roles.
        role: AdminRole::parse(row.get(1)).unwrap_or(AdminRole::Operator),
    }))
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
