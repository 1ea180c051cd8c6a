//! A campaign's planned WeChat calls (`campaign_chunks`) and recipients: the plan, each call's
//! progress, and the counts the pages show.

use deadpool_postgres::GenericClient;

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
    /// When WeChat answered 45066 for this call: it holds the clientmsgid, so the call went out
    /// even while it is still `pending` (its msg_id not learned yet).
    pub taken_at: Option<chrono::DateTime<chrono::Utc>>,
}

const CHUNK_COLUMNS: &str =
    "campaign_id, seq, variant, kind, wechat_tag_id, openids, clientmsgid, state, tagged, attempts, msg_id, taken_at";

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
        taken_at: r.get(11),
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

/// WeChat answered 45066: it holds this call's clientmsgid (see [`ChunkRow::taken_at`]).
pub async fn mark_taken(client: &impl GenericClient, campaign_id: i64, seq: i32) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaign_chunks SET taken_at = coalesce(taken_at, now())
             WHERE campaign_id = $1 AND seq = $2 AND state = 'pending'",
            &[&campaign_id, &seq],
        )
        .await?;
    Ok(())
}

/// Whether WeChat holds a call of the campaign whose msg_id is still to be learned.
pub async fn has_taken_calls(client: &impl GenericClient, campaign_id: i64) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM campaign_chunks WHERE campaign_id = $1 AND state = 'pending' AND taken_at IS NOT NULL LIMIT 1",
            &[&campaign_id],
        )
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

const LAST_CHUNK_ERROR: &str = "SELECT last_error FROM campaign_chunks WHERE campaign_id = $1 AND last_error IS NOT NULL ORDER BY seq DESC LIMIT 1";

/// The error of the last call that has one.
pub async fn last_chunk_error(
    client: &impl GenericClient,
    campaign_id: i64,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(client.query_opt(LAST_CHUNK_ERROR, &[&campaign_id]).await?.and_then(|r| r.get(0)))
}

/// Stops the calls not made yet (a cancelled campaign).
pub async fn skip_pending_chunks(client: &impl GenericClient, campaign_id: i64) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaign_chunks SET state = 'skipped', openids = '{}'
             WHERE campaign_id = $1 AND state = 'pending' AND taken_at IS NULL",
            &[&campaign_id],
        )
        .await
}

/// Campaigns (of every account) `sending` with a call not made and no send job waiting: their
/// job died (WeChat down for longer than its retries) or never ran; and cancelled ones with a call
/// WeChat holds whose msg_id is still to be learned. With their account.
pub async fn list_stalled_sends(
    client: &impl GenericClient,
) -> Result<Vec<(i64, crate::domain::account::AccountId)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.id, c.account_id FROM campaigns c
             WHERE c.status IN ('sending', 'cancelled')
               AND EXISTS (SELECT 1 FROM campaign_chunks k WHERE k.campaign_id = c.id AND k.state = 'pending'
                             AND (c.status = 'sending' OR k.taken_at IS NOT NULL))
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = 'send_campaign' AND j.state = 'pending'
                                 AND j.payload->>'campaign_id' = c.id::text)",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), crate::domain::account::AccountId(r.get(1)))).collect())
}

/// Campaigns `sending` (of every account), with their account.
pub async fn list_sending(
    client: &impl GenericClient,
) -> Result<Vec<(i64, crate::domain::account::AccountId)>, tokio_postgres::Error> {
    let rows = client.query("SELECT id, account_id FROM campaigns WHERE status = 'sending'", &[]).await?;
    Ok(rows.iter().map(|r| (r.get(0), crate::domain::account::AccountId(r.get(1)))).collect())
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
             WHERE campaign_id = $1 AND seq = $2 AND state = 'pending' AND taken_at IS NULL",
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
             FROM campaign_chunks c JOIN campaigns k ON k.id = c.campaign_id
             LEFT JOIN mass_job_results r ON r.msg_id = c.msg_id AND r.account_id = k.account_id
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

const LIST_RECIPIENTS: &str = "SELECT openid FROM campaign_recipients WHERE campaign_id = $1";

/// Everyone a campaign is sent to.
pub async fn list_recipients(
    client: &impl GenericClient,
    campaign_id: i64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client.query(LIST_RECIPIENTS, &[&campaign_id]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The kinds of call (`all`, `tag`, `openids`, `temp_tag`) a campaign's plan holds: how WeChat
/// counts a call's target depends on it.
pub async fn list_call_kinds(
    client: &impl GenericClient,
    campaign_id: i64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query("SELECT DISTINCT kind FROM campaign_chunks WHERE campaign_id = $1 ORDER BY kind", &[&campaign_id])
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
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
             FROM campaign_chunks c JOIN campaigns k ON k.id = c.campaign_id
             LEFT JOIN mass_job_results r ON r.msg_id = c.msg_id AND r.account_id = k.account_id
             WHERE c.campaign_id = ANY($1::bigint[])
             GROUP BY c.campaign_id",
            &[&campaign_ids],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect())
}
