//! The purchase model's runs (issue 21): each follower's history streamed a page at a time out
//! of PostgreSQL into the pure core (`domain::predict`), trained and judged against the RFM
//! baseline on the most recent fully labelled week, and, when the verdict is trusted, every
//! subscribed follower scored and the scores swapped in at once. Nothing leaves the process.
//!
//! Three passes over the account's followers keep memory to one page of histories plus the
//! training sample: the feature spec (which menu keys and quiz tags), the two cutoffs' rows, and
//! the scores as of now. A run is a job (`train_predictions`), queued daily and by the console.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde_json::json;

use crate::domain::account::AccountId;
use crate::domain::job::{Job, JobKind, TrainPredictions};
use crate::domain::predict::spec::{MAX_MENU_KEYS, MAX_TAGS};
use crate::domain::predict::{
    Cutoffs, DAY, Evaluation, Fact, FactKind, SpecBuilder, SplitCollector, TrainOptions, Verdict, Vocabulary,
};
use crate::store;
use crate::store::predictions::{FollowerHistory, History};

/// The one model so far, as `score(..)` names it.
pub const PURCHASE_MODEL: &str = "purchase_7d";
/// Followers read per page.
const PAGE: i64 = 5_000;
/// History read before the training cutoff: the features' longest look back (days since the
/// last order or follow are capped at a year).
const LOOK_BACK_DAYS: i64 = 366;
/// Followers the feature spec is chosen from (the first in openid order, which is no order a
/// follower's behaviour follows): the commonest menu keys and quiz tags of 100,000 followers are
/// those of the account, and reading every history for them cost a third of a run.
const SPEC_SAMPLE: usize = 100_000;
/// Training rows aimed at: non-buyers are sampled down to about this many (buyers all kept), and
/// the model corrects its intercept for the sampling.
const TRAINING_ROWS: f64 = 200_000.0;

#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
    #[error("training failed")]
    Train(#[from] crate::domain::predict::TrainError),
    #[error("the training task stopped")]
    Task(#[from] tokio::task::JoinError),
}

/// Scores are refreshed this often.
const EVERY: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Queues a run asked for by `who` unless one is waiting; whether one was queued.
///
/// # Errors
/// The database.
pub async fn queue_run(
    client: &impl deadpool_postgres::GenericClient,
    account: AccountId,
    who: &str,
) -> Result<bool, tokio_postgres::Error> {
    if store::jobs::is_pending(client, account, JobKind::TrainPredictions).await? {
        return Ok(false);
    }
    let job = Job::TrainPredictions(TrainPredictions { requested_by: who.to_owned() });
    store::jobs::enqueue(client, account, &job).await?;
    Ok(true)
}

/// Queues the daily run when the last one started a day ago or more.
///
/// # Errors
/// The database.
pub async fn queue_daily(
    client: &impl deadpool_postgres::GenericClient,
    account: AccountId,
) -> Result<(), tokio_postgres::Error> {
    let last = store::predictions::latest_run_started(client, account, PURCHASE_MODEL).await?;
    if last.is_none_or(|at| chrono::Utc::now() - at >= EVERY) {
        queue_run(client, account, "system").await?;
    }
    Ok(())
}

/// What a run ended with.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run: i64,
    pub verdict: Verdict,
    pub scored: usize,
    /// Wall time of each step, in order (for the log and the benchmark).
    pub phases: Vec<(&'static str, std::time::Duration)>,
}

/// Trains, judges and (when trusted) scores `account`'s purchase model as of `now`.
///
/// # Errors
/// The database or the solver; the run is then marked failed with the reason.
pub async fn run_purchase_model(
    pool: &Pool,
    account: AccountId,
    now: DateTime<Utc>,
    requested_by: &str,
) -> Result<RunOutcome, PredictError> {
    let run = store::predictions::start_run(&pool.get().await?, account, PURCHASE_MODEL, requested_by).await?;
    match train_and_score(pool, account, now, run).await {
        Ok(outcome) => Ok(outcome),
        Err(error) => {
            let reason = format!("{error}: {:?}", std::error::Error::source(&error));
            store::predictions::fail_run(&pool.get().await?, run, &reason).await?;
            Err(error)
        }
    }
}

async fn train_and_score(
    pool: &Pool,
    account: AccountId,
    now: DateTime<Utc>,
    run: i64,
) -> Result<RunOutcome, PredictError> {
    let now_s = now.timestamp();
    let cutoffs = Cutoffs::latest(now_s);
    let since = DateTime::<Utc>::from_timestamp(cutoffs.train - LOOK_BACK_DAYS * DAY, 0).unwrap_or(now);
    let mut vocab = Vocabulary::new();
    let mut phases = Phases::start();

    let mut spec = SpecBuilder::new(cutoffs.train);
    each_follower(pool, account, since, Some(SPEC_SAMPLE), &mut vocab, |_, facts| spec.observe(facts)).await?;
    let spec = spec.build(&vocab, MAX_MENU_KEYS, MAX_TAGS);
    phases.end("spec_pass");

    let followers = store::followers::count_followers(&pool.get().await?, account).await?;
    let negative_rate = (TRAINING_ROWS / followers.max(1) as f64).min(1.0);
    let mut collector = SplitCollector::new(spec.bind(&vocab), cutoffs, negative_rate, run as u64);
    each_follower(pool, account, since, None, &mut vocab, |_, facts| collector.add(facts)).await?;
    phases.end("rows_pass");
    let evaluation = tokio::task::spawn_blocking(move || collector.finish(now_s, TrainOptions::default())).await??;
    phases.end("train_and_evaluate");

    let mut scored = 0;
    if let (true, Some(model)) = (evaluation.verdict.is_trusted(), &evaluation.model) {
        let extractor = spec.bind(&vocab);
        let mut scores = Vec::new();
        each_follower(pool, account, since, None, &mut vocab, |follower, facts| {
            if follower.subscribed {
                scores.push((follower.openid.clone(), model.score(&extractor.features(facts, now_s)) as f32));
            }
        })
        .await?;
        phases.end("score_pass");
        let mut client = pool.get().await?;
        let txn = client.transaction().await?;
        store::predictions::replace_scores(&txn, account, PURCHASE_MODEL, run, &scores).await?;
        // The audience indexes read scores on a rebuild, which the epoch asks for.
        store::audience_feed::bump_epoch(&txn, account).await?;
        txn.commit().await?;
        phases.end("write_scores");
        scored = scores.len();
    } else {
        // Scores a trusted run wrote more than a prediction's horizon ago are dropped, so tags and
        // segments stop acting on them; fresher ones stay until they age out.
        let before = now - chrono::TimeDelta::days(i64::from(crate::domain::predict::evaluate::HORIZON_DAYS));
        let mut client = pool.get().await?;
        let txn = client.transaction().await?;
        if store::predictions::drop_scores_before(&txn, account, PURCHASE_MODEL, before).await? > 0 {
            store::audience_feed::bump_epoch(&txn, account).await?;
        }
        txn.commit().await?;
    }
    let finished = store::predictions::Finished {
        evaluated_at: DateTime::<Utc>::from_timestamp(cutoffs.test, 0).unwrap_or(now),
        verdict: verdict_name(&evaluation.verdict),
        verdict_zh: &evaluation.verdict.message_zh(),
        figures: figures(&evaluation, followers),
        fitted: evaluation.model.as_ref().and_then(|m| serde_json::to_value(m).ok()),
    };
    store::predictions::finish_run(&pool.get().await?, run, &finished).await?;
    phases.end("finish");
    tracing::info!(account = account.get(), run, scored, verdict = finished.verdict, phases = ?phases.done, "purchase model run finished");
    Ok(RunOutcome { run, verdict: evaluation.verdict, scored, phases: phases.done })
}

/// Wall time per step of a run, each measured from the end of the one before.
struct Phases {
    done: Vec<(&'static str, std::time::Duration)>,
    since: std::time::Instant,
}

impl Phases {
    fn start() -> Self {
        Phases { done: Vec::new(), since: std::time::Instant::now() }
    }

    fn end(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.done.push((name, now - self.since));
        self.since = now;
    }
}

/// The verdict as `prediction_runs.verdict` stores it.
pub fn verdict_name(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Trusted { .. } => "trusted",
        Verdict::NotBetterThanBaseline { .. } => "not_better_than_baseline",
        Verdict::TooLittleHistory { .. } => "too_little_history",
    }
}

/// The figures kept per run: both scorers' metrics on the held-out week and the sizes.
fn figures(evaluation: &Evaluation, followers: i64) -> serde_json::Value {
    json!({
        "followers": followers,
        "history_days": evaluation.history_days,
        "train_positives": evaluation.train_positives,
        "test_positives": evaluation.test_positives,
        "test_rows": evaluation.test_rows,
        "model": evaluation.model_metrics,
        "baseline": evaluation.baseline_metrics,
        "weights": evaluation.model.as_ref().map(|m| {
            m.explain().into_iter().take(8).map(|(name, w)| json!({ "feature": name.zh, "weight": w })).collect::<Vec<_>>()
        }),
    })
}

/// Calls `visit` with every follower of `account` (or the first `limit`, in openid order) and
/// their facts since `since`, a page at a time.
async fn each_follower(
    pool: &Pool,
    account: AccountId,
    since: DateTime<Utc>,
    limit: Option<usize>,
    vocab: &mut Vocabulary,
    mut visit: impl FnMut(&FollowerHistory, &[Fact]),
) -> Result<(), PredictError> {
    // Two connections: a page's events are read while its other history is (see history_page).
    let (client, events_client) = (pool.get().await?, pool.get().await?);
    let mut after = String::new();
    let mut facts = Vec::new();
    let mut seen = 0;
    loop {
        if limit.is_some_and(|limit| seen >= limit) {
            return Ok(());
        }
        let page = store::predictions::history_page(&client, &events_client, account, &after, PAGE, since).await?;
        seen += page.followers.len();
        for follower in &page.followers {
            facts.clear();
            to_facts(follower, vocab, &mut facts);
            visit(follower, &facts);
        }
        match page.last_openid() {
            Some(last) if page.followers.len() as i64 == PAGE => last.clone_into(&mut after),
            _ => return Ok(()),
        }
    }
}

/// A follower's stored history as the model's facts.
fn to_facts(follower: &FollowerHistory, vocab: &mut Vocabulary, out: &mut Vec<Fact>) {
    let mut followed = false;
    for row in &follower.rows {
        let mut fact = |kind| out.push(Fact { at: row.at, kind });
        match &row.what {
            History::Event { kind, key } => {
                let key = key.as_deref();
                match kind.as_str() {
                    "click" => fact(FactKind::MenuClick { key: vocab.intern(key.unwrap_or_default()) }),
                    "view" => fact(FactKind::ArticleView { key: vocab.intern(key.unwrap_or_default()) }),
                    "text" => fact(FactKind::Text),
                    "subscribe" => {
                        followed = true;
                        let scene = key.and_then(|k| k.strip_prefix("qrscene_")).filter(|s| !s.is_empty());
                        fact(FactKind::Follow { scene: scene.map(|s| vocab.intern(s)) });
                    }
                    "scan" => fact(FactKind::Scan { scene: vocab.intern(key.unwrap_or_default()) }),
                    _ => {}
                }
            }
            // A refund is no purchase: its amount counts as nothing bought.
            History::Order { amount_cents } => {
                fact(FactKind::Order { amount_fen: u32::try_from((*amount_cents).max(0)).unwrap_or(u32::MAX) });
            }
            History::Delivery => fact(FactKind::Delivery),
            History::LinkClick => fact(FactKind::LinkClick),
            History::QuizTags { tags } => {
                for tag in tags {
                    let tag = vocab.intern(tag);
                    out.push(Fact { at: row.at, kind: FactKind::QuizTag { tag } });
                }
            }
        }
    }
    // Followers imported by `sync` (or followed before the look-back) have no subscribe event:
    // the follower row says since when they follow.
    if !followed {
        out.push(Fact { at: follower.followed_at, kind: FactKind::Follow { scene: None } });
    }
}
