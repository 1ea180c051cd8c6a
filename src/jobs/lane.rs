//! The long lane: jobs that may run for minutes (training) are claimed by a task of their own,
//! so the main loop keeps delivering the outbox, firing campaigns and running short jobs
//! meanwhile. A long job is claimed under a lease ([`store::jobs::claim_leased`]) that the runner
//! extends while it works; no transaction stays open during the run, and a runner that dies
//! leaves the job to be claimed again once the lease lapses. Within an account, long jobs run one
//! at a time, across every instance.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{ClaimTurn, JobCtx, JobError, MAX_ATTEMPTS, Outcome, WorkerError, retry_at, run_job};
use crate::domain::job::JobKind;
use crate::store;
use crate::store::jobs::Lease;

/// The kinds that run in this lane; the main loop never claims them.
pub const LONG_KINDS: &[JobKind] = &[JobKind::TrainPredictions];

/// How long a claim holds without word from its runner.
const LEASE: Duration = Duration::from_secs(120);
/// The runner extends its lease this often: a few missed renewals (a slow database) do not lose it.
const RENEW_EVERY: Duration = Duration::from_secs(20);

/// Runs the next due long job, if any, to its end.
///
/// When `cancel` fires mid-run, the job is dropped and handed back, its attempt uncounted, for
/// this or another instance to run again.
///
/// # Errors
/// The database failed (a job's own failure is recorded, not returned).
pub async fn run_next_long_job(
    ctx: &JobCtx,
    turn: &ClaimTurn,
    cancel: &CancellationToken,
) -> Result<Outcome, WorkerError> {
    let claimed = {
        let mut client = ctx.pool.get().await?;
        let txn = client.transaction().await?;
        let after = crate::domain::account::AccountId(turn.0.load(Ordering::Relaxed));
        let claimed = store::jobs::claim_leased(&txn, LONG_KINDS, Some(after), LEASE).await?;
        txn.commit().await?;
        claimed
    };
    let Some((job, lease)) = claimed else {
        return Ok(Outcome::Idle);
    };
    turn.0.store(job.account.get(), Ordering::Relaxed);
    let result = if job.attempts >= MAX_ATTEMPTS {
        // Every earlier attempt ended with its runner gone (the process stopped mid-run).
        Err(JobError::Permanent("运行多次中途中断，已停止重试；请查看服务日志后重新发起".to_owned()))
    } else {
        match (&job.job, ctx.scoped(job.account)) {
            (Ok(queued), Ok(ctx)) => match keep_lease(&ctx, lease, cancel, run_job(&ctx, queued)).await {
                Leased::Done(result) => result,
                Leased::Lost => {
                    tracing::warn!(job.id, job.kind = %job.kind, "job's lease was lost; its run is dropped");
                    return Ok(Outcome::Ran);
                }
                Leased::Stopped => Err(JobError::Wait {
                    reason: "服务停止时中断，将自动重新运行".to_owned(),
                    until: chrono::Utc::now(),
                }),
            },
            (Ok(_), Err(error)) => Err(error),
            (Err(error), _) => Err(JobError::Permanent(error.to_string())),
        }
    };
    let client = ctx.pool.get().await?;
    let ours = match result {
        Ok(()) => store::jobs::complete_leased(&client, lease).await?,
        Err(JobError::Retry(error)) => {
            let next = retry_at(job.attempts);
            tracing::warn!(job.id, job.kind = %job.kind, %error, dead = next.is_none(), "job failed");
            store::jobs::fail_leased(&client, lease, &error, next).await?
        }
        Err(JobError::Permanent(error)) => {
            tracing::error!(job.id, job.kind = %job.kind, %error, "job failed for good");
            store::jobs::fail_leased(&client, lease, &error, None).await?
        }
        Err(JobError::Wait { reason, until }) => {
            tracing::info!(job.id, job.kind = %job.kind, %reason, %until, "job waits");
            store::jobs::postpone_leased(&client, lease, &reason, until).await?
        }
    };
    if !ours {
        tracing::warn!(job.id, job.kind = %job.kind, "job's lease was lost before its outcome was recorded");
    }
    Ok(Outcome::Ran)
}

enum Leased<T> {
    Done(T),
    /// The lease is no longer this runner's (another runner has the job).
    Lost,
    /// The worker is stopping.
    Stopped,
}

/// Drives `work` while extending `lease`; the work is dropped when the lease is lost or `cancel`
/// fires.
async fn keep_lease<T>(
    ctx: &JobCtx,
    lease: Lease,
    cancel: &CancellationToken,
    work: impl Future<Output = T>,
) -> Leased<T> {
    let mut work = std::pin::pin!(work);
    let mut renew = tokio::time::interval(RENEW_EVERY);
    renew.tick().await;
    loop {
        tokio::select! {
            result = &mut work => return Leased::Done(result),
            () = cancel.cancelled() => return Leased::Stopped,
            _ = renew.tick() => {
                let renewed = match ctx.pool.get().await {
                    Ok(client) => store::jobs::renew_lease(&client, lease, LEASE).await.map_err(|e| e.to_string()),
                    Err(error) => Err(error.to_string()),
                };
                match renewed {
                    Ok(true) => {}
                    Ok(false) => return Leased::Lost,
                    // Tried again at the next tick, well before the lease lapses.
                    Err(error) => tracing::warn!(job.id = lease.id, %error, "extending a job's lease failed"),
                }
            }
        }
    }
}

/// Starts the long lane on the current runtime; it stops when `cancel` fires, handing the job
/// in hand back.
pub fn spawn(ctx: JobCtx, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let turn = ClaimTurn::default();
        loop {
            let busy = match run_next_long_job(&ctx, &turn, &cancel).await {
                Ok(outcome) => outcome == Outcome::Ran,
                Err(error) => {
                    tracing::warn!(%error, "the long job lane failed; trying again shortly");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            } else if cancel.is_cancelled() {
                return;
            }
        }
    })
}
