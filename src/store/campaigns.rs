//! `campaigns` and what hangs off them: variants, approvals, the tag sends the monthly cap
//! counts, the planned WeChat calls (`campaign_chunks`) with their outcomes, recipients, and the
//! per-follower monthly receipt counts.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRow {
    pub id: i64,
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
                       send_requested_by, delivered_at, last_error";

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
    new: &NewCampaign<'_>,
) -> Result<CampaignRow, tokio_postgres::Error> {
    let sql = format!(
        "INSERT INTO campaigns (name, audience, message, status, send_at, created_by)
         VALUES ($1, $2, $3, 'draft', $4, $5) RETURNING {COLUMNS}"
    );
    let row = client.query_one(&sql, &[&new.name, new.audience, new.message, &new.send_at, &new.created_by]).await?;
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

pub async fn get_campaign(client: &impl GenericClient, id: i64) -> Result<Option<CampaignRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1");
    Ok(client.query_opt(&sql, &[&id]).await?.as_ref().map(campaign_from_row))
}

/// The campaign, its row locked until the caller's transaction ends: status changes of one
/// campaign happen one after the other.
pub async fn lock_campaign(client: &impl GenericClient, id: i64) -> Result<Option<CampaignRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1 FOR UPDATE");
    Ok(client.query_opt(&sql, &[&id]).await?.as_ref().map(campaign_from_row))
}

/// Newest first, ids below `before` (keyset paging).
pub async fn list_campaigns(
    client: &impl GenericClient,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<CampaignRow>, tokio_postgres::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM campaigns WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2");
    Ok(client.query(&sql, &[&before, &limit]).await?.iter().map(campaign_from_row).collect())
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

/// Scheduled campaigns whose time has come at `now`, moved to `sending` and returned. Rows
/// another process is moving are skipped, so each fires in exactly one process.
pub async fn take_due_scheduled(
    client: &impl GenericClient,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, tokio_postgres::Error> {
    let rows = client
        .query(
            "UPDATE campaigns SET status = 'sending', updated_at = now()
             WHERE id IN (SELECT id FROM campaigns WHERE status = 'scheduled' AND send_at <= $1
                          ORDER BY send_at LIMIT 100 FOR UPDATE SKIP LOCKED)
             RETURNING id",
            &[&now],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// (tag id, path, sensitive) of the tags with these paths.
pub async fn find_tags(
    client: &impl GenericClient,
    paths: &[&str],
) -> Result<Vec<(i64, String, bool, Option<i64>)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, path, sensitive, wechat_tag_id FROM tags WHERE path = ANY($1::text[]) ORDER BY id",
            &[&paths],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
}

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

/// Subscribed members of a tag, in openid order.
pub async fn list_tag_members(client: &impl GenericClient, tag_id: i64) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            concat!(
                "SELECT ft.openid FROM follower_tags ft JOIN followers f ON f.openid = ft.openid AND f.subscribed
                 WHERE ft.tag_id = $1 AND ",
                not_test_follower!("ft.openid"),
                " ORDER BY ft.openid"
            ),
            &[&tag_id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Every subscribed follower, in openid order.
pub async fn list_subscribed(client: &impl GenericClient) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            concat!(
                "SELECT openid FROM followers WHERE subscribed AND ",
                not_test_follower!("openid"),
                " ORDER BY openid"
            ),
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// How many of `openids` already received `limit` mass messages in `month` (WeChat will filter
/// them out of another send).
pub async fn count_at_monthly_limit(
    client: &impl GenericClient,
    openids: &[String],
    month: NaiveDate,
    limit: i32,
) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT count(*) FROM follower_mass_receipts WHERE openid = ANY($1::text[]) AND month = $2 AND count >= $3",
            &[&openids, &month, &limit],
        )
        .await?
        .get(0))
}

/// Counts one more mass message received in `month` for each of `openids`.
pub async fn bump_receipts(
    client: &impl GenericClient,
    openids: &[String],
    month: NaiveDate,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO follower_mass_receipts (openid, month, count) SELECT o, $2, 1 FROM unnest($1::text[]) AS o
             ON CONFLICT (openid, month) DO UPDATE SET count = follower_mass_receipts.count + 1",
            &[&openids, &month],
        )
        .await?;
    Ok(())
}

/// One planned WeChat call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRow {
    pub campaign_id: i64,
    pub seq: i32,
    pub variant: i32,
    pub kind: String,
    pub wechat_tag_id: Option<i64>,
    pub openids: Vec<String>,
    pub clientmsgid: String,
    pub state: String,
    pub tagged: i32,
    pub attempts: i32,
    pub msg_id: Option<i64>,
}

const CHUNK_COLUMNS: &str =
    "campaign_id, seq, variant, kind, wechat_tag_id, openids, clientmsgid, state, tagged, attempts, msg_id";

fn chunk_from_row(r: &tokio_postgres::Row) -> ChunkRow {
    ChunkRow {
        campaign_id: r.get(0),
        seq: r.get(1),
        variant: r.get(2),
        kind: r.get(3),
        wechat_tag_id: r.get(4),
        openids: r.get(5),
        clientmsgid: r.get(6),
        state: r.get(7),
        tagged: r.get(8),
        attempts: r.get(9),
        msg_id: r.get(10),
    }
}

/// A planned call: kind, variant, WeChat tag id (`tag`), openids (`openids`, `temp_tag`).
#[derive(Debug, Clone)]
pub struct NewChunk {
    pub variant: i32,
    pub kind: &'static str,
    pub wechat_tag_id: Option<i64>,
    pub openids: Vec<String>,
}

/// Stores a campaign's whole plan and its recipients (with their variants) at once, in the
/// caller's transaction.
pub async fn insert_plan(
    txn: &deadpool_postgres::Transaction<'_>,
    campaign_id: i64,
    chunks: &[NewChunk],
) -> Result<(), tokio_postgres::Error> {
    let insert = txn
        .prepare_cached(
            "INSERT INTO campaign_chunks (campaign_id, seq, variant, kind, wechat_tag_id, openids, clientmsgid)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    for (seq, chunk) in chunks.iter().enumerate() {
        let seq = seq as i32;
        // ≤ 64 bytes as WeChat requires; unique per call, stable across retries and processes.
        let clientmsgid = format!("tagcast-c{campaign_id}-s{seq}");
        txn.execute(
            &insert,
            &[&campaign_id, &seq, &chunk.variant, &chunk.kind, &chunk.wechat_tag_id, &chunk.openids, &clientmsgid],
        )
        .await?;
    }
    let recipients: Vec<(&str, i32)> =
        chunks.iter().flat_map(|chunk| chunk.openids.iter().map(|openid| (openid.as_str(), chunk.variant))).collect();
    insert_recipients(txn, campaign_id, recipients).await
}

/// Records a campaign's recipients (distinct openids, none recorded before), by COPY: a
/// million-follower segment is a million rows written before the first call goes out.
pub async fn insert_recipients(
    txn: &deadpool_postgres::Transaction<'_>,
    campaign_id: i64,
    mut recipients: Vec<(&str, i32)>,
) -> Result<(), tokio_postgres::Error> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;

    if recipients.is_empty() {
        return Ok(());
    }
    // Sorted, the rows extend both indexes in order instead of landing on random pages.
    recipients.sort_unstable();
    let sink = txn.copy_in("COPY campaign_recipients (campaign_id, openid, variant) FROM STDIN BINARY").await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::TEXT, Type::INT4]);
    let mut writer = std::pin::pin!(writer);
    for (openid, variant) in &recipients {
        writer.as_mut().write(&[&campaign_id, openid, variant]).await?;
    }
    writer.finish().await?;
    Ok(())
}

/// The calls not made yet, in order.
pub async fn list_pending_seqs(
    client: &impl GenericClient,
    campaign_id: i64,
) -> Result<Vec<i32>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT seq FROM campaign_chunks WHERE campaign_id = $1 AND state = 'pending' ORDER BY seq",
            &[&campaign_id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// One planned call as it is now, with its campaign's status.
pub async fn get_chunk(
    client: &impl GenericClient,
    campaign_id: i64,
    seq: i32,
) -> Result<Option<(ChunkRow, String)>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {CHUNK_COLUMNS}, (SELECT status FROM campaigns WHERE id = $1) AS campaign_status
         FROM campaign_chunks WHERE campaign_id = $1 AND seq = $2"
    );
    let row = client.query_opt(&sql, &[&campaign_id, &seq]).await?;
    Ok(row.and_then(|r| Some((chunk_from_row(&r), r.get::<_, Option<String>>("campaign_status")?))))
}

pub async fn has_plan(client: &impl GenericClient, campaign_id: i64) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt("SELECT 1 FROM campaign_chunks WHERE campaign_id = $1 LIMIT 1", &[&campaign_id])
        .await?
        .is_some())
}

/// WeChat accepted the call. Its list is emptied: who was sent to is in `campaign_recipients`.
pub async fn mark_submitted(
    client: &impl GenericClient,
    campaign_id: i64,
    seq: i32,
    msg_id: i64,
    msg_data_id: Option<i64>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaign_chunks SET state = 'submitted', msg_id = $3, msg_data_id = coalesce($4, msg_data_id),
                 submitted_at = now(), attempts = attempts + 1, openids = '{}'
             WHERE campaign_id = $1 AND seq = $2",
            &[&campaign_id, &seq, &msg_id, &msg_data_id],
        )
        .await?;
    client
        .execute("UPDATE campaigns SET delivered_at = coalesce(delivered_at, now()) WHERE id = $1", &[&campaign_id])
        .await?;
    Ok(())
}

/// A call failed: `failed` for good, else still pending.
pub async fn mark_chunk_failed(
    client: &impl GenericClient,
    campaign_id: i64,
    seq: i32,
    error: &str,
    permanent: bool,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaign_chunks SET attempts = attempts + 1, last_error = $3,
                 state = CASE WHEN $4 THEN 'failed' ELSE state END,
                 openids = CASE WHEN $4 THEN '{}' ELSE openids END
             WHERE campaign_id = $1 AND seq = $2",
            &[&campaign_id, &seq, &error, &permanent],
        )
        .await?;
    Ok(())
}

/// Stops the calls not made yet (a cancelled campaign).
pub async fn skip_pending_chunks(client: &impl GenericClient, campaign_id: i64) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaign_chunks SET state = 'skipped', openids = '{}' WHERE campaign_id = $1 AND state = 'pending'",
            &[&campaign_id],
        )
        .await
}

/// Campaigns `sending` with a call not made and no send job waiting: their job died (WeChat
/// down for longer than its retries) or never ran.
pub async fn list_stalled_sends(client: &impl GenericClient) -> Result<Vec<i64>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.id FROM campaigns c
             WHERE c.status = 'sending'
               AND EXISTS (SELECT 1 FROM campaign_chunks k WHERE k.campaign_id = c.id AND k.state = 'pending')
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = 'send_campaign' AND j.state = 'pending'
                                 AND j.payload->>'campaign_id' = c.id::text)",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Campaigns `sending`.
pub async fn list_sending(client: &impl GenericClient) -> Result<Vec<i64>, tokio_postgres::Error> {
    let rows = client.query("SELECT id FROM campaigns WHERE status = 'sending'", &[]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Stops one call not made yet, saying why.
pub async fn skip_chunk(
    client: &impl GenericClient,
    campaign_id: i64,
    seq: i32,
    reason: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaign_chunks SET state = 'skipped', last_error = $3, openids = '{}'
             WHERE campaign_id = $1 AND seq = $2 AND state = 'pending'",
            &[&campaign_id, &seq, &reason],
        )
        .await?;
    Ok(())
}

/// The temporary WeChat tag of a `temp_tag` call, once created.
pub async fn set_chunk_tag(
    client: &impl GenericClient,
    campaign_id: i64,
    seq: i32,
    wechat_tag_id: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaign_chunks SET wechat_tag_id = $3 WHERE campaign_id = $1 AND seq = $2",
            &[&campaign_id, &seq, &wechat_tag_id],
        )
        .await?;
    Ok(())
}

/// Members of the temporary tag added so far.
pub async fn set_chunk_tagged(
    client: &impl GenericClient,
    campaign_id: i64,
    seq: i32,
    tagged: i32,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaign_chunks SET tagged = $3 WHERE campaign_id = $1 AND seq = $2",
            &[&campaign_id, &seq, &tagged],
        )
        .await?;
    Ok(())
}

/// What MASSSENDJOBFINISH said about a job.
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    pub msg_id: i64,
    pub status: &'a str,
    pub total: i64,
    pub filter: i64,
    pub sent: i64,
    pub error: i64,
}

/// Stores a job's result (once: WeChat may push it again; a push replaces a status read back
/// with `mass/get`, which has no counts) and returns (campaign id, kind,
/// WeChat tag id) of the call that made the job, or `None` when the call is not recorded (yet:
/// the sender may still be recording its msg_id; or ever: a console send).
pub async fn record_finish(
    client: &impl GenericClient,
    finish: &Finish<'_>,
) -> Result<Option<((i64, String, Option<i64>), Arrival)>, tokio_postgres::Error> {
    let stored = client
        .query_opt(
            "INSERT INTO mass_job_results (msg_id, status, total_count, filter_count, sent_count, error_count)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (msg_id) DO UPDATE SET status = excluded.status, total_count = excluded.total_count,
                 filter_count = excluded.filter_count, sent_count = excluded.sent_count,
                 error_count = excluded.error_count, source = 'push', received_at = now()
             WHERE mass_job_results.source = 'mass_get'
             RETURNING xmax = 0",
            &[&finish.msg_id, &finish.status, &finish.total, &finish.filter, &finish.sent, &finish.error],
        )
        .await?;
    let Some(stored) = stored else { return Ok(None) };
    let arrival = if stored.get(0) { Arrival::First } else { Arrival::AfterReadBack };
    Ok(call_of(client, finish.msg_id).await?.map(|call| (call, arrival)))
}

/// Whether a job's result is the first heard of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    First,
    /// The push came after its status had been read back with `mass/get`.
    AfterReadBack,
}

/// (campaign id, kind, WeChat tag id) of the call WeChat answered with `msg_id`.
async fn call_of(
    client: &impl GenericClient,
    msg_id: i64,
) -> Result<Option<(i64, String, Option<i64>)>, tokio_postgres::Error> {
    let row = client
        .query_opt("SELECT campaign_id, kind, wechat_tag_id FROM campaign_chunks WHERE msg_id = $1", &[&msg_id])
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
}

/// Stores a job's final status as `mass/get` read it back (no counts), unless a result is
/// already there (then `None`); returns the call as [`record_finish`] does.
pub async fn record_read_back(
    client: &impl GenericClient,
    msg_id: i64,
    status: &str,
) -> Result<Option<(i64, String, Option<i64>)>, tokio_postgres::Error> {
    let inserted = client
        .execute(
            "INSERT INTO mass_job_results (msg_id, status, source) VALUES ($1, $2, 'mass_get')
             ON CONFLICT (msg_id) DO NOTHING",
            &[&msg_id, &status],
        )
        .await?;
    if inserted == 0 {
        return Ok(None);
    }
    call_of(client, msg_id).await
}

/// Accepted calls of campaigns still `sending` (or cancelled mid-send: a temporary tag waits on
/// the result to be deleted) whose result has not arrived `patience` after
/// WeChat accepted them (by the database's clock, which `submitted_at` is in): (campaign id,
/// msg_id), oldest first.
pub async fn list_overdue_results(
    client: &impl GenericClient,
    patience: std::time::Duration,
    limit: i64,
) -> Result<Vec<(i64, i64)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.campaign_id, c.msg_id FROM campaign_chunks c JOIN campaigns k ON k.id = c.campaign_id
             WHERE k.status IN ('sending', 'cancelled') AND c.state = 'submitted' AND c.msg_id IS NOT NULL
               AND c.submitted_at < now() - make_interval(secs => $1)
               AND NOT EXISTS (SELECT 1 FROM mass_job_results r WHERE r.msg_id = c.msg_id)
             ORDER BY c.submitted_at LIMIT $2",
            &[&patience.as_secs_f64(), &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Whether WeChat's result for `msg_id` has arrived.
pub async fn has_result(client: &impl GenericClient, msg_id: i64) -> Result<bool, tokio_postgres::Error> {
    Ok(client.query_opt("SELECT 1 FROM mass_job_results WHERE msg_id = $1", &[&msg_id]).await?.is_some())
}

/// Where a campaign's calls stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub chunks: i64,
    pub pending: i64,
    pub submitted: i64,
    pub failed: i64,
    pub finished: i64,
    /// Finished with `send success` (or sent and later deleted).
    pub succeeded: i64,
    /// Finished by a status read back with `mass/get`: their counts are unknown.
    pub uncounted: i64,
    pub total: i64,
    pub filter: i64,
    pub sent: i64,
    pub error: i64,
}

pub async fn progress(client: &impl GenericClient, campaign_id: i64) -> Result<Progress, tokio_postgres::Error> {
    let r = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE c.state = 'pending'), count(*) FILTER (WHERE c.state = 'submitted'),
                    count(*) FILTER (WHERE c.state = 'failed'), count(r.msg_id),
                    count(*) FILTER (WHERE r.status IN ('send success', 'deleted')),
                    coalesce(sum(r.total_count), 0)::bigint, coalesce(sum(r.filter_count), 0)::bigint,
                    coalesce(sum(r.sent_count), 0)::bigint, coalesce(sum(r.error_count), 0)::bigint,
                    count(*) FILTER (WHERE r.source = 'mass_get')
             FROM campaign_chunks c LEFT JOIN mass_job_results r ON r.msg_id = c.msg_id
             WHERE c.campaign_id = $1",
            &[&campaign_id],
        )
        .await?;
    Ok(Progress {
        chunks: r.get(0),
        pending: r.get(1),
        submitted: r.get(2),
        failed: r.get(3),
        finished: r.get(4),
        succeeded: r.get(5),
        total: r.get(6),
        filter: r.get(7),
        sent: r.get(8),
        error: r.get(9),
        uncounted: r.get(10),
    })
}

/// `msg_id` and `msg_data_id` of every accepted call, by seq.
pub async fn list_msg_ids(
    client: &impl GenericClient,
    campaign_id: i64,
) -> Result<Vec<(i64, Option<i64>)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT msg_id, msg_data_id FROM campaign_chunks WHERE campaign_id = $1 AND msg_id IS NOT NULL ORDER BY seq",
            &[&campaign_id],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Whether a mass send went out (accepted and not known to have failed) on the Beijing day that
/// runs from `day_start` for 24 h: a subscription account gets one a day.
pub async fn sent_on_day(client: &impl GenericClient, day_start: DateTime<Utc>) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM campaign_chunks c LEFT JOIN mass_job_results r ON r.msg_id = c.msg_id
             WHERE c.submitted_at >= $1 AND c.submitted_at < $1 + interval '1 day'
               AND coalesce(r.status, 'send success') = 'send success' AND c.kind <> 'openids' LIMIT 1",
            &[&day_start],
        )
        .await?
        .is_some())
}

/// Per variant: (variant, recipients).
pub async fn count_recipients_by_variant(
    client: &impl GenericClient,
    campaign_id: i64,
) -> Result<Vec<(i32, i64)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT variant, count(*) FROM campaign_recipients WHERE campaign_id = $1 GROUP BY variant ORDER BY variant",
            &[&campaign_id],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// A short link of a campaign; false when the code is taken.
pub async fn insert_link(
    client: &impl GenericClient,
    code: &str,
    campaign_id: i64,
    url: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            "INSERT INTO campaign_links (code, campaign_id, url) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&code, &campaign_id, &url],
        )
        .await?
        == 1)
}

/// (campaign id, target URL) of a short link.
pub async fn get_link(client: &impl GenericClient, code: &str) -> Result<Option<(i64, String)>, tokio_postgres::Error> {
    let statement = client.prepare_cached("SELECT campaign_id, url FROM campaign_links WHERE code = $1").await?;
    Ok(client.query_opt(&statement, &[&code]).await?.map(|r| (r.get(0), r.get(1))))
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
                    WHERE cr2.openid = cr.openid AND c2.id <> c.id
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
                    SELECT 1 FROM orders o WHERE o.openid = cr.openid AND o.amount_cents > 0
                      AND o.occurred_at >= c.delivered_at
                      AND o.occurred_at < c.delivered_at + make_interval(secs => $2) {order_touch})),
                count(*) FILTER (WHERE EXISTS (
                    SELECT 1 FROM events e WHERE e.openid = cr.openid AND e.kind = 'unsubscribe'
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

/// Delivered campaigns, newest first: (id, audience).
pub async fn list_delivered(
    client: &impl GenericClient,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(i64, serde_json::Value)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, audience FROM campaigns WHERE delivered_at IS NOT NULL AND delivered_at >= $1
             ORDER BY delivered_at DESC LIMIT $2",
            &[&since, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Campaigns that reached each tag since `since`: (tag id, path, campaign ids).
pub async fn list_tag_campaigns(
    client: &impl GenericClient,
    since: DateTime<Utc>,
) -> Result<Vec<(i64, String, Vec<i64>)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT t.id, t.path, array_agg(s.campaign_id ORDER BY s.campaign_id)
             FROM campaign_tag_sends s JOIN tags t ON t.id = s.tag_id
             JOIN campaigns c ON c.id = s.campaign_id AND c.delivered_at IS NOT NULL
             WHERE s.sent_at >= $1 GROUP BY t.id, t.path ORDER BY t.path",
            &[&since],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// Pairs of tags sharing at least `min_overlap` of the smaller one's members:
/// (path a, path b, common members, members of a, members of b).
pub async fn list_overlapping_tags(
    client: &impl GenericClient,
    min_overlap: f64,
) -> Result<Vec<(String, String, i64, i64, i64)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "WITH sizes AS (SELECT tag_id, count(*) AS n FROM follower_tags GROUP BY tag_id),
                  common AS (SELECT a.tag_id AS a, b.tag_id AS b, count(*) AS n
                             FROM follower_tags a JOIN follower_tags b ON b.openid = a.openid AND b.tag_id > a.tag_id
                             GROUP BY a.tag_id, b.tag_id)
             SELECT ta.path, tb.path, c.n, sa.n, sb.n
             FROM common c JOIN sizes sa ON sa.tag_id = c.a JOIN sizes sb ON sb.tag_id = c.b
             JOIN tags ta ON ta.id = c.a JOIN tags tb ON tb.id = c.b
             WHERE c.n::float8 >= $1::float8 * least(sa.n, sb.n)
             ORDER BY ta.path, tb.path",
            &[&min_overlap],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect())
}

/// Beijing days between `since` and `until` (inclusive) on which a campaign article was
/// published and that were not asked about on `today` yet.
pub async fn list_publish_days_to_fetch(
    client: &impl GenericClient,
    since: NaiveDate,
    until: NaiveDate,
    today: NaiveDate,
) -> Result<Vec<NaiveDate>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT DISTINCT d FROM (SELECT (submitted_at AT TIME ZONE 'Asia/Shanghai')::date AS d
                                     FROM campaign_chunks WHERE msg_data_id IS NOT NULL) p
             WHERE d BETWEEN $1 AND $2
               AND NOT EXISTS (SELECT 1 FROM article_read_fetches f WHERE f.publish_day = d AND f.fetched_on = $3)
             ORDER BY d",
            &[&since, &until, &today],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Whether `msg_data_id` is one of ours.
pub async fn is_campaign_article(client: &impl GenericClient, msg_data_id: i64) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt("SELECT 1 FROM campaign_chunks WHERE msg_data_id = $1 LIMIT 1", &[&msg_data_id])
        .await?
        .is_some())
}

pub async fn upsert_article_reads(
    client: &impl GenericClient,
    msg_data_id: i64,
    read_user: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO article_reads (msg_data_id, read_user) VALUES ($1, $2)
             ON CONFLICT (msg_data_id) DO UPDATE SET read_user = EXCLUDED.read_user, updated_at = now()",
            &[&msg_data_id, &read_user],
        )
        .await?;
    Ok(())
}

pub async fn mark_publish_day_fetched(
    client: &impl GenericClient,
    publish_day: NaiveDate,
    today: NaiveDate,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO article_read_fetches (publish_day, fetched_on) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&publish_day, &today],
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
             WHERE ar.msg_data_id IN (SELECT msg_data_id FROM campaign_chunks WHERE campaign_id = $1)",
            &[&campaign_id],
        )
        .await?
        .get(0))
}

/// Takes the account's next mass-send slot, `interval_secs` after the one before (and not
/// before now); returns how long to wait for it. One row update, so processes queue on it in
/// turn without holding it.
pub async fn reserve_mass_slot(
    client: &impl GenericClient,
    interval_secs: f64,
) -> Result<std::time::Duration, tokio_postgres::Error> {
    let row = client
        .query_one(
            "UPDATE mass_send_pace SET next_at = greatest(next_at, clock_timestamp()) + make_interval(secs => $1)
             RETURNING extract(epoch FROM (next_at - make_interval(secs => $1)) - clock_timestamp())::float8",
            &[&interval_secs],
        )
        .await?;
    let wait: f64 = row.get(0);
    Ok(std::time::Duration::from_secs_f64(wait.max(0.0)))
}

/// Campaigns in `status`, oldest first (the approval queue serves the longest waiting first).
pub async fn list_campaigns_in_status(
    client: &impl GenericClient,
    status: &str,
    limit: i64,
) -> Result<Vec<CampaignRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE status = $1 ORDER BY id LIMIT $2");
    Ok(client.query(&sql, &[&status, &limit]).await?.iter().map(campaign_from_row).collect())
}

/// WeChat's counts for several campaigns at once (a list page shows one row each):
/// (campaign id, total, filter, sent, error), only for campaigns with planned calls.
pub async fn list_counts(
    client: &impl GenericClient,
    campaign_ids: &[i64],
) -> Result<Vec<(i64, i64, i64, i64, i64)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.campaign_id, coalesce(sum(r.total_count), 0)::bigint, coalesce(sum(r.filter_count), 0)::bigint,
                    coalesce(sum(r.sent_count), 0)::bigint, coalesce(sum(r.error_count), 0)::bigint
             FROM campaign_chunks c LEFT JOIN mass_job_results r ON r.msg_id = c.msg_id
             WHERE c.campaign_id = ANY($1::bigint[])
             GROUP BY c.campaign_id",
            &[&campaign_ids],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect())
}

/// Points campaigns addressed to the tag `from` at `to` (a rename: the same tag, so history
/// follows it); how many changed.
pub async fn rename_audience_tag(
    client: &impl GenericClient,
    from: &str,
    to: &str,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaigns SET audience = jsonb_build_object('tag', $2::text), updated_at = now()
             WHERE audience = jsonb_build_object('tag', $1::text)",
            &[&from, &to],
        )
        .await
}
