//! `orders`: what shops post to `POST /api/v1/events`, idempotent by id (the first version wins).

use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;
use crate::domain::order::Order;

const INSERT: &str = "
    INSERT INTO orders (id, openid, amount_cents, occurred_at, account_id)
    SELECT i, o, a, t, $5 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[]) AS x(i, o, a, t)
    ON CONFLICT (account_id, id) DO NOTHING
    RETURNING openid";

// The first account's keys are those of the release before accounts, which may still be running
// during a rolling upgrade.
const LOCK_FOLLOWERS_ORDERS: &str = "
    SELECT pg_advisory_xact_lock(hashtextextended(
        CASE WHEN $2::bigint = 1 THEN 'order:' || o ELSE 'order:' || $2::bigint || ':' || o END, 0))
    FROM unnest($1::text[]) AS o";

/// Serialises, until the caller's transaction ends, everything that takes this lock for the
/// same followers of the account: two posts about one follower then run one after the other.
pub async fn lock_followers_orders(
    client: &impl GenericClient,
    account: AccountId,
    openids: &[&str],
) -> Result<(), tokio_postgres::Error> {
    client.execute(LOCK_FOLLOWERS_ORDERS, &[&openids, &account.get()]).await?;
    Ok(())
}

/// Inserts the orders whose id is new; returns the openids of those inserted (one per order).
/// A repeated id, stored before or earlier in the same batch, is skipped whatever it carries.
#[tracing::instrument(skip_all, fields(batch.size = orders.len()))]
pub async fn insert_orders(
    client: &impl GenericClient,
    account: AccountId,
    orders: &[Order],
) -> Result<Vec<String>, tokio_postgres::Error> {
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    let openids: Vec<&str> = orders.iter().map(|o| o.openid.as_str()).collect();
    let amounts: Vec<i64> = orders.iter().map(|o| o.amount_cents).collect();
    let occurred: Vec<chrono::DateTime<chrono::Utc>> = orders.iter().map(|o| o.occurred_at).collect();
    let statement = client.prepare_cached(INSERT).await?;
    let rows = client.query(&statement, &[&ids, &openids, &amounts, &occurred, &account.get()]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
