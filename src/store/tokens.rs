//! `access_tokens`: the shared home of each AppID's WeChat access token. The row lock in
//! [`lock_token`] is what lets one process at a time fetch while the rest wait and reuse;
//! `app::tokens` builds the WeChat client's token store on these statements.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

/// A token as stored: both parts are empty until the first fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

fn token_of(row: &tokio_postgres::Row) -> Option<StoredToken> {
    let token: Option<String> = row.get(0);
    let expires_at: Option<DateTime<Utc>> = row.get(1);
    Some(StoredToken { token: token?, expires_at: expires_at? })
}

const SELECT: &str = "SELECT token, expires_at FROM access_tokens WHERE appid = $1";
const ENSURE_ROW: &str = "INSERT INTO access_tokens (appid) VALUES ($1) ON CONFLICT (appid) DO NOTHING";
const SELECT_FOR_UPDATE: &str = "SELECT token, expires_at FROM access_tokens WHERE appid = $1 FOR UPDATE";
const UPDATE: &str = "
    UPDATE access_tokens SET token = $2, expires_at = $3, fetched_at = now(), fetch_count = fetch_count + 1
    WHERE appid = $1";

/// The stored token, without waiting for a fetch in progress.
pub async fn get_token(client: &impl GenericClient, appid: &str) -> Result<Option<StoredToken>, tokio_postgres::Error> {
    let statement = client.prepare_cached(SELECT).await?;
    let row = client.query_opt(&statement, &[&appid]).await?;
    Ok(row.as_ref().and_then(token_of))
}

/// Makes sure the AppID has a row to lock (outside the locking transaction, so two first
/// fetches do not both insert).
pub async fn ensure_token_row(client: &impl GenericClient, appid: &str) -> Result<(), tokio_postgres::Error> {
    client.execute(ENSURE_ROW, &[&appid]).await?;
    Ok(())
}

/// Locks the AppID's row until the transaction ends and reads it: other processes wanting a
/// token wait here until this one has stored its fetch.
pub async fn lock_token(txn: &impl GenericClient, appid: &str) -> Result<Option<StoredToken>, tokio_postgres::Error> {
    let row = txn.query_one(SELECT_FOR_UPDATE, &[&appid]).await?;
    Ok(token_of(&row))
}

/// Stores a freshly fetched token and counts the fetch.
pub async fn update_token(
    txn: &impl GenericClient,
    appid: &str,
    token: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), tokio_postgres::Error> {
    txn.execute(UPDATE, &[&appid, &token, &expires_at]).await?;
    Ok(())
}

const FORGET: &str = "UPDATE access_tokens SET token = NULL, expires_at = NULL WHERE appid = $1";

/// Drops the shared access token of `appid`: the next call fetches a new one (an account's API
/// base changed, and the old token must not travel to the new address).
pub async fn forget_token(client: &impl GenericClient, appid: &str) -> Result<(), tokio_postgres::Error> {
    client.execute(FORGET, &[&appid]).await?;
    Ok(())
}
