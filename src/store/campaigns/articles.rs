//! Readers of the campaigns' articles, as datacube reports them per publishing day.

use chrono::NaiveDate;
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

/// Beijing days between `since` and `until` (inclusive) on which a campaign article was
/// published and that were not asked about on `today` yet.
pub async fn list_publish_days_to_fetch(
    client: &impl GenericClient,
    account: AccountId,
    since: NaiveDate,
    until: NaiveDate,
    today: NaiveDate,
) -> Result<Vec<NaiveDate>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT DISTINCT d FROM (SELECT (submitted_at AT TIME ZONE 'Asia/Shanghai')::date AS d
                                     FROM campaign_chunks c JOIN campaigns k ON k.id = c.campaign_id
                                     WHERE c.msg_data_id IS NOT NULL AND k.account_id = $4) p
             WHERE d BETWEEN $1 AND $2
               AND NOT EXISTS (SELECT 1 FROM article_read_fetches f
                               WHERE f.publish_day = d AND f.fetched_on = $3 AND f.account_id = $4)
             ORDER BY d",
            &[&since, &until, &today, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Whether `msg_data_id` is one of `account`'s campaigns'.
pub async fn is_campaign_article(
    client: &impl GenericClient,
    account: AccountId,
    msg_data_id: i64,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM campaign_chunks c JOIN campaigns k ON k.id = c.campaign_id
             WHERE c.msg_data_id = $1 AND k.account_id = $2 LIMIT 1",
            &[&msg_data_id, &account.get()],
        )
        .await?
        .is_some())
}

pub async fn upsert_article_reads(
    client: &impl GenericClient,
    account: AccountId,
    msg_data_id: i64,
    read_user: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO article_reads (msg_data_id, read_user, account_id) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, msg_data_id) DO UPDATE SET read_user = EXCLUDED.read_user, updated_at = now()",
            &[&msg_data_id, &read_user, &account.get()],
        )
        .await?;
    Ok(())
}

pub async fn mark_publish_day_fetched(
    client: &impl GenericClient,
    account: AccountId,
    publish_day: NaiveDate,
    today: NaiveDate,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO article_read_fetches (publish_day, fetched_on, account_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&publish_day, &today, &account.get()],
        )
        .await?;
    Ok(())
}

/// Readers of one article of a send (datacube `<msg_data_id>_<idx>`).
///
/// # Errors
/// The database.
pub async fn upsert_article_index_reads(
    client: &impl GenericClient,
    account: AccountId,
    msg_data_id: i64,
    article_idx: i32,
    read_user: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO article_index_reads (account_id, msg_data_id, article_idx, read_user) VALUES ($1, $2, $3, $4)
             ON CONFLICT (account_id, msg_data_id, article_idx)
             DO UPDATE SET read_user = EXCLUDED.read_user, updated_at = now()",
            &[&account.get(), &msg_data_id, &article_idx, &read_user],
        )
        .await?;
    Ok(())
}

/// Per article of a campaign's sends: `(article_idx, readers, clicks on links placed in it)`,
/// by article. Readers sum over the campaign's calls (each a send of the same draft); `None`
/// before any figure.
///
/// # Errors
/// The database.
pub async fn list_article_stats(
    client: &impl GenericClient,
    campaign_id: i64,
) -> Result<Vec<(i32, Option<i64>, i64)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "WITH reads AS (
                 SELECT r.article_idx, sum(r.read_user)::bigint AS read_user FROM article_index_reads r
                 WHERE r.msg_data_id IN (SELECT msg_data_id FROM campaign_chunks WHERE campaign_id = $1)
                   AND r.account_id = (SELECT account_id FROM campaigns WHERE id = $1)
                 GROUP BY r.article_idx),
             clicks AS (
                 SELECT l.article_idx, count(c.id) AS clicks FROM campaign_links l
                 LEFT JOIN campaign_clicks c ON c.code = l.code
                 WHERE l.campaign_id = $1 AND l.article_idx IS NOT NULL GROUP BY l.article_idx)
             SELECT coalesce(r.article_idx, k.article_idx), r.read_user, coalesce(k.clicks, 0)
             FROM reads r FULL JOIN clicks k ON k.article_idx = r.article_idx
             ORDER BY 1",
            &[&campaign_id],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// Readers of a campaign's articles; `None` before any figure.
pub async fn sum_article_reads(
    client: &impl GenericClient,
    campaign_id: i64,
) -> Result<Option<i64>, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT sum(ar.read_user)::bigint FROM article_reads ar
             WHERE ar.msg_data_id IN (SELECT msg_data_id FROM campaign_chunks WHERE campaign_id = $1)
               AND ar.account_id = (SELECT account_id FROM campaigns WHERE id = $1)",
            &[&campaign_id],
        )
        .await?
        .get(0))
}
