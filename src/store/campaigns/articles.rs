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
