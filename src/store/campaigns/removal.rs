//! Counting the approval queue for the nav badge, and deleting campaigns that never went out.

use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

const COUNT_PENDING_APPROVAL: &str =
    "SELECT count(*) FROM campaigns WHERE account_id = $1 AND status = 'pending_approval'";

/// How many campaigns of `account` wait for approval; served by the partial index of V30.
pub async fn count_pending_approval(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<i64, tokio_postgres::Error> {
    Ok(client.query_one(COUNT_PENDING_APPROVAL, &[&account.get()]).await?.get(0))
}

const DELETE_CAMPAIGN: &str = "DELETE FROM campaigns WHERE id = $1 AND account_id = $2";

/// Deletes a campaign with its variants, approvals and cap slots (their foreign keys cascade);
/// false when there was none. The caller decides whether its status allows it.
pub async fn delete_campaign(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client.execute(DELETE_CAMPAIGN, &[&id, &account.get()]).await? > 0)
}

const LIST_USING_SEGMENT: &str = "SELECT id, name, status FROM campaigns
     WHERE account_id = $1 AND audience = jsonb_build_object('segment', $2::bigint) ORDER BY id";

/// The campaigns of `account` addressed to segment `segment`: (id, name, status).
pub async fn list_campaigns_using_segment(
    client: &impl GenericClient,
    account: AccountId,
    segment: i64,
) -> Result<Vec<(i64, String, String)>, tokio_postgres::Error> {
    let rows = client.query(LIST_USING_SEGMENT, &[&account.get(), &segment]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}
