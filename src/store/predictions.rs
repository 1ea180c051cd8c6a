//! What the prediction models read and write: each follower's history as plain rows (events,
//! orders, campaign deliveries and link clicks, quiz results), a page of followers at a time so
//! a training run over a million followers holds one page in memory; the runs with their
//! figures; and the scores a trusted run writes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

/// One thing in a follower's history, as stored; `app::predictions` turns it into a model fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// Unix seconds.
    pub at: i64,
    pub what: History,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum History {
    /// An `events` row: its kind (`click`, `view`, `text`, `subscribe`, `scan`…) and EventKey.
    Event {
        kind: String,
        key: Option<String>,
    },
    Order {
        amount_cents: i64,
    },
    /// A campaign the follower was among the recipients of, when its send was asked for.
    Delivery,
    LinkClick,
    /// A finished quiz and the tags its result gave.
    QuizTags {
        tags: Vec<String>,
    },
}

/// A page of followers with their histories since `since`.
#[derive(Debug, Default)]
pub struct HistoryPage {
    /// In openid order.
    pub followers: Vec<FollowerHistory>,
}

/// One follower's history.
#[derive(Debug)]
pub struct FollowerHistory {
    pub openid: String,
    pub subscribed: bool,
    /// Unix seconds of the follow tagcast knows (or first saw them), whatever `since` is.
    pub followed_at: i64,
    /// In no particular order.
    pub rows: Vec<HistoryRow>,
}

impl HistoryPage {
    pub fn last_openid(&self) -> Option<&str> {
        self.followers.last().map(|f| f.openid.as_str())
    }
}

// Kinds a model learns from; the rest (locations, job reports) say nothing about buying.
const EVENTS: &str = "
    SELECT openid, kind, event_key, extract(epoch FROM occurred_at)::bigint FROM events
    WHERE account_id = $1 AND openid = ANY($2) AND occurred_at >= $3
      AND kind IN ('click', 'view', 'text', 'subscribe', 'scan')";
const ORDERS: &str = "
    SELECT openid, amount_cents, extract(epoch FROM occurred_at)::bigint FROM orders
    WHERE account_id = $1 AND openid = ANY($2) AND occurred_at >= $3";
const DELIVERIES: &str = "
    SELECT r.openid, extract(epoch FROM c.send_requested_at)::bigint
    FROM campaign_recipients r JOIN campaigns c ON c.id = r.campaign_id
    WHERE c.account_id = $1 AND r.openid = ANY($2) AND c.send_requested_at >= $3";
const LINK_CLICKS: &str = "
    SELECT k.openid, extract(epoch FROM k.clicked_at)::bigint
    FROM campaign_clicks k JOIN campaigns c ON c.id = k.campaign_id
    WHERE c.account_id = $1 AND k.openid = ANY($2) AND k.clicked_at >= $3";
const QUIZZES: &str = "
    SELECT openid, tags, extract(epoch FROM finished_at)::bigint FROM quiz_answers
    WHERE account_id = $1 AND openid = ANY($2) AND finished_at >= $3";

/// Up to `limit` followers of `account` after `after` (in openid order; simulated test followers
/// left out) with their history since `since`.
///
/// The events, by far the most rows, are read on `events_client` while the rest is read on
/// `client`, so the database works on both at once.
pub async fn history_page(
    client: &impl GenericClient,
    events_client: &impl GenericClient,
    account: AccountId,
    after: &str,
    limit: i64,
    since: DateTime<Utc>,
) -> Result<HistoryPage, tokio_postgres::Error> {
    let a = account.get();
    let followers = client
        .query(
            concat!(
                "SELECT openid, subscribed, extract(epoch FROM coalesce(subscribed_at, first_seen_at))::bigint
                 FROM followers WHERE account_id = $1 AND openid > $2 AND ",
                not_test_follower!("openid"),
                " ORDER BY openid LIMIT $3"
            ),
            &[&a, &after, &limit],
        )
        .await?;
    let openids: Vec<String> = followers.iter().map(|r| r.get(0)).collect();
    let mut histories: HashMap<String, Vec<HistoryRow>> = HashMap::with_capacity(openids.len());
    let mut push =
        |openid: String, at: i64, what: History| histories.entry(openid).or_default().push(HistoryRow { at, what });
    let others = async {
        let orders = client.query(ORDERS, &[&a, &openids, &since]).await?;
        let deliveries = client.query(DELIVERIES, &[&a, &openids, &since]).await?;
        let clicks = client.query(LINK_CLICKS, &[&a, &openids, &since]).await?;
        let quizzes = client.query(QUIZZES, &[&a, &openids, &since]).await?;
        Ok::<_, tokio_postgres::Error>((orders, deliveries, clicks, quizzes))
    };
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&a, &openids, &since];
    let (events, others) = tokio::join!(events_client.query(EVENTS, &params), others);
    let (orders, deliveries, clicks, quizzes) = others?;
    for row in events? {
        push(row.get(0), row.get(3), History::Event { kind: row.get(1), key: row.get(2) });
    }
    for row in orders {
        push(row.get(0), row.get(2), History::Order { amount_cents: row.get(1) });
    }
    for row in deliveries {
        push(row.get(0), row.get(1), History::Delivery);
    }
    for row in clicks {
        push(row.get(0), row.get(1), History::LinkClick);
    }
    for row in quizzes {
        push(row.get(0), row.get(2), History::QuizTags { tags: row.get(1) });
    }
    let followers = followers
        .iter()
        .map(|r| {
            let openid: String = r.get(0);
            let rows = histories.remove(&openid).unwrap_or_default();
            FollowerHistory { openid, subscribed: r.get(1), followed_at: r.get(2), rows }
        })
        .collect();
    Ok(HistoryPage { followers })
}

/// A training run as the console lists it.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: i64,
    pub model: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: String,
    pub requested_by: String,
    pub verdict: Option<String>,
    pub verdict_zh: Option<String>,
    pub figures: serde_json::Value,
    pub scored: i32,
    pub error: Option<String>,
}

const RUN_COLUMNS: &str =
    "id, model, started_at, finished_at, status, requested_by, verdict, verdict_zh, figures, scored, error";

fn run_row(r: &tokio_postgres::Row) -> RunRow {
    RunRow {
        id: r.get(0),
        model: r.get(1),
        started_at: r.get(2),
        finished_at: r.get(3),
        status: r.get(4),
        requested_by: r.get(5),
        verdict: r.get(6),
        verdict_zh: r.get(7),
        figures: r.get(8),
        scored: r.get(9),
        error: r.get(10),
    }
}

pub async fn start_run(
    client: &impl GenericClient,
    account: AccountId,
    model: &str,
    requested_by: &str,
) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "INSERT INTO prediction_runs (account_id, model, requested_by) VALUES ($1, $2, $3) RETURNING id",
            &[&account.get(), &model, &requested_by],
        )
        .await?;
    Ok(row.get(0))
}

/// What a finished run found.
pub struct Finished<'a> {
    pub evaluated_at: DateTime<Utc>,
    pub verdict: &'a str,
    pub verdict_zh: &'a str,
    pub figures: serde_json::Value,
    pub fitted: Option<serde_json::Value>,
}

pub async fn finish_run(
    client: &impl GenericClient,
    run: i64,
    done: &Finished<'_>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE prediction_runs SET status = 'done', finished_at = now(), evaluated_at = $2, verdict = $3,
                    verdict_zh = $4, figures = $5, fitted = $6 WHERE id = $1",
            &[&run, &done.evaluated_at, &done.verdict, &done.verdict_zh, &done.figures, &done.fitted],
        )
        .await?;
    Ok(())
}

pub async fn fail_run(client: &impl GenericClient, run: i64, error: &str) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE prediction_runs SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1",
            &[&run, &error],
        )
        .await?;
    Ok(())
}

/// The account's runs of `model`, newest first.
pub async fn list_runs(
    client: &impl GenericClient,
    account: AccountId,
    model: &str,
    limit: i64,
) -> Result<Vec<RunRow>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM prediction_runs WHERE account_id = $1 AND model = $2 ORDER BY id DESC LIMIT $3"
    );
    Ok(client.query(&sql, &[&account.get(), &model, &limit]).await?.iter().map(run_row).collect())
}

/// Replaces `model`'s scores of `account` with `scores` (run `run`); call inside a transaction
/// so counts never see a half-written set.
pub async fn replace_scores(
    client: &impl GenericClient,
    account: AccountId,
    model: &str,
    run: i64,
    scores: &[(String, f32)],
) -> Result<(), tokio_postgres::Error> {
    client
        .execute("DELETE FROM follower_scores WHERE account_id = $1 AND model = $2", &[&account.get(), &model])
        .await?;
    let mut written = 0;
    // PostgreSQL counts NaN above every number, where `Expr::eval` and the index call it
    // unscored: such a score is never written.
    let finite: Vec<&(String, f32)> = scores.iter().filter(|(_, s)| s.is_finite()).collect();
    for chunk in finite.chunks(10_000) {
        let openids: Vec<&str> = chunk.iter().map(|(o, _)| o.as_str()).collect();
        let values: Vec<f32> = chunk.iter().map(|(_, s)| *s).collect();
        // Only followers still here and following, who have not refused profiling: one erased
        // while the run scored stays erased.
        written += client
            .execute(
                "INSERT INTO follower_scores (account_id, model, openid, score, run_id, scored_at)
                 SELECT $1, $2, u.o, u.s, $3, now() FROM unnest($4::text[], $5::real[]) AS u(o, s)
                 JOIN followers f ON f.account_id = $1 AND f.openid = u.o AND f.subscribed
                   AND f.profiling_refused_at IS NULL",
                &[&account.get(), &model, &run, &openids, &values],
            )
            .await?;
    }
    let written = i32::try_from(written).unwrap_or(i32::MAX);
    client.execute("UPDATE prediction_runs SET scored = $2 WHERE id = $1", &[&run, &written]).await?;
    Ok(())
}

/// One follower's latest score of each model, for their page and 我的标签.
pub async fn scores_of(
    client: &impl GenericClient,
    account: AccountId,
    openid: &str,
) -> Result<Vec<(String, f32, DateTime<Utc>)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT model, score, scored_at FROM follower_scores WHERE account_id = $1 AND openid = $2 ORDER BY model",
            &[&account.get(), &openid],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// When `model`'s newest run of `account` started, if it ever ran.
pub async fn latest_run_started(
    client: &impl GenericClient,
    account: AccountId,
    model: &str,
) -> Result<Option<DateTime<Utc>>, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT max(started_at) FROM prediction_runs WHERE account_id = $1 AND model = $2",
            &[&account.get(), &model],
        )
        .await?;
    Ok(row.get(0))
}

/// How many followers of `account` carry a score of `model` and the sum of their scores: the
/// expected number of them who will do what the model predicts.
pub async fn score_totals(
    client: &impl GenericClient,
    account: AccountId,
    model: &str,
) -> Result<(i64, f64), tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT count(*), coalesce(sum(score::float8), 0) FROM follower_scores WHERE account_id = $1 AND model = $2",
            &[&account.get(), &model],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Deletes `model`'s scores of `account` written before `before`: a 7-day prediction that no
/// trusted run has renewed for a week says nothing any more. The number deleted.
pub async fn drop_scores_before(
    client: &impl GenericClient,
    account: AccountId,
    model: &str,
    before: DateTime<Utc>,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "DELETE FROM follower_scores WHERE account_id = $1 AND model = $2 AND scored_at < $3",
            &[&account.get(), &model, &before],
        )
        .await
}

/// The verdict of `account`'s latest finished run of `model` (`None` before any finished).
pub async fn latest_verdict(
    client: &impl GenericClient,
    account: AccountId,
    model: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT verdict FROM prediction_runs WHERE account_id = $1 AND model = $2 AND status = 'done'
             ORDER BY id DESC LIMIT 1",
            &[&account.get(), &model],
        )
        .await?;
    Ok(row.and_then(|r| r.get(0)))
}
