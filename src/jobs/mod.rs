//! Background work: delivering the tag outbox to WeChat, queued jobs (deleting a tag on WeChat,
//! reconciling tags, the scheduled pass over dynamic tags, sending campaigns, fetching their
//! reads and reading back results WeChat never pushed), firing scheduled campaigns, and housekeeping (abandoned quizzes). Any number of
//! processes may run workers on one database: rows are claimed with `FOR UPDATE SKIP LOCKED`.
//!
//! `run_pending(&ctx)` does everything due once and is what tests call; production runs
//! [`spawn_workers`], which loops until cancelled.
//!
//! A queued job is a [`Job`]: one file here per kind, each with its `run`, and [`run_job`]
//! dispatches on the variant.
//!
//! Several accounts: every job is an account's and runs with its client; claiming takes the
//! accounts in turn ([`store::jobs::claim_next`]), a send makes one WeChat call per job run
//! (then queues its next), and the periodic passes queue one job per account that needs it, so
//! one account's backlog or long send delays another's work by one job at most.

pub mod campaigns;
pub mod check_mass_results;
pub mod delete_wechat_tag;
pub mod fetch_article_reads;
pub mod lane;
pub mod outbox;
pub mod reconcile_tags;
pub mod refresh_drafts;
pub mod refresh_dynamic_tags;
pub mod rename_wechat_tag;
pub mod send_campaign;
pub mod train_intents;
pub mod train_predictions;

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_util::sync::CancellationToken;

use crate::domain::job::Job;
use crate::store;
use crate::wechat::api::{ApiClient, WeChatError};

/// What jobs need.
#[derive(Clone, Debug)]
pub struct JobCtx {
    pub pool: Pool,
    /// The first account's client (jobs of other accounts take theirs from `accounts`).
    pub api: ApiClient,
    pub accounts: crate::app::accounts::Accounts,
    /// The account the job at hand belongs to; `api` and `campaigns.account_type` are its.
    pub account: crate::domain::account::AccountId,
    /// A quiz untouched this long is abandoned.
    pub quiz_expiry: Duration,
    /// The time dynamic tags are evaluated at.
    pub clock: crate::domain::clock::Clock,
    /// The account type, cap and clock campaigns are sent by.
    pub campaigns: crate::app::campaigns::CampaignSettings,
    /// Where this worker is in its round of the accounts (see [`run_next_job`]).
    pub turn: ClaimTurn,
}

/// The account a worker claimed a job for last: its next claim starts after it. Shared by the
/// clones of one context (a place in the round, not a lock).
#[derive(Debug, Clone, Default)]
pub struct ClaimTurn(std::sync::Arc<AtomicI64>);

impl JobCtx {
    /// This context for a job of `account`: its WeChat client and kind.
    ///
    /// # Errors
    /// Retry: the account is unknown here (created on another instance a moment ago) or has no
    /// AppID and AppSecret yet.
    pub fn scoped(&self, account: crate::domain::account::AccountId) -> Result<Self, JobError> {
        if account == self.account && self.campaigns.account == account {
            return Ok(self.clone());
        }
        let live =
            self.accounts.get(account).ok_or_else(|| JobError::Retry(format!("account {account} is not loaded")))?;
        let api = live
            .api
            .clone()
            .ok_or_else(|| JobError::Retry(format!("account `{}` has no AppID and AppSecret set", live.name)))?;
        let mut scoped = self.clone();
        scoped.api = api;
        scoped.account = account;
        scoped.campaigns.account_type = live.kind;
        scoped.campaigns.account = account;
        Ok(scoped)
    }
}

/// Why a job failed: retried later, or never.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Retry(String),
    #[error("{0}")]
    Permanent(String),
    /// Not a failure: WeChat asked to wait (a clientmsgid repeated within its minute, a daily
    /// quota used up until Beijing midnight). The job runs again at `until`, and the wait does
    /// not count toward [`MAX_ATTEMPTS`].
    #[error("{reason}")]
    Wait { reason: String, until: chrono::DateTime<chrono::Utc> },
}

/// A failed WeChat call: retried when WeChat or the network may answer next time; a used-up
/// daily quota waits for Beijing midnight without spending an attempt.
fn classify(error: WeChatError) -> JobError {
    if let Some(until) = error.quota_resumes_at() {
        return JobError::Wait { reason: error.to_string(), until };
    }
    if error.is_transient() || matches!(error, WeChatError::Transport(_) | WeChatError::Http(_)) {
        JobError::Retry(error.to_string())
    } else {
        JobError::Permanent(error.to_string())
    }
}

/// A failed database call: retried.
fn db(error: impl std::fmt::Display) -> JobError {
    JobError::Retry(format!("database: {error}"))
}

/// Why a round of background work stopped early; the loop tries again shortly.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
}

/// Whether a call found work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ran,
    Idle,
}

/// The pause before attempt `attempts + 1` of a job or outbox row; after [`MAX_ATTEMPTS`], none.
pub fn retry_at(attempts: i32) -> Option<chrono::DateTime<chrono::Utc>> {
    if attempts + 1 >= MAX_ATTEMPTS {
        return None;
    }
    let seconds = 2_i64.saturating_pow(attempts.clamp(0, 12) as u32).min(3_600);
    let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=seconds / 4 + 1);
    Some(chrono::Utc::now() + chrono::Duration::seconds(seconds + jitter))
}

/// Attempts before a job or outbox row is declared dead.
pub const MAX_ATTEMPTS: i32 = 12;

/// Runs the next due job, if any: the oldest due job of the next account in turn. Long kinds
/// are left to [`lane`]. A short job runs inside the transaction that claimed it.
///
/// # Errors
/// The database failed (a job's own failure is recorded, not returned).
pub async fn run_next_job(ctx: &JobCtx) -> Result<Outcome, WorkerError> {
    let mut client = ctx.pool.get().await?;
    let txn = client.transaction().await?;
    let after = crate::domain::account::AccountId(ctx.turn.0.load(Ordering::Relaxed));
    let Some(job) = store::jobs::claim_next(&txn, Some(after), lane::LONG_KINDS).await? else {
        return Ok(Outcome::Idle);
    };
    ctx.turn.0.store(job.account.get(), Ordering::Relaxed);
    let result = match (&job.job, ctx.scoped(job.account)) {
        (Ok(queued), Ok(ctx)) => run_job(&ctx, queued).await,
        (Ok(_), Err(error)) => Err(error),
        // A kind this release does not know, or a payload that does not fit its kind.
        (Err(error), _) => Err(JobError::Permanent(error.to_string())),
    };
    match result {
        Ok(()) => store::jobs::complete(&txn, job.id).await?,
        Err(JobError::Retry(error)) => {
            let next = retry_at(job.attempts);
            tracing::warn!(job.id, job.kind = %job.kind, %error, dead = next.is_none(), "job failed");
            store::jobs::fail(&txn, job.id, &error, next).await?;
        }
        Err(JobError::Permanent(error)) => {
            tracing::error!(job.id, job.kind = %job.kind, %error, "job failed for good");
            store::jobs::fail(&txn, job.id, &error, None).await?;
        }
        Err(JobError::Wait { reason, until }) => {
            tracing::info!(job.id, job.kind = %job.kind, %reason, %until, "job waits");
            store::jobs::postpone(&txn, job.id, &reason, until).await?;
        }
    }
    txn.commit().await?;
    Ok(Outcome::Ran)
}

/// Runs one job.
///
/// # Errors
/// The job's failure, to be retried or not.
pub async fn run_job(ctx: &JobCtx, job: &Job) -> Result<(), JobError> {
    match job {
        Job::DeleteWechatTag(job) => delete_wechat_tag::run(ctx, job).await,
        Job::RenameWechatTag(job) => rename_wechat_tag::run(ctx, job).await,
        Job::ReconcileTags(_) => reconcile_tags::run(ctx).await,
        Job::RefreshDynamicTags(job) => refresh_dynamic_tags::run(ctx, job).await,
        Job::SendCampaign(job) => send_campaign::run(ctx, job).await,
        Job::FetchArticleReads(_) => fetch_article_reads::run(ctx).await,
        Job::CheckMassResults(_) => check_mass_results::run(ctx).await,
        Job::RefreshDrafts(_) => refresh_drafts::run(ctx).await,
        Job::TrainPredictions(job) => train_predictions::run(ctx, job).await,
        Job::TrainIntents(job) => train_intents::run(ctx, job).await,
    }
}

/// Everything due, until nothing is: what tests call instead of waiting for the loop. Long jobs
/// run here too, in turn with the rest.
///
/// # Errors
/// The database failed.
pub async fn run_pending(ctx: &JobCtx) -> Result<(), WorkerError> {
    sweep_quizzes(ctx).await;
    sweep_campaigns(ctx).await;
    let long_turn = ClaimTurn::default();
    loop {
        let fired = campaigns::fire_scheduled(ctx).await?;
        let delivered = outbox::deliver_due(ctx).await?;
        let job = run_next_job(ctx).await?;
        let long = lane::run_next_long_job(ctx, &long_turn, &CancellationToken::new()).await?;
        if fired == 0 && delivered == Outcome::Idle && job == Outcome::Idle && long == Outcome::Idle {
            return Ok(());
        }
    }
}

/// Starts the worker loop and the long lane ([`lane`]) on the current runtime; both stop when
/// `cancel` fires, after the work in hand.
pub fn spawn_workers(ctx: JobCtx, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    let long = lane::spawn(ctx.clone(), cancel.clone());
    tokio::spawn(async move {
        main_loop(ctx, cancel).await;
        if let Err(error) = long.await {
            tracing::warn!(%error, "the long job lane stopped abnormally");
        }
    })
}

async fn main_loop(ctx: JobCtx, cancel: CancellationToken) {
    let mut last_sweep = tokio::time::Instant::now();
    // The first pass comes one period after start, like the quiz sweep.
    let mut last_refresh = tokio::time::Instant::now();
    let mut last_reads = tokio::time::Instant::now();
    let mut last_campaign_sweep = tokio::time::Instant::now();
    loop {
        let fired = campaigns::fire_scheduled(&ctx).await;
        let busy = match (outbox::deliver_due(&ctx).await, run_next_job(&ctx).await, fired) {
            (Ok(a), Ok(b), Ok(fired)) => a == Outcome::Ran || b == Outcome::Ran || fired > 0,
            (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
                tracing::warn!(%error, "background work failed; trying again shortly");
                false
            }
        };
        if last_sweep.elapsed() > Duration::from_secs(60) {
            last_sweep = tokio::time::Instant::now();
            sweep_quizzes(&ctx).await;
        }
        if last_refresh.elapsed() > refresh_dynamic_tags::REFRESH_EVERY {
            last_refresh = tokio::time::Instant::now();
            schedule_refresh(&ctx).await;
        }
        if last_reads.elapsed() > READS_EVERY {
            last_reads = tokio::time::Instant::now();
            schedule_read_fetch(&ctx).await;
        }
        if last_campaign_sweep.elapsed() > CAMPAIGN_SWEEP_EVERY {
            last_campaign_sweep = tokio::time::Instant::now();
            sweep_campaigns(&ctx).await;
        }
        if !busy {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        } else if cancel.is_cancelled() {
            return;
        }
    }
}

/// datacube's figures are daily; asking hourly picks a finished day up soon after WeChat has it.
const READS_EVERY: Duration = Duration::from_secs(3600);

/// Queues the article read fetch and the draft refresh of every account that has a WeChat client.
async fn schedule_read_fetch(ctx: &JobCtx) {
    match ctx.pool.get().await {
        Ok(client) => {
            for live in ctx.accounts.all() {
                if live.api.is_none() {
                    continue;
                }
                if let Err(error) = fetch_article_reads::enqueue_read_fetch(&client, live.id).await {
                    tracing::warn!(%error, account = live.id.get(), "queueing the article read fetch failed");
                }
                if let Err(error) = crate::app::predictions::queue_daily(&client, live.id).await {
                    tracing::warn!(%error, account = live.id.get(), "queueing the daily prediction run failed");
                }
                // Drafts change in WeChat's console; hourly keeps the composer's list near enough.
                if let Err(error) = refresh_drafts::enqueue_refresh(&client, live.id).await {
                    tracing::warn!(%error, account = live.id.get(), "queueing the draft refresh failed");
                }
            }
        }
        Err(error) => tracing::warn!(%error, "queueing the article read fetch failed"),
    }
}

/// How often workers look over campaigns under way (stalled sends, overdue results).
const CAMPAIGN_SWEEP_EVERY: Duration = Duration::from_secs(60);

async fn sweep_campaigns(ctx: &JobCtx) {
    match ctx.pool.get().await {
        Ok(client) => {
            if let Err(error) = campaigns::sweep(&client, ctx.campaigns.result_wait).await {
                tracing::warn!(%error, "looking over campaigns under way failed");
            }
        }
        Err(error) => tracing::warn!(%error, "looking over campaigns under way failed"),
    }
}

/// Queues the scheduled dynamic tag pass of every account with a tag whose `when` time alone
/// can change.
async fn schedule_refresh(ctx: &JobCtx) {
    match ctx.pool.get().await {
        Ok(client) => {
            if let Err(error) = refresh_dynamic_tags::enqueue_scheduled(&client).await {
                tracing::warn!(%error, "queueing the dynamic tag pass failed");
            }
        }
        Err(error) => tracing::warn!(%error, "queueing the dynamic tag pass failed"),
    }
}

async fn sweep_quizzes(ctx: &JobCtx) {
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(ctx.quiz_expiry).unwrap_or_default();
    if let Ok(client) = ctx.pool.get().await {
        match store::quizzes::delete_expired_sessions(&client, cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "abandoned quizzes expired"),
            Err(error) => tracing::warn!(%error, "expiring abandoned quizzes failed"),
        }
    }
}
