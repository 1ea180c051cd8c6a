//! The `followers` table as the callback keeps it: who wrote to the account, and whether they follow.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

/// What one batch of pushes says about one follower.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowerActivity {
    pub account: AccountId,
    pub openid: String,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The newest subscribe (`true`) or unsubscribe (`false`) in the batch, with its time.
    pub state_change: Option<(bool, DateTime<Utc>)>,
    /// QR scene of that subscribe, if any.
    pub scene: Option<String>,
}

// A follower we have never seen who writes to the account is following it (WeChat only delivers
// messages from followers). A state change applies only when newer than the one recorded, so a
// late retry of an old subscribe cannot undo a later unsubscribe. A known follower's row is
// rewritten only for a state change, an earlier first sight, or a `last_seen_at` more than a
// minute newer: an active follower's every push would otherwise write a new row version (and its
// WAL) to move `last_seen_at` by seconds. So `last_seen_at` trails by at most a minute; nothing
// that decides what may be sent reads it (the customer-service window reads events).
const UPSERT: &str = "
    INSERT INTO followers AS f
        (account_id, openid, subscribed, subscribed_at, unsubscribed_at, subscribe_scene, first_seen_at, last_seen_at,
         state_changed_at)
    SELECT a.account_id, a.openid, coalesce(a.subscribed, true),
           CASE WHEN a.subscribed THEN a.changed_at END,
           CASE WHEN NOT a.subscribed THEN a.changed_at END,
           a.scene, a.first_seen, a.last_seen, a.changed_at
    FROM unnest($1::text[], $2::bool[], $3::timestamptz[], $4::text[], $5::timestamptz[], $6::timestamptz[],
                $7::bigint[])
         AS a(openid, subscribed, changed_at, scene, first_seen, last_seen, account_id)
    ON CONFLICT (account_id, openid) DO UPDATE SET
        first_seen_at = least(f.first_seen_at, EXCLUDED.first_seen_at),
        last_seen_at = greatest(f.last_seen_at, EXCLUDED.last_seen_at),
        subscribed = CASE WHEN EXCLUDED.state_changed_at >= coalesce(f.state_changed_at, '-infinity')
                          THEN EXCLUDED.subscribed ELSE f.subscribed END,
        subscribed_at = CASE WHEN EXCLUDED.state_changed_at >= coalesce(f.state_changed_at, '-infinity')
                              AND EXCLUDED.subscribed THEN EXCLUDED.subscribed_at ELSE f.subscribed_at END,
        unsubscribed_at = CASE WHEN EXCLUDED.state_changed_at >= coalesce(f.state_changed_at, '-infinity')
                                AND NOT EXCLUDED.subscribed THEN EXCLUDED.unsubscribed_at ELSE f.unsubscribed_at END,
        subscribe_scene = CASE WHEN EXCLUDED.state_changed_at >= coalesce(f.state_changed_at, '-infinity')
                                AND EXCLUDED.subscribed THEN EXCLUDED.subscribe_scene ELSE f.subscribe_scene END,
        state_changed_at = greatest(f.state_changed_at, EXCLUDED.state_changed_at)
    WHERE (EXCLUDED.state_changed_at IS NOT NULL
           AND EXCLUDED.state_changed_at >= coalesce(f.state_changed_at, '-infinity'))
       OR EXCLUDED.first_seen_at < f.first_seen_at
       OR EXCLUDED.last_seen_at > f.last_seen_at + interval '1 minute'";

/// Upserts followers from a batch's activity. Callers pass one entry per (account, openid), sorted,
/// so concurrent batches lock follower rows in the same order.
#[tracing::instrument(skip_all, fields(batch.size = activity.len()))]
pub async fn upsert_followers(
    client: &impl GenericClient,
    activity: &[FollowerActivity],
) -> Result<(), tokio_postgres::Error> {
    if activity.is_empty() {
        return Ok(());
    }
    let openids: Vec<&str> = activity.iter().map(|a| a.openid.as_str()).collect();
    let subscribed: Vec<Option<bool>> = activity.iter().map(|a| a.state_change.map(|(s, _)| s)).collect();
    let changed_at: Vec<Option<DateTime<Utc>>> = activity.iter().map(|a| a.state_change.map(|(_, t)| t)).collect();
    let scenes: Vec<Option<&str>> = activity.iter().map(|a| a.scene.as_deref()).collect();
    let first: Vec<DateTime<Utc>> = activity.iter().map(|a| a.first_seen_at).collect();
    let last: Vec<DateTime<Utc>> = activity.iter().map(|a| a.last_seen_at).collect();
    let accounts: Vec<i64> = activity.iter().map(|a| a.account.get()).collect();
    let statement = client.prepare_cached(UPSERT).await?;
    client.execute(&statement, &[&openids, &subscribed, &changed_at, &scenes, &first, &last, &accounts]).await?;
    Ok(())
}

/// One follower as the API shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowerRow {
    pub openid: String,
    pub subscribed: bool,
    pub subscribed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
    pub subscribe_scene: Option<String>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The same person across the accounts of one Open Platform account, when WeChat said.
    pub unionid: Option<String>,
}

impl FollowerRow {
    /// A row selected as `openid, subscribed, subscribed_at, unsubscribed_at, subscribe_scene,
    /// first_seen_at, last_seen_at[, unionid]`; without the eighth column the unionid is unknown.
    pub(super) fn from_row(r: &tokio_postgres::Row) -> Self {
        Self {
            openid: r.get(0),
            subscribed: r.get(1),
            subscribed_at: r.get(2),
            unsubscribed_at: r.get(3),
            subscribe_scene: r.get(4),
            first_seen_at: r.get(5),
            last_seen_at: r.get(6),
            unionid: if r.len() > 7 { r.get(7) } else { None },
        }
    }
}

const FOLLOWER_EXISTS: &str = "SELECT 1 FROM followers WHERE account_id = $1 AND openid = $2";

/// Whether tagcast has a row for this follower of the account.
pub async fn follower_exists(
    client: &impl GenericClient,
    account: AccountId,
    openid: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client.query_opt(FOLLOWER_EXISTS, &[&account.get(), &openid]).await?.is_some())
}

const COUNT_FOLLOWERS: &str = "SELECT count(*) FROM followers WHERE account_id = $1";

/// Every follower of the account tagcast has a row for.
pub async fn count_followers(client: &impl GenericClient, account: AccountId) -> Result<i64, tokio_postgres::Error> {
    Ok(client.query_one(COUNT_FOLLOWERS, &[&account.get()]).await?.get(0))
}

/// A follower of the account by openid.
pub async fn get_follower(
    client: &impl GenericClient,
    account: AccountId,
    openid: &str,
) -> Result<Option<FollowerRow>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT openid, subscribed, subscribed_at, unsubscribed_at, subscribe_scene, first_seen_at, last_seen_at,
                    unionid
             FROM followers WHERE account_id = $1 AND openid = $2",
            &[&account.get(), &openid],
        )
        .await?;
    Ok(row.as_ref().map(FollowerRow::from_row))
}

/// The rows of `openids` (one page of a filter), in the order given; openids without a row are
/// left out. One indexed probe per openid.
pub async fn list_followers_by_openids(
    client: &impl GenericClient,
    account: AccountId,
    openids: &[String],
) -> Result<Vec<FollowerRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT f.openid, f.subscribed, f.subscribed_at, f.unsubscribed_at, f.subscribe_scene, f.first_seen_at,
                    f.last_seen_at, f.unionid
             FROM unnest($2::text[]) WITH ORDINALITY AS o(openid, n)
             JOIN followers f ON f.account_id = $1 AND f.openid = o.openid
             ORDER BY o.n",
            &[&account.get(), &openids],
        )
        .await?;
    Ok(rows.iter().map(FollowerRow::from_row).collect())
}

/// Records the unionid WeChat gave for followers of the account (`user/info`): (openid, unionid).
/// Followers tagcast has no row for are left alone.
pub async fn set_unionids(
    client: &impl GenericClient,
    account: AccountId,
    pairs: &[(&str, &str)],
) -> Result<u64, tokio_postgres::Error> {
    if pairs.is_empty() {
        return Ok(0);
    }
    let openids: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let unionids: Vec<&str> = pairs.iter().map(|p| p.1).collect();
    client
        .execute(
            "UPDATE followers f SET unionid = u.unionid
             FROM unnest($2::text[], $3::text[]) AS u(openid, unionid)
             WHERE f.account_id = $1 AND f.openid = u.openid AND f.unionid IS DISTINCT FROM u.unionid",
            &[&account.get(), &openids, &unionids],
        )
        .await
}

/// The same person as a follower of another account (same unionid), as the console shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct Elsewhere {
    pub account: AccountId,
    pub openid: String,
    pub subscribed: bool,
    /// The paths of the tags they carry there, sorted; never a sensitive tag.
    pub tags: Vec<String>,
}

/// The followers of accounts other than `account` who share `unionid`, by account id, with their
/// tags there except sensitive ones (a health or finance tag stays within its own account's view).
pub async fn list_same_person_elsewhere(
    client: &impl GenericClient,
    account: AccountId,
    unionid: &str,
) -> Result<Vec<Elsewhere>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT f.account_id, f.openid, f.subscribed,
                    coalesce(array_agg(t.path ORDER BY t.path) FILTER (WHERE t.path IS NOT NULL), '{}')
             FROM followers f
             LEFT JOIN follower_tags ft ON ft.openid = f.openid
             LEFT JOIN tags t ON t.id = ft.tag_id AND t.account_id = f.account_id AND NOT t.sensitive
             WHERE f.unionid = $2 AND f.account_id <> $1
             GROUP BY f.account_id, f.openid, f.subscribed
             ORDER BY f.account_id, f.openid",
            &[&account.get(), &unionid],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Elsewhere { account: AccountId(r.get(0)), openid: r.get(1), subscribed: r.get(2), tags: r.get(3) })
        .collect())
}

/// Deletes every row about a follower of the account (PIPL erasure) except pending WeChat
/// removals, which must still be delivered. The same openid in another account is another person,
/// and is left alone. Returns whether anything was deleted.
pub async fn erase_follower(
    client: &impl GenericClient,
    account: AccountId,
    openid: &str,
) -> Result<bool, tokio_postgres::Error> {
    let mut deleted = 0;
    for sql in [
        "DELETE FROM follower_tags WHERE openid = $1 AND tag_id IN (SELECT id FROM tags WHERE account_id = $2)",
        "DELETE FROM quiz_sessions WHERE openid = $1 AND account_id = $2",
        "DELETE FROM quiz_answers WHERE openid = $1 AND account_id = $2",
        "DELETE FROM follower_wechat_tags WHERE openid = $1 AND account_id = $2",
        "DELETE FROM events WHERE openid = $1 AND account_id = $2",
        "DELETE FROM orders WHERE openid = $1 AND account_id = $2",
        // A call not made yet names its recipients and must not reach the erased follower (made
        // calls keep no list). Only their campaigns' pending calls are read. `tagged` counts the
        // list's head already added to a temporary tag: it moves with it.
        "UPDATE campaign_chunks
         SET tagged = tagged - CASE WHEN array_position(openids, $1) <= tagged THEN 1 ELSE 0 END,
             openids = array_remove(openids, $1)
         WHERE state = 'pending' AND $1 = ANY(openids)
           AND campaign_id IN (SELECT r.campaign_id FROM campaign_recipients r JOIN campaigns c ON c.id = r.campaign_id
                               WHERE r.openid = $1 AND c.account_id = $2)",
        "DELETE FROM campaign_recipients WHERE openid = $1
           AND campaign_id IN (SELECT id FROM campaigns WHERE account_id = $2)",
        "DELETE FROM follower_mass_receipts WHERE openid = $1 AND account_id = $2",
        // The click stays counted, no longer naming anyone.
        "UPDATE campaign_clicks SET openid = NULL WHERE openid = $1
           AND campaign_id IN (SELECT id FROM campaigns WHERE account_id = $2)",
        "DELETE FROM test_followers WHERE openid = $1 AND account_id = $2",
        // Predictions about the follower are personal information too (issue 21).
        "DELETE FROM follower_scores WHERE openid = $1 AND account_id = $2",
        // What they wrote, labelled for the intent model or passed over in its queue.
        "DELETE FROM intent_examples WHERE openid = $1 AND account_id = $2",
        "DELETE FROM intent_skipped WHERE openid = $1 AND account_id = $2",
        "DELETE FROM followers WHERE openid = $1 AND account_id = $2",
    ] {
        deleted += client.execute(sql, &[&openid, &account.get()]).await?;
    }
    if deleted > 0 {
        // The erased follower's rows are gone, so nothing in the tails would tell the indexes.
        super::audience_feed::bump_epoch(client, account).await?;
    }
    Ok(deleted > 0)
}

/// Records that followers refused (or allowed again) being profiled; a refusal also deletes
/// their scores. Returns how many score rows went (the audience index must reload them).
pub async fn set_profiling_refused(
    client: &impl GenericClient,
    account: AccountId,
    openids: &[&str],
    refused: bool,
) -> Result<u64, tokio_postgres::Error> {
    if openids.is_empty() {
        return Ok(0);
    }
    client
        .execute(
            "UPDATE followers SET profiling_refused_at = CASE WHEN $3 THEN coalesce(profiling_refused_at, now()) END
             WHERE account_id = $1 AND openid = ANY($2)",
            &[&account.get(), &openids, &refused],
        )
        .await?;
    if !refused {
        return Ok(0);
    }
    client
        .execute("DELETE FROM follower_scores WHERE account_id = $1 AND openid = ANY($2)", &[&account.get(), &openids])
        .await
}

/// Of `openids`, those who refused profiling.
pub async fn refusing_profiling(
    client: &impl GenericClient,
    account: AccountId,
    openids: &[&str],
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT openid FROM followers
             WHERE account_id = $1 AND openid = ANY($2) AND profiling_refused_at IS NOT NULL",
            &[&account.get(), &openids],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
