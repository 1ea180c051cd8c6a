//! `accounts`: the Official Accounts this deployment serves. Secrets are stored sealed (the
//! caller seals and opens them); this module never sees them in the clear.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

/// An account as stored.
#[derive(Debug, Clone)]
pub struct AccountRow {
    pub id: i64,
    pub name: String,
    pub display_name: String,
    pub kind: String,
    pub appid: Option<String>,
    pub app_secret_sealed: Option<Vec<u8>>,
    pub token_sealed: Option<Vec<u8>>,
    pub aes_key_sealed: Option<Vec<u8>>,
    pub sealed_with: Option<String>,
    pub message_mode: String,
    pub api_base: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
}

const COLUMNS: &str = "id, name, display_name, kind, appid, app_secret_sealed, token_sealed, aes_key_sealed, \
                       sealed_with, message_mode, api_base, created_at, updated_at, created_by";

fn from_row(row: &tokio_postgres::Row) -> AccountRow {
    AccountRow {
        id: row.get(0),
        name: row.get(1),
        display_name: row.get(2),
        kind: row.get(3),
        appid: row.get(4),
        app_secret_sealed: row.get(5),
        token_sealed: row.get(6),
        aes_key_sealed: row.get(7),
        sealed_with: row.get(8),
        message_mode: row.get(9),
        api_base: row.get(10),
        created_at: row.get(11),
        updated_at: row.get(12),
        created_by: row.get(13),
    }
}

/// Every account, first one first.
pub async fn list_accounts(client: &impl GenericClient) -> Result<Vec<AccountRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM accounts ORDER BY id");
    Ok(client.query(&sql, &[]).await?.iter().map(from_row).collect())
}

pub async fn find_account(client: &impl GenericClient, id: i64) -> Result<Option<AccountRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE id = $1");
    Ok(client.query_opt(&sql, &[&id]).await?.as_ref().map(from_row))
}

/// What changes when `accounts` changes: every instance polls it to reload its registry.
pub async fn accounts_stamp(
    client: &impl GenericClient,
) -> Result<(i64, Option<DateTime<Utc>>), tokio_postgres::Error> {
    let row = client.query_one("SELECT count(*), max(updated_at) FROM accounts", &[]).await?;
    Ok((row.get(0), row.get(1)))
}

/// The fields an admin sets; a `None` secret keeps the stored one.
#[derive(Debug, Clone)]
pub struct AccountFields<'a> {
    pub name: &'a str,
    pub display_name: &'a str,
    pub kind: &'a str,
    pub appid: Option<&'a str>,
    pub message_mode: &'a str,
    pub api_base: Option<&'a str>,
}

/// Sealed secrets to store; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SealedSecrets {
    pub app_secret: Option<Vec<u8>>,
    pub token: Option<Vec<u8>>,
    pub aes_key: Option<Vec<u8>>,
    pub sealed_with: Option<String>,
}

/// Why an account could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AccountWriteError {
    #[error("an account with this name exists")]
    NameTaken,
    #[error("an account with this AppID exists")]
    AppidTaken,
    #[error(transparent)]
    Query(#[from] tokio_postgres::Error),
}

fn classify(error: tokio_postgres::Error) -> AccountWriteError {
    match error.as_db_error().map(|db| (db.code().clone(), db.constraint().map(str::to_owned))) {
        Some((code, Some(constraint))) if code == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
            if constraint.contains("appid") { AccountWriteError::AppidTaken } else { AccountWriteError::NameTaken }
        }
        _ => AccountWriteError::Query(error),
    }
}

pub async fn insert_account(
    client: &impl GenericClient,
    fields: &AccountFields<'_>,
    secrets: &SealedSecrets,
    created_by: &str,
) -> Result<AccountRow, AccountWriteError> {
    let sql = format!(
        "INSERT INTO accounts (name, display_name, kind, appid, message_mode, api_base, app_secret_sealed,
                               token_sealed, aes_key_sealed, sealed_with, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
    );
    let row = client
        .query_one(
            &sql,
            &[
                &fields.name,
                &fields.display_name,
                &fields.kind,
                &fields.appid,
                &fields.message_mode,
                &fields.api_base,
                &secrets.app_secret,
                &secrets.token,
                &secrets.aes_key,
                &secrets.sealed_with,
                &created_by,
            ],
        )
        .await
        .map_err(classify)?;
    Ok(from_row(&row))
}

/// Updates the fields and the secrets given; `None` when there is no such account.
pub async fn update_account(
    client: &impl GenericClient,
    id: i64,
    fields: &AccountFields<'_>,
    secrets: &SealedSecrets,
) -> Result<Option<AccountRow>, AccountWriteError> {
    let sql = format!(
        "UPDATE accounts SET name = $2, display_name = $3, kind = $4, appid = $5, message_mode = $6, api_base = $7,
                app_secret_sealed = coalesce($8, app_secret_sealed),
                token_sealed = coalesce($9, token_sealed),
                aes_key_sealed = coalesce($10, aes_key_sealed),
                sealed_with = coalesce($11, sealed_with),
                updated_at = clock_timestamp()
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = client
        .query_opt(
            &sql,
            &[
                &id,
                &fields.name,
                &fields.display_name,
                &fields.kind,
                &fields.appid,
                &fields.message_mode,
                &fields.api_base,
                &secrets.app_secret,
                &secrets.token,
                &secrets.aes_key,
                &secrets.sealed_with,
            ],
        )
        .await
        .map_err(classify)?;
    Ok(row.as_ref().map(from_row))
}

/// Replaces all three sealed secrets at once (a key rotation reseals whole rows).
pub async fn reseal_account(
    client: &impl GenericClient,
    id: i64,
    secrets: &SealedSecrets,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE accounts SET app_secret_sealed = $2, token_sealed = $3, aes_key_sealed = $4, sealed_with = $5
             WHERE id = $1",
            &[&id, &secrets.app_secret, &secrets.token, &secrets.aes_key, &secrets.sealed_with],
        )
        .await?;
    Ok(())
}

/// The environment variables define the first account's public fields; its secrets stay in the
/// environment. Touches `updated_at` only when something changed, so restarts reload nothing.
pub async fn sync_first_account_from_env(
    client: &impl GenericClient,
    kind: &str,
    appid: Option<&str>,
    message_mode: &str,
    api_base: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE accounts SET kind = $1, appid = $2, message_mode = $3, api_base = $4, updated_at = clock_timestamp()
             WHERE id = 1 AND (kind, appid, message_mode, api_base) IS DISTINCT FROM ($1, $2, $3, $4)",
            &[&kind, &appid, &message_mode, &api_base],
        )
        .await?;
    Ok(())
}

/// Whether any account holds a sealed secret: then the deployment key is required.
pub async fn any_sealed_secrets(client: &impl GenericClient) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE app_secret_sealed IS NOT NULL OR token_sealed IS NOT NULL
                                                 OR aes_key_sealed IS NOT NULL)",
            &[],
        )
        .await?;
    Ok(row.get(0))
}
