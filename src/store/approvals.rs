//! What approval keeps about a campaign: who approved it and what the approval covered, the
//! last rejection (驳回) with its reason, and the last time an approval lapsed and why.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

/// One approval, with what it covered (`None` for approvals given before V20).
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRow {
    pub by: String,
    pub at: DateTime<Utc>,
    pub fingerprint: Option<String>,
    pub covered: Option<serde_json::Value>,
}

/// Approvals of a campaign, oldest first.
pub async fn list_approvals(
    client: &impl GenericClient,
    campaign_id: i64,
) -> Result<Vec<ApprovalRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT approved_by, approved_at, fingerprint, covered FROM campaign_approvals
             WHERE campaign_id = $1 ORDER BY approved_at",
            &[&campaign_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ApprovalRow { by: r.get(0), at: r.get(1), fingerprint: r.get(2), covered: r.get(3) })
        .collect())
}

/// Records (or renews) `by`'s approval of what `covered` describes.
pub async fn upsert_approval(
    client: &impl GenericClient,
    campaign_id: i64,
    by: &str,
    covered: &serde_json::Value,
    fingerprint: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO campaign_approvals (campaign_id, approved_by, covered, fingerprint) VALUES ($1, $2, $3, $4)
             ON CONFLICT (campaign_id, approved_by)
             DO UPDATE SET covered = EXCLUDED.covered, fingerprint = EXCLUDED.fingerprint, approved_at = now()",
            &[&campaign_id, &by, covered, &fingerprint],
        )
        .await?;
    Ok(())
}

/// Forgets every approval of a campaign (they lapsed, or it was rejected).
pub async fn delete_approvals(client: &impl GenericClient, campaign_id: i64) -> Result<u64, tokio_postgres::Error> {
    client.execute("DELETE FROM campaign_approvals WHERE campaign_id = $1", &[&campaign_id]).await
}

/// The last rejection and the last lapse of a campaign's approval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Review {
    pub rejected_by: Option<String>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub lapsed_at: Option<DateTime<Utc>>,
    /// The changes that made it lapse, as `crate::domain::approval::Change` JSON.
    pub lapse: Option<serde_json::Value>,
}

pub async fn get_review(client: &impl GenericClient, campaign_id: i64) -> Result<Review, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT rejected_by, rejected_at, rejection_reason, approval_lapsed_at, approval_lapse
             FROM campaigns WHERE id = $1",
            &[&campaign_id],
        )
        .await?;
    Ok(row
        .map(|r| Review {
            rejected_by: r.get(0),
            rejected_at: r.get(1),
            rejection_reason: r.get(2),
            lapsed_at: r.get(3),
            lapse: r.get(4),
        })
        .unwrap_or_default())
}

pub async fn record_rejection(
    client: &impl GenericClient,
    campaign_id: i64,
    by: &str,
    reason: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaigns SET rejected_by = $2, rejected_at = now(), rejection_reason = $3, updated_at = now()
             WHERE id = $1",
            &[&campaign_id, &by, &reason],
        )
        .await?;
    Ok(())
}

pub async fn record_lapse(
    client: &impl GenericClient,
    campaign_id: i64,
    changes: &serde_json::Value,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaigns SET approval_lapsed_at = now(), approval_lapse = $2, updated_at = now() WHERE id = $1",
            &[&campaign_id, changes],
        )
        .await?;
    Ok(())
}

/// An approval settles what an earlier rejection or lapse said.
pub async fn clear_review(client: &impl GenericClient, campaign_id: i64) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaigns SET rejected_by = NULL, rejected_at = NULL, rejection_reason = NULL,
                    approval_lapsed_at = NULL, approval_lapse = NULL
             WHERE id = $1",
            &[&campaign_id],
        )
        .await?;
    Ok(())
}

/// Gives back the monthly-cap slots a send request took (it will not go out as asked).
pub async fn release_tag_sends(client: &impl GenericClient, campaign_id: i64) -> Result<u64, tokio_postgres::Error> {
    client.execute("DELETE FROM campaign_tag_sends WHERE campaign_id = $1", &[&campaign_id]).await
}
