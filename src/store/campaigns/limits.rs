//! What limits a send: the tag sends the monthly cap counts (`campaign_tag_sends`), the
//! per-follower monthly receipt counts, the subscription account's daily send and the
//! account's mass-send pace.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

/// Sends that reached each of `tag_ids` since `since`: (tag id, when).
pub async fn list_tag_sends(
    client: &impl GenericClient,
    tag_ids: &[i64],
    since: DateTime<Utc>,
) -> Result<Vec<(i64, DateTime<Utc>)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT tag_id, sent_at FROM campaign_tag_sends WHERE tag_id = ANY($1::bigint[]) AND sent_at > $2",
            &[&tag_ids, &since],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Serialises cap checks of the same tags across processes until the caller's transaction ends,
/// so two sends cannot both take a tag's last slot.
pub async fn lock_tags_for_cap(client: &impl GenericClient, tag_ids: &[i64]) -> Result<(), tokio_postgres::Error> {
    let mut ids = tag_ids.to_vec();
    ids.sort_unstable();
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('campaign_cap:' || t::text, 0)) FROM unnest($1::bigint[]) AS t",
            &[&ids],
        )
        .await?;
    Ok(())
}

pub async fn insert_tag_sends(
    client: &impl GenericClient,
    campaign_id: i64,
    tag_ids: &[i64],
    at: DateTime<Utc>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO campaign_tag_sends (campaign_id, tag_id, sent_at) SELECT $1, t, $3 FROM unnest($2::bigint[]) AS t
             ON CONFLICT DO NOTHING",
            &[&campaign_id, &tag_ids, &at],
        )
        .await?;
    Ok(())
}

const DELETE_TAG_SENDS: &str = "DELETE FROM campaign_tag_sends WHERE campaign_id = $1";

/// Gives a campaign's slots under the monthly cap back (nothing of it reached WeChat).
pub async fn delete_tag_sends(client: &impl GenericClient, campaign_id: i64) -> Result<(), tokio_postgres::Error> {
    client.execute(DELETE_TAG_SENDS, &[&campaign_id]).await?;
    Ok(())
}

/// How many of `openids` already received `limit` mass messages in `month` (WeChat will filter
/// them out of another send).
pub async fn count_at_monthly_limit(
    client: &impl GenericClient,
    account: AccountId,
    openids: &[String],
    month: NaiveDate,
    limit: i32,
) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT count(*) FROM follower_mass_receipts
             WHERE account_id = $4 AND openid = ANY($1::text[]) AND month = $2 AND count >= $3",
            &[&openids, &month, &limit, &account.get()],
        )
        .await?
        .get(0))
}

/// The openids of `account` that received at least `limit` mass messages in `month`: few
/// compared with the audience, so the pages intersect them with it in memory. The partial index
/// of V31 covers `limit` 4.
pub async fn list_at_monthly_limit(
    client: &impl GenericClient,
    account: AccountId,
    month: NaiveDate,
    limit: i32,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT openid FROM follower_mass_receipts WHERE account_id = $1 AND month = $2 AND count >= $3",
            &[&account.get(), &month, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Counts one more mass message received in `month` for each of `openids` of `account`.
pub async fn bump_receipts(
    client: &impl GenericClient,
    account: AccountId,
    openids: &[String],
    month: NaiveDate,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO follower_mass_receipts (account_id, openid, month, count)
             SELECT $3, o, $2, 1 FROM unnest($1::text[]) AS o
             ON CONFLICT (account_id, openid, month) DO UPDATE SET count = follower_mass_receipts.count + 1",
            &[&openids, &month, &account.get()],
        )
        .await?;
    Ok(())
}

/// Whether a mass send went out (accepted and not known to have failed) on the Beijing day that
/// runs from `day_start` for 24 h from `account`: a subscription account gets one a day.
pub async fn sent_on_day(
    client: &impl GenericClient,
    account: AccountId,
    day_start: DateTime<Utc>,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM campaign_chunks c JOIN campaigns k ON k.id = c.campaign_id AND k.account_id = $2
             LEFT JOIN mass_job_results r ON r.msg_id = c.msg_id AND r.account_id = $2
             WHERE c.submitted_at >= $1 AND c.submitted_at < $1 + interval '1 day'
               AND coalesce(r.status, 'send success') = 'send success' AND c.kind <> 'openids' LIMIT 1",
            &[&day_start, &account.get()],
        )
        .await?
        .is_some())
}

/// Takes `account`'s next mass-send slot, `interval_secs` after the one before (and not before
/// now); returns how long to wait for it. One row upsert, so processes queue on it in turn
/// without holding it; each account has its own pace.
pub async fn reserve_mass_slot(
    client: &impl GenericClient,
    account: AccountId,
    interval_secs: f64,
) -> Result<std::time::Duration, tokio_postgres::Error> {
    let row = client
        .query_one(
            "INSERT INTO account_mass_pace AS p (account_id, next_at)
             VALUES ($2, clock_timestamp() + make_interval(secs => $1))
             ON CONFLICT (account_id) DO UPDATE
                 SET next_at = greatest(p.next_at, clock_timestamp()) + make_interval(secs => $1)
             RETURNING extract(epoch FROM (next_at - make_interval(secs => $1)) - clock_timestamp())::float8",
            &[&interval_secs, &account.get()],
        )
        .await?;
    let wait: f64 = row.get(0);
    Ok(std::time::Duration::from_secs_f64(wait.max(0.0)))
}
