//! `tag_outbox`: tag changes WeChat has not learned yet, one row per (follower, tag) holding the
//! last word. Workers claim rows with a lease (`FOR UPDATE SKIP LOCKED`, then commit at once, so
//! the callback never waits on a worker's WeChat call), send them, and delete a row only if it
//! did not change meanwhile; a changed row is released and sent again with its new word.
//!
//! A claim names the session that took it (`claimed_by`, its backend pid). The claimer keeps that
//! session open until the round is recorded, so when its process dies the session ends with it
//! and the claim lapses at once; the lease only bounds claims whose session lives on (behind a
//! transaction pooler, say).

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

/// A claimed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// The account of the tag (and so of the follower and the WeChat call).
    pub account: AccountId,
    pub openid: String,
    pub tag_id: i64,
    pub add: bool,
    pub seq: i64,
    pub attempts: i32,
    pub path: String,
    pub wechat_tag_id: Option<i64>,
}

const CLAIM: &str = "
    WITH due AS (
        SELECT openid, tag_id FROM tag_outbox
        WHERE state = 'pending' AND run_at <= now()
          AND (claimed_until IS NULL OR claimed_until < now()
               OR claimed_by NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL))
        ORDER BY run_at, seq
        LIMIT $1
        FOR UPDATE SKIP LOCKED
    )
    UPDATE tag_outbox o SET claimed_until = now() + make_interval(secs => $2), claimed_by = pg_backend_pid()
    FROM due, tags t
    WHERE o.openid = due.openid AND o.tag_id = due.tag_id AND t.id = o.tag_id
    RETURNING o.openid, o.tag_id, o.add, o.seq, o.attempts, t.path, t.wechat_tag_id, o.account_id";

// Each account's due rows are claimed on their own, up to a cap each, so one account's backlog
// (or an outage that keeps its rows due) cannot take a round's whole claim from the others.
const CLAIM_PER_ACCOUNT: &str = "
    WITH due AS (
        SELECT d.openid, d.tag_id FROM unnest($1::bigint[]) AS a(account_id)
        CROSS JOIN LATERAL (
            SELECT openid, tag_id FROM tag_outbox
            WHERE account_id = a.account_id AND state = 'pending' AND run_at <= now()
              AND (claimed_until IS NULL OR claimed_until < now()
                   OR claimed_by NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL))
            ORDER BY run_at, seq
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        ) d
    )
    UPDATE tag_outbox o SET claimed_until = now() + make_interval(secs => $3), claimed_by = pg_backend_pid()
    FROM due, tags t
    WHERE o.openid = due.openid AND o.tag_id = due.tag_id AND t.id = o.tag_id
    RETURNING o.openid, o.tag_id, o.add, o.seq, o.attempts, t.path, t.wechat_tag_id, o.account_id";

fn item(r: &tokio_postgres::Row) -> OutboxItem {
    OutboxItem {
        openid: r.get(0),
        tag_id: r.get(1),
        add: r.get(2),
        seq: r.get(3),
        attempts: r.get(4),
        path: r.get(5),
        wechat_tag_id: r.get(6),
        account: AccountId(r.get(7)),
    }
}

/// Claims up to `limit` due changes of any account for `lease`, or until `client`'s session
/// ends: keep it open until the claimed rows are completed or failed.
pub async fn claim_due(
    client: &impl GenericClient,
    limit: i64,
    lease: Duration,
) -> Result<Vec<OutboxItem>, tokio_postgres::Error> {
    let statement = client.prepare_cached(CLAIM).await?;
    let rows = client.query(&statement, &[&limit, &lease.as_secs_f64()]).await?;
    Ok(rows.iter().map(item).collect())
}

/// [`claim_due`] across `accounts`, up to `per_account` changes of each.
pub async fn claim_due_per_account(
    client: &impl GenericClient,
    accounts: &[AccountId],
    per_account: i64,
    lease: Duration,
) -> Result<Vec<OutboxItem>, tokio_postgres::Error> {
    if accounts.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = accounts.iter().map(|a| a.get()).collect();
    let statement = client.prepare_cached(CLAIM_PER_ACCOUNT).await?;
    let rows = client.query(&statement, &[&ids, &per_account, &lease.as_secs_f64()]).await?;
    Ok(rows.iter().map(item).collect())
}

fn keys<'a>(items: &[&'a OutboxItem]) -> (Vec<&'a str>, Vec<i64>, Vec<i64>) {
    (
        items.iter().map(|i| i.openid.as_str()).collect(),
        items.iter().map(|i| i.tag_id).collect(),
        items.iter().map(|i| i.seq).collect(),
    )
}

const COMPLETE: &str = "
    DELETE FROM tag_outbox o USING unnest($1::text[], $2::bigint[], $3::bigint[]) AS c(openid, tag_id, seq)
    WHERE o.openid = c.openid AND o.tag_id = c.tag_id AND o.seq = c.seq";

const RELEASE: &str = "
    UPDATE tag_outbox o SET claimed_until = NULL, claimed_by = NULL
    FROM unnest($1::text[], $2::bigint[]) AS c(openid, tag_id)
    WHERE o.openid = c.openid AND o.tag_id = c.tag_id";

/// Deletes `items` unsent: changes WeChat must never hear of (a simulated test follower's, whom
/// WeChat does not know), so the mirror of WeChat's state is left as it is.
pub async fn discard(client: &impl GenericClient, items: &[&OutboxItem]) -> Result<(), tokio_postgres::Error> {
    if items.is_empty() {
        return Ok(());
    }
    let (openids, tags, seqs) = keys(items);
    client.execute(COMPLETE, &[&openids, &tags, &seqs]).await?;
    client.execute(RELEASE, &[&openids, &tags]).await?;
    Ok(())
}

/// Records that WeChat learned `items` (all of one account, WeChat tag and direction): rows that
/// did not change are deleted, changed ones released, and the mirror of WeChat's state updated.
pub async fn complete(
    client: &impl GenericClient,
    items: &[&OutboxItem],
    wechat_tag_id: i64,
) -> Result<(), tokio_postgres::Error> {
    if items.is_empty() {
        return Ok(());
    }
    let (openids, tags, seqs) = keys(items);
    client.execute(COMPLETE, &[&openids, &tags, &seqs]).await?;
    client.execute(RELEASE, &[&openids, &tags]).await?;
    let account = items[0].account.get();
    if items[0].add {
        client
            .execute(
                "INSERT INTO follower_wechat_tags (openid, tag_id, account_id) SELECT o, $2, $3 FROM unnest($1::text[]) AS o
                 ON CONFLICT DO NOTHING",
                &[&openids, &wechat_tag_id, &account],
            )
            .await?;
    } else {
        client
            .execute(
                "DELETE FROM follower_wechat_tags WHERE tag_id = $2 AND openid = ANY($1) AND account_id = $3",
                &[&openids, &wechat_tag_id, &account],
            )
            .await?;
    }
    Ok(())
}

const FAIL: &str = "
    UPDATE tag_outbox o SET
        attempts = o.attempts + CASE WHEN $7 THEN 1 ELSE 0 END, last_error = $4, claimed_until = NULL, claimed_by = NULL,
        run_at = coalesce($5, o.run_at), waits_on_wechat = $6,
        state = CASE WHEN $5::timestamptz IS NULL THEN 'dead' ELSE 'pending' END
    FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS c(openid, tag_id, seq)
    WHERE o.openid = c.openid AND o.tag_id = c.tag_id AND o.seq = c.seq";

/// Why a change failed, as far as retrying it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// WeChat was down, busy or rate-limited: retried as soon as WeChat answers again.
    WeChatTrouble,
    /// Something about the change or its tag: retried only after its backoff.
    OfTheChange,
    /// The API's daily quota is used up: tried again when it starts over, without spending an
    /// attempt (a quota must never kill a change, however many days it lasts).
    QuotaWait,
}

/// Records a failure: retried at `retry_at`, or dead (kept for an operator) when `None`. Rows that
/// changed meanwhile are only released: their new word is tried afresh.
pub async fn fail(
    client: &impl GenericClient,
    items: &[&OutboxItem],
    error: &str,
    retry_at: Option<DateTime<Utc>>,
    failure: Failure,
) -> Result<(), tokio_postgres::Error> {
    if items.is_empty() {
        return Ok(());
    }
    let (openids, tags, seqs) = keys(items);
    let waits_on_wechat = failure == Failure::WeChatTrouble;
    let spends_attempt = failure != Failure::QuotaWait;
    client.execute(FAIL, &[&openids, &tags, &seqs, &error, &retry_at, &waits_on_wechat, &spends_attempt]).await?;
    client.execute(RELEASE, &[&openids, &tags]).await?;
    Ok(())
}

/// After the account's WeChat answered a call again: its changes that failed only because
/// WeChat was in trouble are due now, not when their backoff (up to an hour after a long outage) runs out.
/// A change is pulled forward at most once in five minutes, and not after `max_attempts`
/// failures in a row, so one that keeps failing while others succeed still backs off. Reads
/// only rows in backoff (the `run_at` index).
pub async fn pull_forward_after_recovery(
    client: &impl GenericClient,
    account: AccountId,
    max_attempts: i32,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "UPDATE tag_outbox SET run_at = now(), waits_on_wechat = false, pulled_forward_at = now()
             WHERE state = 'pending' AND run_at > now() AND waits_on_wechat AND attempts < $1 AND account_id = $2
               AND (pulled_forward_at IS NULL OR pulled_forward_at < now() - interval '5 minutes')",
            &[&max_attempts, &account.get()],
        )
        .await
}

/// Links a local tag to the WeChat tag created for it, and records the WeChat tag.
pub async fn link_wechat_tag(
    client: &impl GenericClient,
    account: AccountId,
    tag_id: i64,
    wechat_tag_id: i64,
    name: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO wechat_tags (id, name, account_id) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, id) DO UPDATE SET name = EXCLUDED.name",
            &[&wechat_tag_id, &name, &account.get()],
        )
        .await?;
    client
        .execute(
            "UPDATE tags SET wechat_tag_id = $2 WHERE id = $1 AND account_id = $3",
            &[&tag_id, &wechat_tag_id, &account.get()],
        )
        .await?;
    Ok(())
}

/// Forgets a WeChat tag id WeChat no longer knows, so the tag is created anew.
pub async fn unlink_wechat_tag(
    client: &impl GenericClient,
    account: AccountId,
    tag_id: i64,
    wechat_tag_id: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE tags SET wechat_tag_id = NULL WHERE id = $1 AND wechat_tag_id = $2 AND account_id = $3",
            &[&tag_id, &wechat_tag_id, &account.get()],
        )
        .await?;
    client
        .execute("DELETE FROM wechat_tags WHERE id = $1 AND account_id = $2", &[&wechat_tag_id, &account.get()])
        .await?;
    Ok(())
}

const LIST_PENDING_OPENIDS: &str = "SELECT openid FROM tag_outbox WHERE tag_id = $1";

/// The followers with a change of `tag_id` still to send.
pub async fn list_pending_openids(
    client: &impl GenericClient,
    tag_id: i64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client.query(LIST_PENDING_OPENIDS, &[&tag_id]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Pending changes and their age, for metrics and tests.
pub async fn depth(client: &impl GenericClient) -> Result<(i64, Option<f64>), tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT count(*), extract(epoch FROM now() - min(created_at))::float8 FROM tag_outbox WHERE state = 'pending'",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// How many rows [`sync_health`] counts before it says "more than".
pub const HEALTH_COUNT_CAP: i64 = 10_000;

/// Where the account's tag changes to WeChat stand, for the tags page.
#[derive(Debug, Clone, Default)]
pub struct SyncHealth {
    /// Changes waiting to be sent, counted up to one past [`HEALTH_COUNT_CAP`].
    pub pending: i64,
    /// When the oldest of them (among those counted) was made.
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// Changes given up after their last attempt, counted up to one past [`HEALTH_COUNT_CAP`].
    pub dead: i64,
    /// The commonest stored failures of the dead changes (raw text), with how many each.
    pub dead_errors: Vec<(String, i64)>,
}

// Each count stops one past the cap so a backlog of a million rows costs no more than ten
// thousand, and the page can say "more than". The wait is the oldest change's age, not its next
// attempt's, so a backoff during an outage does not hide it; errors are grouped without WeChat's
// per-call `rid`.
const SYNC_HEALTH: &str = "
    SELECT p.n, p.oldest,
           (SELECT count(*) FROM (SELECT 1 FROM tag_outbox WHERE account_id = $1 AND state = 'dead' LIMIT $2::bigint + 1) d)
    FROM (SELECT count(*) AS n, min(created_at) AS oldest
          FROM (SELECT created_at FROM tag_outbox WHERE account_id = $1 AND state = 'pending' LIMIT $2::bigint + 1) q) p";
const DEAD_ERRORS: &str = "
    SELECT split_part(coalesce(last_error, ''), ' rid:', 1), count(*) FROM
        (SELECT last_error FROM tag_outbox WHERE account_id = $1 AND state = 'dead' ORDER BY created_at DESC LIMIT $2) d
    GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3";

/// Pending and dead tag changes of `account`, and why the dead ones failed.
pub async fn sync_health(client: &impl GenericClient, account: AccountId) -> Result<SyncHealth, tokio_postgres::Error> {
    let row = client.query_one(SYNC_HEALTH, &[&account.get(), &HEALTH_COUNT_CAP]).await?;
    let dead: i64 = row.get(2);
    let dead_errors = if dead == 0 {
        Vec::new()
    } else {
        let rows = client.query(DEAD_ERRORS, &[&account.get(), &HEALTH_COUNT_CAP]).await?;
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    Ok(SyncHealth { pending: row.get(0), oldest_pending_at: row.get(1), dead, dead_errors })
}

const REVIVE_DEAD: &str = "
    UPDATE tag_outbox o SET state = 'pending', attempts = 0, run_at = now(), claimed_until = NULL, claimed_by = NULL,
                      waits_on_wechat = false
    WHERE o.account_id = $1 AND o.state = 'dead'
      AND NOT EXISTS (SELECT 1 FROM followers f WHERE f.account_id = o.account_id AND f.openid = o.openid
                      AND NOT f.subscribed)";

/// Gives every dead change of `account` a fresh set of attempts, once the operator has fixed
/// what stopped them; the number revived.
pub async fn revive_dead(client: &impl GenericClient, account: AccountId) -> Result<u64, tokio_postgres::Error> {
    client.execute(REVIVE_DEAD, &[&account.get()]).await
}
