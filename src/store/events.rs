//! The `events` table: one row per push WeChat delivered, keyed by its dedupe key.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::Json;

/// A push about to be stored; `payload` is serialised straight into the `jsonb` column.
#[derive(Debug)]
pub struct NewEvent<'a, P> {
    pub dedupe_key: &'a str,
    pub openid: &'a str,
    pub kind: &'a str,
    pub event_key: Option<&'a str>,
    pub occurred_at: DateTime<Utc>,
    pub payload: &'a P,
}

const INSERT_NEW: &str = "
    INSERT INTO events (dedupe_key, openid, kind, event_key, occurred_at, payload)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[])
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING dedupe_key";

/// Inserts the events whose dedupe key is not stored yet and returns those keys.
///
/// A key another transaction is inserting makes this wait for that transaction, so a retry that
/// races its original is recognised as a retry. Callers pass keys sorted, which keeps two
/// concurrent batches from locking each other's keys in opposite orders.
#[tracing::instrument(skip_all, fields(batch.size = events.len()))]
pub async fn insert_new_events<P: serde::Serialize + std::fmt::Debug + Sync>(
    client: &impl GenericClient,
    events: &[NewEvent<'_, P>],
) -> Result<Vec<String>, tokio_postgres::Error> {
    let keys: Vec<&str> = events.iter().map(|e| e.dedupe_key).collect();
    let openids: Vec<&str> = events.iter().map(|e| e.openid).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
    let event_keys: Vec<Option<&str>> = events.iter().map(|e| e.event_key).collect();
    let occurred: Vec<DateTime<Utc>> = events.iter().map(|e| e.occurred_at).collect();
    let payloads: Vec<Json<&P>> = events.iter().map(|e| Json(e.payload)).collect();
    let statement = client.prepare_cached(INSERT_NEW).await?;
    let rows = client.query(&statement, &[&keys, &openids, &kinds, &event_keys, &occurred, &payloads]).await?;
    Ok(rows.into_iter().map(|row| row.get(0)).collect())
}

const SET_REPLIES: &str = "
    UPDATE events SET reply = r.reply
    FROM unnest($1::text[], $2::text[]) AS r(dedupe_key, reply)
    WHERE events.dedupe_key = r.dedupe_key";

/// Records the passive replies sent for newly stored events, so retries get them again.
pub async fn update_replies(
    client: &impl GenericClient,
    replies: &[(&str, &str)],
) -> Result<(), tokio_postgres::Error> {
    if replies.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = replies.iter().map(|(k, _)| *k).collect();
    let texts: Vec<&str> = replies.iter().map(|(_, r)| *r).collect();
    let statement = client.prepare_cached(SET_REPLIES).await?;
    client.execute(&statement, &[&keys, &texts]).await?;
    Ok(())
}

const GET_REPLIES: &str = "SELECT dedupe_key, reply FROM events WHERE dedupe_key = ANY($1::text[])";

/// The stored replies of events already received, by dedupe key.
pub async fn list_replies(
    client: &impl GenericClient,
    keys: &[&str],
) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let statement = client.prepare_cached(GET_REPLIES).await?;
    let rows = client.query(&statement, &[&keys]).await?;
    Ok(rows.into_iter().map(|row| (row.get(0), row.get(1))).collect())
}
