//! The `events` table: one row per push WeChat delivered, keyed by its dedupe key.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::Json;

use crate::domain::account::AccountId;

/// A push about to be stored; `payload` is serialised straight into the `jsonb` column.
#[derive(Debug)]
pub struct NewEvent<'a, P> {
    pub account: AccountId,
    /// Already scoped to the account ([`AccountId::scoped_dedupe_key`]).
    pub dedupe_key: &'a str,
    pub openid: &'a str,
    pub kind: &'a str,
    pub event_key: Option<&'a str>,
    pub occurred_at: DateTime<Utc>,
    pub payload: &'a P,
    /// The plaintext-mode `signature` the push came under (20 bytes), claimed once and for all
    /// in `callback_signatures`; `None` for encrypted pushes, whose signature covers the body.
    pub signature: Option<&'a [u8]>,
}

const INSERT_NEW: &str = "
    WITH input AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[], $7::bytea[],
                             $8::bigint[])
            AS i(dedupe_key, openid, kind, event_key, occurred_at, payload, signature, account_id)
    ), claimed AS (
        INSERT INTO callback_signatures (signature)
        SELECT DISTINCT signature FROM input WHERE signature IS NOT NULL
        ON CONFLICT (signature) DO NOTHING
        RETURNING signature
    ), carriers AS (
        SELECT DISTINCT ON (signature) dedupe_key FROM input
        WHERE signature IN (SELECT signature FROM claimed)
        ORDER BY signature, dedupe_key
    )
    INSERT INTO events (dedupe_key, openid, kind, event_key, occurred_at, payload, account_id)
    SELECT dedupe_key, openid, kind, event_key, occurred_at, payload, account_id FROM input
    WHERE signature IS NULL OR dedupe_key IN (SELECT dedupe_key FROM carriers)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING dedupe_key";

/// Inserts the events whose dedupe key is not stored yet and returns those keys.
///
/// An event that carries a signature is inserted only if this statement is the first to claim
/// that signature: a key neither returned nor already stored was refused as a replay. A retry
/// under its original signature is not inserted, and is found stored. Several events under one
/// signature in the same call (a captured query string replayed with other bodies into the same
/// batch) claim it once: only the one with the least dedupe key is inserted, the others are
/// refused. `ON CONFLICT` alone would let them all through, since it skips a signature once per
/// statement, not once per row.
///
/// A key or signature another transaction is inserting makes this wait for that transaction, so
/// a retry that races its original is recognised as a retry. Callers pass keys sorted, which
/// keeps two concurrent batches from locking each other's keys in opposite orders.
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
    let signatures: Vec<Option<&[u8]>> = events.iter().map(|e| e.signature).collect();
    let accounts: Vec<i64> = events.iter().map(|e| e.account.get()).collect();
    let statement = client.prepare_cached(INSERT_NEW).await?;
    let rows = client
        .query(&statement, &[&keys, &openids, &kinds, &event_keys, &occurred, &payloads, &signatures, &accounts])
        .await?;
    Ok(rows.into_iter().map(|row| row.get(0)).collect())
}

const CLAIM_SIGNATURE: &str = "INSERT INTO callback_signatures (signature) VALUES ($1) ON CONFLICT DO NOTHING";

/// Claims a plaintext signature that carries no push (the URL check's), so it cannot carry one later.
pub async fn insert_signature(client: &impl GenericClient, signature: &[u8]) -> Result<(), tokio_postgres::Error> {
    let statement = client.prepare_cached(CLAIM_SIGNATURE).await?;
    client.execute(&statement, &[&signature]).await?;
    Ok(())
}

const DELETE_EXPIRED_SIGNATURES: &str =
    "DELETE FROM callback_signatures WHERE seen_at < now() - make_interval(secs => $1)";

/// Forgets signatures first seen more than `older_than` ago: their timestamps are past the
/// replay window by then, so the callback refuses them as stale anyway. Returns how many went.
pub async fn delete_expired_signatures(
    client: &impl GenericClient,
    older_than: std::time::Duration,
) -> Result<u64, tokio_postgres::Error> {
    let statement = client.prepare_cached(DELETE_EXPIRED_SIGNATURES).await?;
    client.execute(&statement, &[&older_than.as_secs_f64()]).await
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
