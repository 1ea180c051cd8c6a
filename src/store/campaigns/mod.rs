//! `campaigns` and what hangs off them, one file per table group; this file holds the
//! campaign rows themselves (and their variants) and re-exports the rest, so callers write
//! `store::campaigns::get_campaign` whatever file it is in:
//!
//! - `audience`: the tags an audience names and the followers a tag or everyone reaches.
//! - `limits`: the tag sends the monthly cap counts, the per-follower monthly receipt counts,
//!   the subscription account's daily send and the account's mass-send pace.
//! - `chunks`: the planned WeChat calls (`campaign_chunks`), recipients and their progress.
//! - `results`: what WeChat said about each call (`mass_job_results`).
//! - `links`: short links and clicks.
//! - `outcomes`: what recipients did after delivery, attributed by last touch.
//! - `articles`: datacube's readers of the campaigns' articles.

mod articles;
mod audience;
mod chunks;
mod limits;
mod links;
mod outcomes;
mod removal;
mod results;

pub use articles::{
    is_campaign_article, list_article_stats, list_publish_days_to_fetch, mark_publish_day_fetched, sum_article_reads,
    upsert_article_index_reads, upsert_article_reads,
};
pub use audience::{find_tags, list_subscribed, list_tag_members};
pub use chunks::{
    ChunkRow, NewChunk, Progress, count_recipients_by_variant, get_chunk, has_plan, has_taken_calls, insert_plan,
    insert_recipients, last_chunk_error, list_call_kinds, list_counts, list_msg_ids, list_pending_seqs,
    list_recipients, list_sending, list_stalled_sends, mark_chunk_failed, mark_submitted, mark_taken, progress,
    set_chunk_tag, set_chunk_tagged, skip_chunk, skip_pending_chunks,
};
pub use limits::{
    bump_receipts, count_at_monthly_limit, delete_tag_sends, insert_tag_sends, list_at_monthly_limit, list_tag_sends,
    lock_tags_for_cap, reserve_mass_slot, sent_on_day,
};
pub use links::{get_link, insert_click, insert_link, list_links};
pub use outcomes::{
    VariantOutcome, count_clicks, list_delivered, list_outcomes, list_overlapping_tags, list_tag_campaigns,
};
pub use removal::{count_pending_approval, delete_campaign, list_campaigns_using_segment};
pub use results::{
    Arrival, CallResult, Finish, has_result, list_accounts_with_overdue_results, list_call_results,
    list_overdue_results, record_failure_reason, record_finish, record_read_back,
};

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRow {
    pub id: i64,
    /// Whose campaign: its audience, quota, cap and WeChat client are that account's.
    pub account: AccountId,
    pub name: String,
    pub audience: serde_json::Value,
    pub message: serde_json::Value,
    pub status: String,
    pub send_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub send_requested_at: Option<DateTime<Utc>>,
    pub send_requested_by: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, name, audience, message, status, send_at, created_at, created_by, send_requested_at, \
                       send_requested_by, delivered_at, last_error, account_id";

fn campaign_from_row(r: &tokio_postgres::Row) -> CampaignRow {
    CampaignRow {
        id: r.get(0),
        name: r.get(1),
        audience: r.get(2),
        message: r.get(3),
        status: r.get(4),
        send_at: r.get(5),
        created_at: r.get(6),
        created_by: r.get(7),
        send_requested_at: r.get(8),
        send_requested_by: r.get(9),
        delivered_at: r.get(10),
        last_error: r.get(11),
        account: AccountId(r.get(12)),
    }
}

/// A campaign to create.
#[derive(Debug, Clone)]
pub struct NewCampaign<'a> {
    pub name: &'a str,
    pub audience: &'a serde_json::Value,
    pub message: &'a serde_json::Value,
    pub send_at: Option<DateTime<Utc>>,
    pub created_by: &'a str,
}

pub async fn insert_campaign(
    client: &impl GenericClient,
    account: AccountId,
    new: &NewCampaign<'_>,
) -> Result<CampaignRow, tokio_postgres::Error> {
    let sql = format!(
        "INSERT INTO campaigns (name, audience, message, status, send_at, created_by, account_id)
         VALUES ($1, $2, $3, 'draft', $4, $5, $6) RETURNING {COLUMNS}"
    );
    let row = client
        .query_one(&sql, &[&new.name, new.audience, new.message, &new.send_at, &new.created_by, &account.get()])
        .await?;
    Ok(campaign_from_row(&row))
}

pub async fn insert_variant(
    client: &impl GenericClient,
    campaign_id: i64,
    idx: i32,
    name: &str,
    message: &serde_json::Value,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO campaign_variants (campaign_id, idx, name, message) VALUES ($1, $2, $3, $4)",
            &[&campaign_id, &idx, &name, message],
        )
        .await?;
    Ok(())
}

/// Variants beyond the control: (idx, name, message), by idx.
pub async fn list_variants(
    client: &impl GenericClient,
    campaign_id: i64,
) -> Result<Vec<(i32, String, serde_json::Value)>, tokio_postgres::Error> {
    let rows = client
        .query("SELECT idx, name, message FROM campaign_variants WHERE campaign_id = $1 ORDER BY idx", &[&campaign_id])
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// A campaign of `account` by id (`None` when it is another account's).
pub async fn get_campaign(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
) -> Result<Option<CampaignRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1 AND account_id = $2");
    Ok(client.query_opt(&sql, &[&id, &account.get()]).await?.as_ref().map(campaign_from_row))
}

/// The campaign of `account`, its row locked until the caller's transaction ends: status
/// changes of one campaign happen one after the other.
pub async fn lock_campaign(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
) -> Result<Option<CampaignRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1 AND account_id = $2 FOR UPDATE");
    Ok(client.query_opt(&sql, &[&id, &account.get()]).await?.as_ref().map(campaign_from_row))
}

/// The campaigns of `account`, newest first, ids below `before` (keyset paging).
pub async fn list_campaigns(
    client: &impl GenericClient,
    account: AccountId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<CampaignRow>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM campaigns WHERE account_id = $3 AND ($1::bigint IS NULL OR id < $1)
         ORDER BY id DESC LIMIT $2"
    );
    Ok(client.query(&sql, &[&before, &limit, &account.get()]).await?.iter().map(campaign_from_row).collect())
}

pub async fn update_status(
    client: &impl GenericClient,
    id: i64,
    status: &str,
    last_error: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaigns SET status = $2, last_error = coalesce($3, last_error), updated_at = now() WHERE id = $1",
            &[&id, &status, &last_error],
        )
        .await?;
    Ok(())
}

const FINISH_SENDING: &str =
    "UPDATE campaigns SET status = $2, updated_at = now() WHERE id = $1 AND status = 'sending'";

/// Moves a campaign that is still `sending` to `status` (`sent` or `failed`); any other status
/// (cancelled meanwhile) stays.
pub async fn finish_sending(client: &impl GenericClient, id: i64, status: &str) -> Result<(), tokio_postgres::Error> {
    client.execute(FINISH_SENDING, &[&id, &status]).await?;
    Ok(())
}

/// Records who asked to send and when (by the application's clock).
pub async fn record_send_request(
    client: &impl GenericClient,
    id: i64,
    status: &str,
    by: &str,
    at: DateTime<Utc>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaigns SET status = $2, send_requested_by = $3, send_requested_at = $4, updated_at = now()
             WHERE id = $1",
            &[&id, &status, &by, &at],
        )
        .await?;
    Ok(())
}

/// Scheduled campaigns (of every account) whose time has come at `now`, moved to `sending` and
/// returned with their account. Rows another process is moving are skipped, so each fires in
/// exactly one process.
pub async fn take_due_scheduled(
    client: &impl GenericClient,
    now: DateTime<Utc>,
) -> Result<Vec<(i64, AccountId)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "UPDATE campaigns SET status = 'sending', updated_at = now()
             WHERE id IN (SELECT id FROM campaigns WHERE status = 'scheduled' AND send_at <= $1
                          ORDER BY send_at LIMIT 100 FOR UPDATE SKIP LOCKED)
             RETURNING id, account_id",
            &[&now],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), AccountId(r.get(1)))).collect())
}

/// Campaigns of `account` in `status`, oldest first (the approval queue serves the longest
/// waiting first).
pub async fn list_campaigns_in_status(
    client: &impl GenericClient,
    account: AccountId,
    status: &str,
    limit: i64,
) -> Result<Vec<CampaignRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE status = $1 AND account_id = $3 ORDER BY id LIMIT $2");
    Ok(client.query(&sql, &[&status, &limit, &account.get()]).await?.iter().map(campaign_from_row).collect())
}

/// Points campaigns addressed to the tag `from` at `to` (a rename: the same tag, so history
/// follows it); how many changed.
pub async fn rename_audience_tag(
    client: &impl GenericClient,
    account: AccountId,
    from: &str,
    to: &str,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaigns SET audience = jsonb_build_object('tag', $2::text), updated_at = now()
             WHERE audience = jsonb_build_object('tag', $1::text) AND account_id = $3",
            &[&from, &to, &account.get()],
        )
        .await
}
