//! What WeChat said about each call: MASSSENDJOBFINISH or a status read back with `mass/get`
//! (`mass_job_results`).

use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

/// What MASSSENDJOBFINISH said about a job.
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    pub msg_id: i64,
    pub status: &'a str,
    pub total: i64,
    pub filter: i64,
    pub sent: i64,
    pub error: i64,
    /// `CopyrightCheckResult` as the app keeps it (`None`: the push had none).
    pub copyright: Option<serde_json::Value>,
}

/// Stores a job's result (once: WeChat may push it again; a push replaces a status read back
/// with `mass/get`, which has no counts) and returns (campaign id, kind,
/// WeChat tag id) of the call that made the job, or `None` when the call is not recorded (yet:
/// the sender may still be recording its msg_id; or ever: a console send).
pub async fn record_finish(
    client: &impl GenericClient,
    account: AccountId,
    finish: &Finish<'_>,
) -> Result<Option<((i64, String, Option<i64>), Arrival)>, tokio_postgres::Error> {
    let stored = client
        .query_opt(
            "INSERT INTO mass_job_results
                 (msg_id, status, total_count, filter_count, sent_count, error_count, account_id, copyright)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (account_id, msg_id) DO UPDATE SET status = excluded.status, total_count = excluded.total_count,
                 filter_count = excluded.filter_count, sent_count = excluded.sent_count,
                 error_count = excluded.error_count, copyright = excluded.copyright, source = 'push',
                 received_at = now()
             WHERE mass_job_results.source = 'mass_get'
             RETURNING xmax = 0",
            &[
                &finish.msg_id,
                &finish.status,
                &finish.total,
                &finish.filter,
                &finish.sent,
                &finish.error,
                &account.get(),
                &finish.copyright,
            ],
        )
        .await?;
    let Some(stored) = stored else { return Ok(None) };
    let arrival = if stored.get(0) { Arrival::First } else { Arrival::AfterReadBack };
    Ok(call_of(client, account, finish.msg_id).await?.map(|call| (call, arrival)))
}

/// One accepted WeChat call of a campaign and what WeChat said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    pub seq: i32,
    pub msg_id: i64,
    /// `None` while no result has arrived.
    pub status: Option<String>,
    /// Counts: `None` before a result, and for a status read back with `mass/get`.
    pub total: Option<i64>,
    pub filter: Option<i64>,
    pub sent: Option<i64>,
    pub error: Option<i64>,
    pub copyright: Option<serde_json::Value>,
}

/// Every accepted call of a campaign with its result (if any), by seq.
pub async fn list_call_results(
    client: &impl GenericClient,
    campaign_id: i64,
) -> Result<Vec<CallResult>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.seq, c.msg_id, r.status, r.total_count, r.filter_count, r.sent_count, r.error_count, r.copyright
             FROM campaign_chunks c JOIN campaigns k ON k.id = c.campaign_id
             LEFT JOIN mass_job_results r ON r.msg_id = c.msg_id AND r.account_id = k.account_id
             WHERE c.campaign_id = $1 AND c.msg_id IS NOT NULL ORDER BY c.seq",
            &[&campaign_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| CallResult {
            seq: r.get(0),
            msg_id: r.get(1),
            status: r.get(2),
            total: r.get(3),
            filter: r.get(4),
            sent: r.get(5),
            error: r.get(6),
            copyright: r.get(7),
        })
        .collect())
}

/// Says why a campaign that WeChat sent nothing of failed (after any error already recorded,
/// such as a refused call), unless it is no longer `failed`.
pub async fn record_failure_reason(
    client: &impl GenericClient,
    campaign_id: i64,
    reason: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE campaigns SET last_error = CASE WHEN last_error IS NULL THEN $2 ELSE last_error || '；' || $2 END,
                 updated_at = now()
             WHERE id = $1 AND status = 'failed'",
            &[&campaign_id, &reason],
        )
        .await?;
    Ok(())
}

/// Whether a job's result is the first heard of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    First,
    /// The push came after its status had been read back with `mass/get`.
    AfterReadBack,
}

/// (campaign id, kind, WeChat tag id) of the call `account`'s WeChat answered with `msg_id`
/// (msg_ids are WeChat's per account, so another account's call may carry the same).
async fn call_of(
    client: &impl GenericClient,
    account: AccountId,
    msg_id: i64,
) -> Result<Option<(i64, String, Option<i64>)>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT c.campaign_id, c.kind, c.wechat_tag_id FROM campaign_chunks c
             JOIN campaigns k ON k.id = c.campaign_id AND k.account_id = $2 WHERE c.msg_id = $1",
            &[&msg_id, &account.get()],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
}

/// Stores a job's final status as `mass/get` read it back (no counts), unless a result is
/// already there (then `None`); returns the call as [`record_finish`] does.
pub async fn record_read_back(
    client: &impl GenericClient,
    account: AccountId,
    msg_id: i64,
    status: &str,
) -> Result<Option<(i64, String, Option<i64>)>, tokio_postgres::Error> {
    let inserted = client
        .execute(
            "INSERT INTO mass_job_results (msg_id, status, source, account_id) VALUES ($1, $2, 'mass_get', $3)
             ON CONFLICT (account_id, msg_id) DO NOTHING",
            &[&msg_id, &status, &account.get()],
        )
        .await?;
    if inserted == 0 {
        return Ok(None);
    }
    call_of(client, account, msg_id).await
}

/// Accepted calls of campaigns still `sending` (or cancelled mid-send: a temporary tag waits on
/// the result to be deleted) whose result has not arrived `patience` after
/// WeChat accepted them (by the database's clock, which `submitted_at` is in): (campaign id,
/// msg_id), oldest first.
pub async fn list_overdue_results(
    client: &impl GenericClient,
    account: AccountId,
    patience: std::time::Duration,
    limit: i64,
) -> Result<Vec<(i64, i64)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.campaign_id, c.msg_id FROM campaign_chunks c JOIN campaigns k ON k.id = c.campaign_id
             WHERE k.status IN ('sending', 'cancelled') AND k.account_id = $3 AND c.state = 'submitted'
               AND c.msg_id IS NOT NULL AND c.submitted_at < now() - make_interval(secs => $1)
               AND NOT EXISTS (SELECT 1 FROM mass_job_results r WHERE r.msg_id = c.msg_id AND r.account_id = $3)
             ORDER BY c.submitted_at LIMIT $2",
            &[&patience.as_secs_f64(), &limit, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Whether WeChat's result for `account`'s `msg_id` has arrived.
pub async fn has_result(
    client: &impl GenericClient,
    account: AccountId,
    msg_id: i64,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt("SELECT 1 FROM mass_job_results WHERE msg_id = $1 AND account_id = $2", &[&msg_id, &account.get()])
        .await?
        .is_some())
}

/// Accounts with an accepted call whose result is overdue by `patience`.
pub async fn list_accounts_with_overdue_results(
    client: &impl GenericClient,
    patience: std::time::Duration,
) -> Result<Vec<AccountId>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT DISTINCT k.account_id FROM campaign_chunks c JOIN campaigns k ON k.id = c.campaign_id
             WHERE k.status IN ('sending', 'cancelled') AND c.state = 'submitted' AND c.msg_id IS NOT NULL
               AND c.submitted_at < now() - make_interval(secs => $1)
               AND NOT EXISTS (SELECT 1 FROM mass_job_results r WHERE r.msg_id = c.msg_id AND r.account_id = k.account_id)",
            &[&patience.as_secs_f64()],
        )
        .await?;
    Ok(rows.iter().map(|r| AccountId(r.get(0))).collect())
}
