//! A campaign's short links (`campaign_links`) and the clicks on them (`campaign_clicks`).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

/// A short link of a campaign; false when the code is taken.
pub async fn insert_link(
    client: &impl GenericClient,
    code: &str,
    campaign_id: i64,
    url: &str,
    article_idx: Option<i32>,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            "INSERT INTO campaign_links (code, campaign_id, url, article_idx) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&code, &campaign_id, &url, &article_idx],
        )
        .await?
        == 1)
}

/// (campaign id, target URL, the campaign's account) of a short link.
pub async fn get_link(
    client: &impl GenericClient,
    code: &str,
) -> Result<Option<(i64, String, crate::domain::account::AccountId)>, tokio_postgres::Error> {
    let statement = client
        .prepare_cached(
            "SELECT l.campaign_id, l.url, c.account_id FROM campaign_links l JOIN campaigns c ON c.id = l.campaign_id
             WHERE l.code = $1",
        )
        .await?;
    Ok(client
        .query_opt(&statement, &[&code])
        .await?
        .map(|r| (r.get(0), r.get(1), crate::domain::account::AccountId(r.get(2)))))
}

/// Every link of a campaign: (code, url), oldest first.
pub async fn list_links(
    client: &impl GenericClient,
    campaign_id: i64,
) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
    let rows = client
        .query("SELECT code, url FROM campaign_links WHERE campaign_id = $1 ORDER BY created_at, code", &[&campaign_id])
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub async fn insert_click(
    client: &impl GenericClient,
    code: &str,
    campaign_id: i64,
    openid: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), tokio_postgres::Error> {
    let statement = client
        .prepare_cached("INSERT INTO campaign_clicks (code, campaign_id, openid, clicked_at) VALUES ($1, $2, $3, $4)")
        .await?;
    client.execute(&statement, &[&code, &campaign_id, &openid, &at]).await?;
    Ok(())
}
