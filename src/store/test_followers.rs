//! 测试粉丝: the followers an admin keeps as preview recipients, per account.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

/// A follower marked as a tester.
#[derive(Debug, Clone)]
pub struct TesterRow {
    pub openid: String,
    pub note: String,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
    /// Whether the follower still follows the account (WeChat previews reach only followers).
    pub subscribed: bool,
}

/// The account's testers, oldest mark first.
pub async fn list_testers(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Vec<TesterRow>, tokio_postgres::Error> {
    let statement = client
        .prepare_cached(
            "SELECT t.openid, t.note, t.added_by, t.added_at, coalesce(f.subscribed, false)
             FROM test_followers t
             LEFT JOIN followers f ON f.account_id = t.account_id AND f.openid = t.openid
             WHERE t.account_id = $1 ORDER BY t.added_at, t.openid",
        )
        .await?;
    let rows = client.query(&statement, &[&account.get()]).await?;
    Ok(rows
        .iter()
        .map(|r| TesterRow {
            openid: r.get(0),
            note: r.get(1),
            added_by: r.get(2),
            added_at: r.get(3),
            subscribed: r.get(4),
        })
        .collect())
}

/// Marks a known follower of the account as a tester, or renews the note of one already marked.
/// `false`: the account has no such follower.
pub async fn mark_tester(
    client: &impl GenericClient,
    account: AccountId,
    openid: &str,
    note: &str,
    added_by: &str,
) -> Result<bool, tokio_postgres::Error> {
    let statement = client
        .prepare_cached(
            "INSERT INTO test_followers (account_id, openid, note, added_by)
             SELECT account_id, openid, $3, $4 FROM followers WHERE account_id = $1 AND openid = $2
             ON CONFLICT (account_id, openid) DO UPDATE SET note = excluded.note",
        )
        .await?;
    Ok(client.execute(&statement, &[&account.get(), &openid, &note, &added_by]).await? == 1)
}

/// `false`: the follower was not marked.
pub async fn unmark_tester(
    client: &impl GenericClient,
    account: AccountId,
    openid: &str,
) -> Result<bool, tokio_postgres::Error> {
    let statement = client.prepare_cached("DELETE FROM test_followers WHERE account_id = $1 AND openid = $2").await?;
    Ok(client.execute(&statement, &[&account.get(), &openid]).await? == 1)
}

pub async fn is_tester(
    client: &impl GenericClient,
    account: AccountId,
    openid: &str,
) -> Result<bool, tokio_postgres::Error> {
    let statement = client.prepare_cached("SELECT 1 FROM test_followers WHERE account_id = $1 AND openid = $2").await?;
    Ok(client.query_opt(&statement, &[&account.get(), &openid]).await?.is_some())
}

/// The simulator's followers (openids with the test prefix) of the account, most recently active
/// first, from their own partial index.
pub async fn list_simulated_followers(
    client: &impl GenericClient,
    account: AccountId,
    limit: i64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let statement = client
        .prepare_cached(
            "SELECT openid FROM followers
             WHERE account_id = $1 AND starts_with(openid, 'test_')
             ORDER BY last_seen_at DESC, openid LIMIT $2",
        )
        .await?;
    Ok(client.query(&statement, &[&account.get(), &limit]).await?.iter().map(|r| r.get(0)).collect())
}
