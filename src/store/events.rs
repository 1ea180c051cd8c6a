//! The `events` table: one row per push WeChat delivered, keyed by its dedupe key.

use std::collections::HashMap;

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
    /// The passive reply (plaintext XML) decided for the push, stored with it so a retry gets
    /// the same answer; `None` for `success`.
    pub reply: Option<&'a str>,
    /// What the push decided beyond its reply, for the event consumer to apply.
    pub effects: Option<&'a serde_json::Value>,
    /// The decision assumed the follower had no quiz session touched after this time: if they
    /// have one, nothing is written ([`Inserted::Redecide`]).
    pub no_quiz_session_since: Option<DateTime<Utc>>,
}

/// What storing a batch found for one dedupe key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored now.
    Inserted,
    /// Stored before (a retry), with the reply it was given (empty: `success`).
    Stored { reply: String },
}

/// What [`insert_new_events`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// By dedupe key; a key missing was neither stored now nor found stored: refused as a replay,
    /// or stored by a transaction that committed while this statement ran ([`list_replies`]).
    Done(HashMap<String, Outcome>),
    /// A decision's assumption no longer holds (the configuration it was made under is no
    /// longer current, or a follower is in a quiz after all): nothing was written.
    Redecide,
}

// One statement, so a batch costs one round trip and one commit: the signature claims, the events
// with their replies and effects, and the replies of retries stored before. The version guard makes
// the whole statement a no-op when rules changed after the batch was decided against them.
// Rows this statement inserts are invisible to its own final SELECT, so `events e` finds only
// earlier pushes.
//
// The writers keep their statements' cached plans (planning this one per batch cost a third of
// Postgres's CPU), and a plan cached while `events` or `quiz_sessions` was empty would join them
// by a full scan for ever after. So every read of them here is a lateral probe of a unique key
// per pushed row, kept from being flattened into a join by `OFFSET 0`: no plan can scan them
// whole (`tests/it/plans.rs`).
const INSERT_NEW: &str = "
    WITH input AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[], $7::bytea[],
                             $8::bigint[], $9::text[], $10::jsonb[], $11::timestamptz[])
            AS i(dedupe_key, openid, kind, event_key, occurred_at, payload, signature, account_id, reply, effects,
                 no_quiz_session_since)
    ), current_config AS (
        SELECT 1 FROM config_version WHERE ($12::bigint IS NULL OR version = $12)
          AND NOT EXISTS (SELECT 1 FROM input i
                          CROSS JOIN LATERAL (SELECT 1 FROM quiz_sessions s
                                              WHERE s.account_id = i.account_id AND s.openid = i.openid
                                                AND s.updated_at > i.no_quiz_session_since OFFSET 0) fresh
                          WHERE i.no_quiz_session_since IS NOT NULL)
    ), claimed AS (
        INSERT INTO callback_signatures (signature)
        SELECT DISTINCT signature FROM input WHERE signature IS NOT NULL AND EXISTS (SELECT 1 FROM current_config)
        ON CONFLICT (signature) DO NOTHING
        RETURNING signature
    ), carriers AS (
        SELECT DISTINCT ON (signature) dedupe_key FROM input
        WHERE signature IN (SELECT signature FROM claimed)
        ORDER BY signature, dedupe_key
    ), inserted AS (
        INSERT INTO events (dedupe_key, openid, kind, event_key, occurred_at, payload, account_id, reply, effects)
        SELECT dedupe_key, openid, kind, event_key, occurred_at, payload, account_id, coalesce(reply, ''), effects
        FROM input
        WHERE EXISTS (SELECT 1 FROM current_config)
          AND (signature IS NULL OR dedupe_key IN (SELECT dedupe_key FROM carriers))
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING dedupe_key
    )
    SELECT dedupe_key, NULL::text FROM inserted
    UNION ALL
    SELECT e.dedupe_key, e.reply FROM input i
    CROSS JOIN LATERAL (SELECT dedupe_key, reply FROM events WHERE dedupe_key = i.dedupe_key OFFSET 0) e
    WHERE EXISTS (SELECT 1 FROM current_config)
    UNION ALL
    SELECT NULL, NULL WHERE NOT EXISTS (SELECT 1 FROM current_config)";

/// Inserts the events whose dedupe key is not stored yet, with their replies and effects, and
/// finds the replies of those stored before: all in one statement, which writes nothing when
/// `config_version` is no longer `decided_under` (`None`: no guard) or a follower assumed out of
/// any quiz is in one.
///
/// An event that carries a signature is inserted only if this statement is the first to claim
/// that signature: a key neither inserted nor already stored was refused as a replay. A retry
/// under its original signature is not inserted, and is found stored. Several events under one
/// signature in the same call (a captured query string replayed with other bodies into the same
/// batch) claim it once: only the one with the least dedupe key is inserted, the others are
/// refused. `ON CONFLICT` alone would let them all through, since it skips a signature once per
/// statement, not once per row.
///
/// A key or signature another transaction is inserting makes this wait for that transaction, so
/// a retry that races its original is recognised as a retry (its reply then comes from
/// [`list_replies`]). Callers pass keys sorted, which keeps two concurrent batches from locking
/// each other's keys in opposite orders.
pub async fn insert_new_events<P: serde::Serialize + std::fmt::Debug + Sync>(
    client: &impl GenericClient,
    events: &[NewEvent<'_, P>],
    decided_under: Option<i64>,
) -> Result<Inserted, tokio_postgres::Error> {
    let keys: Vec<&str> = events.iter().map(|e| e.dedupe_key).collect();
    let openids: Vec<&str> = events.iter().map(|e| e.openid).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
    let event_keys: Vec<Option<&str>> = events.iter().map(|e| e.event_key).collect();
    let occurred: Vec<DateTime<Utc>> = events.iter().map(|e| e.occurred_at).collect();
    let payloads: Vec<Json<&P>> = events.iter().map(|e| Json(e.payload)).collect();
    let signatures: Vec<Option<&[u8]>> = events.iter().map(|e| e.signature).collect();
    let accounts: Vec<i64> = events.iter().map(|e| e.account.get()).collect();
    let replies: Vec<Option<&str>> = events.iter().map(|e| e.reply).collect();
    let effects: Vec<Option<&serde_json::Value>> = events.iter().map(|e| e.effects).collect();
    let no_quiz_since: Vec<Option<DateTime<Utc>>> = events.iter().map(|e| e.no_quiz_session_since).collect();
    let statement = client.prepare_cached(INSERT_NEW).await?;
    let rows = client
        .query(
            &statement,
            &[
                &keys,
                &openids,
                &kinds,
                &event_keys,
                &occurred,
                &payloads,
                &signatures,
                &accounts,
                &replies,
                &effects,
                &no_quiz_since,
                &decided_under,
            ],
        )
        .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let Some(key) = row.get::<_, Option<String>>(0) else { return Ok(Inserted::Redecide) };
        let outcome = match row.get::<_, Option<String>>(1) {
            None => Outcome::Inserted,
            Some(reply) => Outcome::Stored { reply },
        };
        found.insert(key, outcome);
    }
    Ok(Inserted::Done(found))
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

// A probe per key whatever the plan (see `INSERT_NEW`).
const GET_REPLIES: &str = "SELECT e.dedupe_key, e.reply FROM unnest($1::text[]) AS k (key)
    CROSS JOIN LATERAL (SELECT dedupe_key, reply FROM events WHERE dedupe_key = k.key OFFSET 0) e";

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
