//! What a campaign's recipients did after delivery (clicks, orders, unsubscribes), attributed by
//! last touch, and the figures built on it (strategies, tag health).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

/// What a campaign's recipients did, per variant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariantOutcome {
    pub variant: i32,
    pub recipients: i64,
    /// Recipients who clicked one of its links (attributed clicks).
    pub clickers: i64,
    /// Recipients who ordered within the conversion window, this campaign being the last
    /// delivered to them before the order.
    pub converted: i64,
    /// Recipients who unsubscribed within 48 h, this campaign being the last before.
    pub unsubscribed: i64,
}

/// Last-touch attribution: the event of a recipient at `t` belongs to this campaign when it was
/// delivered before `t`, within the window, and no later campaign reached them before `t`.
const LAST_TOUCH: &str = "
    AND NOT EXISTS (SELECT 1 FROM campaign_recipients cr2 JOIN campaigns c2 ON c2.id = cr2.campaign_id
                    WHERE cr2.openid = cr.openid AND c2.id <> c.id AND c2.account_id = c.account_id
                      AND c2.delivered_at > c.delivered_at AND c2.delivered_at <= {at})";

/// Per variant, what recipients did after delivery.
pub async fn list_outcomes(
    client: &impl GenericClient,
    campaign_id: i64,
    conversion_window_secs: f64,
    unsubscribe_window_secs: f64,
) -> Result<Vec<VariantOutcome>, tokio_postgres::Error> {
    let order_touch = LAST_TOUCH.replace("{at}", "o.occurred_at");
    let unsubscribe_touch = LAST_TOUCH.replace("{at}", "e.occurred_at");
    let sql = format!(
        "SELECT cr.variant, count(*),
                count(*) FILTER (WHERE EXISTS (SELECT 1 FROM campaign_clicks k
                                               WHERE k.campaign_id = c.id AND k.openid = cr.openid)),
                count(*) FILTER (WHERE EXISTS (
                    SELECT 1 FROM orders o WHERE o.openid = cr.openid AND o.account_id = c.account_id
                      AND o.amount_cents > 0
                      AND o.occurred_at >= c.delivered_at
                      AND o.occurred_at < c.delivered_at + make_interval(secs => $2) {order_touch})),
                count(*) FILTER (WHERE EXISTS (
                    SELECT 1 FROM events e WHERE e.openid = cr.openid AND e.account_id = c.account_id
                      AND e.kind = 'unsubscribe'
                      AND e.occurred_at >= c.delivered_at
                      AND e.occurred_at < c.delivered_at + make_interval(secs => $3) {unsubscribe_touch}))
         FROM campaign_recipients cr JOIN campaigns c ON c.id = cr.campaign_id
         WHERE cr.campaign_id = $1 AND c.delivered_at IS NOT NULL
         GROUP BY cr.variant ORDER BY cr.variant"
    );
    let rows = client.query(&sql, &[&campaign_id, &conversion_window_secs, &unsubscribe_window_secs]).await?;
    Ok(rows
        .iter()
        .map(|r| VariantOutcome {
            variant: r.get(0),
            recipients: r.get(1),
            clickers: r.get(2),
            converted: r.get(3),
            unsubscribed: r.get(4),
        })
        .collect())
}

/// (all clicks, clicks nobody could be named for) on a campaign's links.
pub async fn count_clicks(client: &impl GenericClient, campaign_id: i64) -> Result<(i64, i64), tokio_postgres::Error> {
    let r = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE openid IS NULL) FROM campaign_clicks WHERE campaign_id = $1",
            &[&campaign_id],
        )
        .await?;
    Ok((r.get(0), r.get(1)))
}

/// Delivered campaigns of `account`, newest first: (id, audience).
pub async fn list_delivered(
    client: &impl GenericClient,
    account: crate::domain::account::AccountId,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(i64, serde_json::Value)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, audience FROM campaigns WHERE delivered_at IS NOT NULL AND delivered_at >= $1
               AND account_id = $3
             ORDER BY delivered_at DESC LIMIT $2",
            &[&since, &limit, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Campaigns that reached each tag of `account` since `since`: (tag id, path, campaign ids).
pub async fn list_tag_campaigns(
    client: &impl GenericClient,
    account: crate::domain::account::AccountId,
    since: DateTime<Utc>,
) -> Result<Vec<(i64, String, Vec<i64>)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT t.id, t.path, array_agg(s.campaign_id ORDER BY s.campaign_id)
             FROM campaign_tag_sends s JOIN tags t ON t.id = s.tag_id
             JOIN campaigns c ON c.id = s.campaign_id AND c.delivered_at IS NOT NULL
             WHERE s.sent_at >= $1 AND t.account_id = $2 GROUP BY t.id, t.path ORDER BY t.path",
            &[&since, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// Pairs of tags of `account` sharing at least `min_overlap` of the smaller one's members:
/// (path a, path b, common members, members of a, members of b).
pub async fn list_overlapping_tags(
    client: &impl GenericClient,
    account: crate::domain::account::AccountId,
    min_overlap: f64,
) -> Result<Vec<(String, String, i64, i64, i64)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "WITH mine AS (SELECT ft.tag_id, ft.openid FROM follower_tags ft JOIN tags t ON t.id = ft.tag_id
                           WHERE t.account_id = $2),
                  sizes AS (SELECT tag_id, count(*) AS n FROM mine GROUP BY tag_id),
                  common AS (SELECT a.tag_id AS a, b.tag_id AS b, count(*) AS n
                             FROM mine a JOIN mine b ON b.openid = a.openid AND b.tag_id > a.tag_id
                             GROUP BY a.tag_id, b.tag_id)
             SELECT ta.path, tb.path, c.n, sa.n, sb.n
             FROM common c JOIN sizes sa ON sa.tag_id = c.a JOIN sizes sb ON sb.tag_id = c.b
             JOIN tags ta ON ta.id = c.a JOIN tags tb ON tb.id = c.b
             WHERE c.n::float8 >= $1::float8 * least(sa.n, sb.n)
             ORDER BY ta.path, tb.path",
            &[&min_overlap, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect())
}
