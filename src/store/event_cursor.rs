//! Where a consumer of `events` stands, and what it reads: the events past its mark and those in
//! its holes (ids below the mark whose transactions had not committed when it passed them).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

/// The consumer that applies tag changes, follower activity and dynamic tags.
pub const TAGGING: &str = "tagging";

/// A consumer's position: every id <= `mark` is applied except `holes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    pub mark: i64,
    pub holes: Vec<i64>,
}

/// Locks the consumer's cursor for the caller's transaction; `None` when another consumer holds
/// it (it is applying a batch: skip rather than wait).
pub async fn lock_cursor(client: &impl GenericClient, name: &str) -> Result<Option<Cursor>, tokio_postgres::Error> {
    let statement =
        client.prepare_cached("SELECT mark, holes FROM event_cursors WHERE name = $1 FOR UPDATE SKIP LOCKED").await?;
    Ok(client.query_opt(&statement, &[&name]).await?.map(|row| Cursor { mark: row.get(0), holes: row.get(1) }))
}

/// Moves the consumer to `cursor`, in the transaction that applied what it passed.
pub async fn save_cursor(
    client: &impl GenericClient,
    name: &str,
    cursor: &Cursor,
) -> Result<(), tokio_postgres::Error> {
    let statement = client
        .prepare_cached("UPDATE event_cursors SET mark = $2, holes = $3, updated_at = now() WHERE name = $1")
        .await?;
    client.execute(&statement, &[&name, &cursor.mark, &cursor.holes]).await?;
    Ok(())
}

/// An event as its consumer sees it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: i64,
    pub account: AccountId,
    pub openid: String,
    pub kind: String,
    pub event_key: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub effects: Option<serde_json::Value>,
    /// When the writer stored it (the database's clock).
    pub received_at: DateTime<Utc>,
    /// Seconds from the event's commit (its `received_at`, by the database's clock) to its read.
    pub age_at_read: f64,
}

const COLUMNS: &str = "id, account_id, openid, kind, event_key, occurred_at, effects,
    extract(epoch FROM clock_timestamp() - received_at)::float8, received_at";

/// Events with `id > after` (at most `limit`, in id order), and those with an id in `holes`.
/// Two statements, each an index scan whatever the statistics (an `OR` of the two is not).
pub async fn events_after(
    client: &impl GenericClient,
    cursor: &Cursor,
    limit: i64,
) -> Result<Vec<StoredEvent>, tokio_postgres::Error> {
    let newer =
        client.prepare_cached(&format!("SELECT {COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2")).await?;
    let mut rows = client.query(&newer, &[&cursor.mark, &limit]).await?;
    if !cursor.holes.is_empty() {
        let late = client.prepare_cached(&format!("SELECT {COLUMNS} FROM events WHERE id = ANY($1)")).await?;
        rows.extend(client.query(&late, &[&cursor.holes]).await?);
    }
    Ok(rows
        .iter()
        .map(|r| StoredEvent {
            id: r.get(0),
            account: AccountId(r.get(1)),
            openid: r.get(2),
            kind: r.get(3),
            event_key: r.get(4),
            occurred_at: r.get(5),
            effects: r.get(6),
            age_at_read: r.get(7),
            received_at: r.get(8),
        })
        .collect())
}

/// Keeps the consumer `name` from committing a pass until the caller's transaction ends (waiting
/// for one in progress): a read of applied state and of [`pending_effects`] in between then sees
/// each event in exactly one of them.
pub async fn hold_off_consumer(client: &impl GenericClient, name: &str) -> Result<(), tokio_postgres::Error> {
    let statement = client.prepare_cached("SELECT 1 FROM event_cursors WHERE name = $1 FOR SHARE").await?;
    client.execute(&statement, &[&name]).await?;
    Ok(())
}

/// Whether an event of `account` from `openid` still waits for the consumer `name`.
pub async fn has_unapplied(
    client: &impl GenericClient,
    name: &str,
    account: AccountId,
    openid: &str,
) -> Result<bool, tokio_postgres::Error> {
    let statement = client
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM events e, event_cursors c
                            WHERE c.name = $1 AND e.openid = $2 AND e.account_id = $3
                              AND (e.id > c.mark OR e.id = ANY(c.holes)))",
        )
        .await?;
    Ok(client.query_one(&statement, &[&name, &openid, &account.get()]).await?.get(0))
}

/// The effects of `account`'s events from `openids` that the consumer has not applied yet, in
/// the order it will apply them: what a follower earned in the last moment, for a decision that
/// reads their tags.
pub async fn pending_effects(
    client: &impl GenericClient,
    name: &str,
    account: AccountId,
    openids: &[&str],
) -> Result<Vec<(String, serde_json::Value)>, tokio_postgres::Error> {
    if openids.is_empty() {
        return Ok(Vec::new());
    }
    let statement = client
        .prepare_cached(
            "SELECT e.openid, e.effects FROM events e, event_cursors c
             WHERE c.name = $1 AND e.openid = ANY($2) AND e.account_id = $3 AND e.effects IS NOT NULL
               AND (e.id > c.mark OR e.id = ANY(c.holes))
             ORDER BY e.id",
        )
        .await?;
    Ok(client
        .query(&statement, &[&name, &openids, &account.get()])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}
