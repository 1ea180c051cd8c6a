//! `wechat_api_stops` and `wechat_quota_clears`: the WeChat APIs stopped until Beijing midnight
//! after a 45009, and the operators' `clear_quota` resets. `app::quota` builds the client's
//! shared stops and the console's action on these statements. Times come from the caller (the
//! application's clock), so tests can move them.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

/// One stopped API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiStop {
    pub appid: String,
    pub path: String,
    pub until: DateTime<Utc>,
}

/// Stops `path` of `appid` until `until` (a later stop already recorded stays).
pub async fn stop(
    client: &impl GenericClient,
    appid: &str,
    path: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO wechat_api_stops (appid, path, until, stopped_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (appid, path) DO UPDATE
                 SET until = greatest(wechat_api_stops.until, excluded.until), stopped_at = excluded.stopped_at",
            &[&appid, &path, &until, &now],
        )
        .await?;
    Ok(())
}

/// The APIs stopped at `now`, of `appid` or of every AppID, by AppID and path.
pub async fn list_stops(
    client: &impl GenericClient,
    appid: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<ApiStop>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT appid, path, until FROM wechat_api_stops
             WHERE until > $2 AND ($1::text IS NULL OR appid = $1) ORDER BY appid, path",
            &[&appid, &now],
        )
        .await?;
    Ok(rows.iter().map(|r| ApiStop { appid: r.get(0), path: r.get(1), until: r.get(2) }).collect())
}

/// Ends every stop of `appid` (its quota was reset).
pub async fn clear_stops(client: &impl GenericClient, appid: &str) -> Result<u64, tokio_postgres::Error> {
    client.execute("DELETE FROM wechat_api_stops WHERE appid = $1", &[&appid]).await
}

/// After a reset, `account`'s jobs and tag changes waiting for a quota (their `last_error` starts
/// with one of `prefixes`) are due at once instead of at Beijing midnight. Returns how many.
pub async fn resume_quota_waits(
    client: &impl GenericClient,
    account: crate::domain::account::AccountId,
    prefixes: &[&str],
) -> Result<u64, tokio_postgres::Error> {
    let jobs = client
        .execute(
            "UPDATE jobs SET run_at = now() WHERE account_id = $1 AND state = 'pending' AND run_at > now()
               AND last_error ^@ ANY($2)",
            &[&account.get(), &prefixes],
        )
        .await?;
    let changes = client
        .execute(
            "UPDATE tag_outbox SET run_at = now() WHERE account_id = $1 AND state = 'pending' AND run_at > now()
               AND last_error ^@ ANY($2)",
            &[&account.get(), &prefixes],
        )
        .await?;
    Ok(jobs + changes)
}

/// Records a `clear_quota` reset; returns its id.
pub async fn record_clear(
    client: &impl GenericClient,
    appid: &str,
    cleared_by: &str,
    at: DateTime<Utc>,
) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "INSERT INTO wechat_quota_clears (appid, cleared_by, cleared_at) VALUES ($1, $2, $3) RETURNING id",
            &[&appid, &cleared_by, &at],
        )
        .await?
        .get(0))
}

/// Forgets a reset WeChat refused (it did not count it either).
pub async fn forget_clear(client: &impl GenericClient, id: i64) -> Result<(), tokio_postgres::Error> {
    client.execute("DELETE FROM wechat_quota_clears WHERE id = $1", &[&id]).await?;
    Ok(())
}

/// Resets of `appid` in `[from, to)`.
pub async fn count_clears(
    client: &impl GenericClient,
    appid: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT count(*) FROM wechat_quota_clears WHERE appid = $1 AND cleared_at >= $2 AND cleared_at < $3",
            &[&appid, &from, &to],
        )
        .await?;
    Ok(row.get(0))
}

/// When `openid` of `account` last did one of `kinds` (WeChat's CreateTime), if ever.
pub async fn last_interaction(
    client: &impl GenericClient,
    account: crate::domain::account::AccountId,
    openid: &str,
    kinds: &[&str],
) -> Result<Option<DateTime<Utc>>, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT max(occurred_at) FROM events WHERE account_id = $1 AND openid = $2 AND kind = ANY($3)",
            &[&account.get(), &openid, &kinds],
        )
        .await?;
    Ok(row.get(0))
}

/// Shows `note` as the campaign's `last_error` (what the campaign page shows), or, with `None`,
/// removes a note that starts with `prefix` (the wait it described is over).
pub async fn set_campaign_quota_note(
    client: &impl GenericClient,
    campaign_id: i64,
    note: Option<&str>,
    prefix: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaigns SET last_error = $2, updated_at = now()
             WHERE id = $1 AND ($2::text IS NOT NULL OR starts_with(last_error, $3))",
            &[&campaign_id, &note, &prefix],
        )
        .await?;
    Ok(())
}
