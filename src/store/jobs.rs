//! `jobs`: background work other than tag changes. Claimed with `FOR UPDATE SKIP LOCKED`, so any
//! number of processes can run workers; failures are retried on a schedule and never deleted.
//! A row is a [`Job`]'s kind and payload (see [`crate::domain::job`]).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;
use crate::domain::job::{Job, JobDecodeError, JobKind};

/// A claimed job.
#[derive(Debug)]
pub struct ClaimedJob {
    pub id: i64,
    /// Whose work it is: the job runs with that account's client and touches only its rows.
    pub account: AccountId,
    /// The kind as stored, for logs (also when it names no kind this release knows).
    pub kind: String,
    /// The job, or why the row holds none this release can run.
    pub job: Result<Job, JobDecodeError>,
    pub attempts: i32,
}

const ENQUEUE: &str = "INSERT INTO jobs (account_id, kind, payload) VALUES ($1, $2, $3) RETURNING id";

/// Queues a job of `account`, in the caller's transaction.
pub async fn enqueue(client: &impl GenericClient, account: AccountId, job: &Job) -> Result<i64, tokio_postgres::Error> {
    Ok(client.query_one(ENQUEUE, &[&account.get(), &job.kind().as_str(), &job.payload()]).await?.get(0))
}

const CLAIM_AFTER: &str = "SELECT id, kind, payload, attempts, account_id FROM jobs
             WHERE state = 'pending' AND run_at <= now() AND account_id > $1 AND kind <> ALL($2::text[])
             ORDER BY account_id, run_at LIMIT 1 FOR UPDATE SKIP LOCKED";

/// Takes the next due job, holding its row lock until the caller's transaction ends. A row that
/// holds no job this release can run is claimed all the same, with the reason in
/// [`ClaimedJob::job`].
///
/// Fair between accounts: round robin by account id, starting after `after` (the account the
/// caller claimed for last), each account's oldest due job first. A job of an account waits for
/// at most one job of each other account with due work, however deep their backlogs (10,000
/// due jobs of one account delay another's next job by one job, not 10,000). Round robin rather
/// than "the account unclaimed longest" because it needs no shared state: each worker keeps
/// its own place, and `jobs_due_by_account` answers either probe with a short range scan. With
/// one account this is the oldest due job first, as before accounts.
///
/// Jobs of the kinds in `skip` are left to their own lane ([`claim_leased`]).
pub async fn claim_next(
    client: &impl GenericClient,
    after: Option<AccountId>,
    skip: &[JobKind],
) -> Result<Option<ClaimedJob>, tokio_postgres::Error> {
    let skip = kind_names(skip);
    let after = after.map_or(i64::MIN, AccountId::get);
    let mut row = client.query_opt(CLAIM_AFTER, &[&after, &skip]).await?;
    if row.is_none() && after != i64::MIN {
        // Every account after `after` is idle: wrap around to the first.
        row = client.query_opt(CLAIM_AFTER, &[&i64::MIN, &skip]).await?;
    }
    Ok(row.map(|r| claimed(&r)))
}

fn kind_names(kinds: &[JobKind]) -> Vec<&'static str> {
    kinds.iter().map(|k| k.as_str()).collect()
}

fn claimed(r: &tokio_postgres::Row) -> ClaimedJob {
    let kind: String = r.get(1);
    let job = Job::decode(&kind, r.get(2));
    ClaimedJob { id: r.get(0), account: AccountId(r.get(4)), kind, job, attempts: r.get(3) }
}

const IS_PENDING: &str = "SELECT 1 FROM jobs WHERE kind = $1 AND state = 'pending' AND account_id = $2 LIMIT 1";

/// Whether a job of `kind` of `account` is waiting to run.
pub async fn is_pending(
    client: &impl GenericClient,
    account: AccountId,
    kind: JobKind,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client.query_opt(IS_PENDING, &[&kind.as_str(), &account.get()]).await?.is_some())
}

/// Whether a job of `kind` of `account` waits and has not started: a running job's row is
/// locked by its worker and skipped here, so work that arrives while it runs queues another.
pub async fn is_waiting(
    client: &impl GenericClient,
    account: AccountId,
    kind: JobKind,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT 1 FROM jobs WHERE kind = $1 AND state = 'pending' AND account_id = $2
             LIMIT 1 FOR UPDATE SKIP LOCKED",
            &[&kind.as_str(), &account.get()],
        )
        .await?;
    Ok(row.is_some())
}

/// Queues `job` unless one of its kind for `account` waits and has not started ([`is_waiting`]).
/// Returns whether it queued one.
pub async fn enqueue_unless_waiting(
    client: &impl GenericClient,
    account: AccountId,
    job: &Job,
) -> Result<bool, tokio_postgres::Error> {
    if is_waiting(client, account, job.kind()).await? {
        return Ok(false);
    }
    enqueue(client, account, job).await?;
    Ok(true)
}

const IS_PENDING_WITHOUT_PAYLOAD: &str = "SELECT 1 FROM jobs
             WHERE kind = $1 AND state = 'pending' AND payload = '{}'::jsonb AND account_id = $2 LIMIT 1";

/// Whether a job of `kind` of `account` with an empty payload (`{}`) is waiting to run.
pub async fn is_pending_without_payload(
    client: &impl GenericClient,
    account: AccountId,
    kind: JobKind,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client.query_opt(IS_PENDING_WITHOUT_PAYLOAD, &[&kind.as_str(), &account.get()]).await?.is_some())
}

const COMPLETE: &str = "UPDATE jobs SET state = 'done', updated_at = now() WHERE id = $1";

/// Marks a job done.
pub async fn complete(client: &impl GenericClient, id: i64) -> Result<(), tokio_postgres::Error> {
    client.execute(COMPLETE, &[&id]).await?;
    Ok(())
}

const FAIL: &str = "UPDATE jobs SET attempts = attempts + 1, last_error = $2, updated_at = now(),
                 state = CASE WHEN $3::timestamptz IS NULL THEN 'dead' ELSE 'pending' END,
                 run_at = coalesce($3, run_at)
             WHERE id = $1";

/// Records a failure: retried at `retry_at`, or dead when `None`.
pub async fn fail(
    client: &impl GenericClient,
    id: i64,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<(), tokio_postgres::Error> {
    client.execute(FAIL, &[&id, &error, &retry_at]).await?;
    Ok(())
}

const POSTPONE: &str =
    "UPDATE jobs SET last_error = $2, updated_at = now(), state = 'pending', run_at = $3 WHERE id = $1";

/// Runs a job again at `until` without counting an attempt: WeChat asked it to wait.
pub async fn postpone(
    client: &impl GenericClient,
    id: i64,
    reason: &str,
    until: DateTime<Utc>,
) -> Result<(), tokio_postgres::Error> {
    client.execute(POSTPONE, &[&id, &reason, &until]).await?;
    Ok(())
}

const COUNT_BY_STATE: &str = "SELECT count(*) FROM jobs WHERE state = $1";

/// Counts jobs by state (tests and metrics).
pub async fn count_by_state(client: &impl GenericClient, state: &str) -> Result<i64, tokio_postgres::Error> {
    Ok(client.query_one(COUNT_BY_STATE, &[&state]).await?.get(0))
}

/// A job claimed under a lease: the row stays `pending` with `locked_until` ahead, and every
/// later write names the attempt it was claimed for, so a runner whose lease lapsed (and whose
/// job another runner took) changes nothing.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub id: i64,
    /// `attempts` as the claim left it (the attempt under way counted).
    pub attempt: i32,
}

/// One claim at a time across instances, so a claim sees every lease committed before it and two
/// runners never take long jobs of one account at once.
const LEASE_CLAIMS: i64 = 0x6c65_6173_6521;

const CLAIM_LEASED: &str = "
    WITH next AS (
        SELECT id FROM jobs j
         WHERE state = 'pending' AND run_at <= now() AND account_id > $2 AND kind = ANY($1::text[])
           AND (locked_until IS NULL OR locked_until <= now())
           AND NOT EXISTS (SELECT 1 FROM jobs busy
                            WHERE busy.account_id = j.account_id AND busy.state = 'pending'
                              AND busy.kind = ANY($1::text[]) AND busy.locked_until > now())
         ORDER BY account_id, run_at LIMIT 1 FOR UPDATE SKIP LOCKED)
    UPDATE jobs SET locked_until = now() + $3::float8 * interval '1 second',
                    attempts = attempts + 1, updated_at = now()
      FROM next WHERE jobs.id = next.id
    RETURNING jobs.id, jobs.kind, jobs.payload, jobs.attempts - 1, jobs.account_id";

/// Takes the next due job of `kinds` whose account has none of them running, leased for
/// `lease`, in turn between accounts as [`claim_next`]. The attempt is counted at the claim, so
/// a job whose runner keeps dying still runs out of attempts. Commit `txn` at once: the lease,
/// not the transaction, keeps others off the row.
pub async fn claim_leased(
    txn: &deadpool_postgres::Transaction<'_>,
    kinds: &[JobKind],
    after: Option<AccountId>,
    lease: std::time::Duration,
) -> Result<Option<(ClaimedJob, Lease)>, tokio_postgres::Error> {
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&LEASE_CLAIMS]).await?;
    let kinds = kind_names(kinds);
    let seconds = lease.as_secs_f64();
    let after = after.map_or(i64::MIN, AccountId::get);
    let mut row = txn.query_opt(CLAIM_LEASED, &[&kinds, &after, &seconds]).await?;
    if row.is_none() && after != i64::MIN {
        row = txn.query_opt(CLAIM_LEASED, &[&kinds, &i64::MIN, &seconds]).await?;
    }
    Ok(row.map(|r| {
        let job = claimed(&r);
        let lease = Lease { id: job.id, attempt: job.attempts + 1 };
        (job, lease)
    }))
}

const RENEW: &str = "UPDATE jobs SET locked_until = now() + $3::float8 * interval '1 second'
             WHERE id = $1 AND attempts = $2 AND state = 'pending'";

/// Extends a lease; false when it is no longer this runner's.
pub async fn renew_lease(
    client: &impl GenericClient,
    lease: Lease,
    by: std::time::Duration,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client.execute(RENEW, &[&lease.id, &lease.attempt, &by.as_secs_f64()]).await? == 1)
}

const COMPLETE_LEASED: &str = "UPDATE jobs SET state = 'done', locked_until = NULL, updated_at = now()
             WHERE id = $1 AND attempts = $2";

/// Marks a leased job done; false when the lease was lost.
pub async fn complete_leased(client: &impl GenericClient, lease: Lease) -> Result<bool, tokio_postgres::Error> {
    Ok(client.execute(COMPLETE_LEASED, &[&lease.id, &lease.attempt]).await? == 1)
}

const FAIL_LEASED: &str = "UPDATE jobs SET last_error = $3, locked_until = NULL, updated_at = now(),
                 state = CASE WHEN $4::timestamptz IS NULL THEN 'dead' ELSE 'pending' END,
                 run_at = coalesce($4, run_at)
             WHERE id = $1 AND attempts = $2";

/// [`fail`] for a leased job (its attempt was counted at the claim); false when the lease was lost.
pub async fn fail_leased(
    client: &impl GenericClient,
    lease: Lease,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client.execute(FAIL_LEASED, &[&lease.id, &lease.attempt, &error, &retry_at]).await? == 1)
}

const POSTPONE_LEASED: &str = "UPDATE jobs SET attempts = attempts - 1, last_error = $3, locked_until = NULL,
                 updated_at = now(), state = 'pending', run_at = $4
             WHERE id = $1 AND attempts = $2";

/// [`postpone`] for a leased job: the claim's attempt is given back; false when the lease was lost.
pub async fn postpone_leased(
    client: &impl GenericClient,
    lease: Lease,
    reason: &str,
    until: DateTime<Utc>,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client.execute(POSTPONE_LEASED, &[&lease.id, &lease.attempt, &reason, &until]).await? == 1)
}
