//! Read-only figures for the admin pages: the data board, follower search and a follower's
//! timeline. Every query here is bounded by an index or a time window, so a page stays fast at a
//! million followers; whole-table totals come from the planner's estimate, not `count(*)`.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;

use super::followers::FollowerRow;
use crate::domain::account::AccountId;

/// Followers of `account`, from PostgreSQL's statistics when the table holds no other
/// account's (exact enough for a board, and free). `None` before the table was ever analysed (a
/// fresh database), or when other accounts share the table: the caller counts instead.
pub async fn estimate_followers(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Option<i64>, tokio_postgres::Error> {
    // Two probes of the (account_id, openid) key, either side of the account.
    let row = client
        .query_one(
            "SELECT reltuples::bigint,
                    EXISTS (SELECT 1 FROM followers WHERE account_id < $1)
                    OR EXISTS (SELECT 1 FROM followers WHERE account_id > $1)
             FROM pg_class WHERE oid = 'followers'::regclass",
            &[&account.get()],
        )
        .await?;
    let estimate: i64 = row.get(0);
    let shared: bool = row.get(1);
    Ok((estimate >= 0 && !shared).then_some(estimate))
}

/// Followers and subscribed followers of `account`, counted; used while the table is small or
/// fresh, or shared with other accounts.
pub async fn count_followers(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<(i64, i64), tokio_postgres::Error> {
    let row = client
        .query_one(
            concat!(
                "SELECT count(*), count(*) FILTER (WHERE subscribed) FROM followers WHERE account_id = $1 AND ",
                not_test_follower!("openid")
            ),
            &[&account.get()],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Subscribes and unsubscribes on one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayFlow {
    pub day: NaiveDate,
    pub subscribes: i64,
    pub unsubscribes: i64,
}

/// Subscribe and unsubscribe events per day since `since`; read through `events_kind_occurred_at`.
pub async fn list_daily_flow(
    client: &impl GenericClient,
    account: AccountId,
    since: DateTime<Utc>,
) -> Result<Vec<DayFlow>, tokio_postgres::Error> {
    let rows = client
        .query(
            concat!(
                "SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day,
                    count(*) FILTER (WHERE kind = 'subscribe'),
                    count(*) FILTER (WHERE kind = 'unsubscribe')
             FROM events WHERE kind IN ('subscribe', 'unsubscribe') AND occurred_at >= $1 AND account_id = $2 AND ",
                not_test_follower!("openid"),
                " GROUP BY day ORDER BY day"
            ),
            &[&since, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| DayFlow { day: r.get(0), subscribes: r.get(1), unsubscribes: r.get(2) }).collect())
}

/// Distinct followers who did `kind` since `since`.
pub async fn count_actors(
    client: &impl GenericClient,
    account: AccountId,
    kind: &str,
    since: DateTime<Utc>,
) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(
            concat!(
                "SELECT count(DISTINCT openid) FROM events WHERE kind = $1 AND occurred_at >= $2 AND account_id = $3 AND ",
                not_test_follower!("openid")
            ),
            &[&kind, &since, &account.get()],
        )
        .await?;
    Ok(row.get(0))
}

/// Followers who ordered since `since`, and their orders (refunds excluded).
pub async fn count_buyers(
    client: &impl GenericClient,
    account: AccountId,
    since: DateTime<Utc>,
) -> Result<(i64, i64), tokio_postgres::Error> {
    let row = client
        .query_one(
            concat!(
                "SELECT count(DISTINCT openid), count(*) FROM orders
                 WHERE occurred_at >= $1 AND amount_cents > 0 AND account_id = $2 AND ",
                not_test_follower!("openid")
            ),
            &[&since, &account.get()],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Of the followers who subscribed between `from` and `to`: how many, how many were still
/// following a day later, and seven days later. Read through the kind and openid indexes of
/// `events`, so the cost follows the number of new followers, not of all followers.
pub async fn retention(
    client: &impl GenericClient,
    account: AccountId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(i64, i64, i64), tokio_postgres::Error> {
    let row = client
        .query_one(
            concat!(
                "WITH joined AS (
                 SELECT openid, min(occurred_at) AS at FROM events
                 WHERE kind = 'subscribe' AND occurred_at >= $1 AND occurred_at < $2 AND account_id = $3 AND ",
                not_test_follower!("openid"),
                " GROUP BY openid)
             SELECT count(*),
                    count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM events u WHERE u.openid = j.openid AND u.account_id = $3
                        AND u.kind = 'unsubscribe' AND u.occurred_at > j.at AND u.occurred_at <= j.at + interval '1 day')),
                    count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM events u WHERE u.openid = j.openid AND u.account_id = $3
                        AND u.kind = 'unsubscribe' AND u.occurred_at > j.at AND u.occurred_at <= j.at + interval '7 days'))
             FROM joined j"
            ),
            &[&from, &to, &account.get()],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// Subscribed followers of `account` carrying at least one tag: the coverage's numerator, over
/// the subscribed (a follower who left keeps their tags, and would push it past 100 %). Costs a
/// scan of the account's `follower_tags`; the board caches it.
pub async fn count_tagged_followers(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one(
            concat!(
                "SELECT count(DISTINCT ft.openid) FROM follower_tags ft JOIN tags t ON t.id = ft.tag_id
                 JOIN followers f ON f.account_id = t.account_id AND f.openid = ft.openid AND f.subscribed
                 WHERE t.account_id = $1 AND ",
                not_test_follower!("ft.openid")
            ),
            &[&account.get()],
        )
        .await?
        .get(0))
}

/// Followers whose openid starts with `prefix`, after `after` in openid order (keyset paging).
pub async fn search_followers(
    client: &impl GenericClient,
    account: AccountId,
    prefix: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<FollowerRow>, tokio_postgres::Error> {
    // The database collates bytewise (C.UTF-8), so every openid with the prefix sorts between the
    // prefix and the prefix followed by the highest code point: a bounded range scan of the key.
    let upper = format!("{prefix}\u{10FFFF}");
    let rows = client
        .query(
            "SELECT openid, subscribed, subscribed_at, unsubscribed_at, subscribe_scene, first_seen_at, last_seen_at
             FROM followers WHERE account_id = $5 AND openid >= $1 AND openid < $2 AND openid > $3
             ORDER BY openid LIMIT $4",
            &[&prefix, &upper, &after, &limit, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(FollowerRow::from_row).collect())
}

/// One stored push of a follower, as the timeline shows it.
#[derive(Debug, Clone)]
pub struct TimelineEvent {
    pub id: i64,
    pub kind: String,
    pub event_key: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// What the follower wrote, for text messages.
    pub content: Option<String>,
}

/// A follower's pushes, newest first, older than event `before` (keyset paging).
pub async fn list_follower_events(
    client: &impl GenericClient,
    account: AccountId,
    openid: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<TimelineEvent>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, kind, event_key, occurred_at,
                    CASE WHEN kind = 'text' THEN payload #>> '{body,content}' END
             FROM events WHERE openid = $1 AND account_id = $4 AND ($2::bigint IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3",
            &[&openid, &before, &limit, &account.get()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| TimelineEvent {
            id: r.get(0),
            kind: r.get(1),
            event_key: r.get(2),
            occurred_at: r.get(3),
            content: r.get(4),
        })
        .collect())
}

/// One push of a follower and the passive reply it got (WeChat's XML, empty for none).
#[derive(Debug, Clone)]
pub struct ConversationTurn {
    pub kind: String,
    pub event_key: Option<String>,
    pub content: Option<String>,
    pub reply: String,
    pub occurred_at: DateTime<Utc>,
}

/// A follower's latest `limit` pushes with their replies, oldest first: the simulator's
/// conversation, read back from what the callback stored.
pub async fn list_conversation(
    client: &impl GenericClient,
    account: AccountId,
    openid: &str,
    limit: i64,
) -> Result<Vec<ConversationTurn>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT kind, event_key, CASE WHEN kind = 'text' THEN payload #>> '{body,content}' END, reply, occurred_at
             FROM events WHERE openid = $1 AND account_id = $2 ORDER BY id DESC LIMIT $3",
            &[&openid, &account.get(), &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .rev()
        .map(|r| ConversationTurn {
            kind: r.get(0),
            event_key: r.get(1),
            content: r.get(2),
            reply: r.get(3),
            occurred_at: r.get(4),
        })
        .collect())
}

/// A finished quiz of a follower.
#[derive(Debug, Clone)]
pub struct QuizAnswer {
    pub quiz_id: String,
    pub tags: Vec<String>,
    pub finished_at: DateTime<Utc>,
}

pub async fn list_quiz_answers(
    client: &impl GenericClient,
    account: AccountId,
    openid: &str,
) -> Result<Vec<QuizAnswer>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT quiz_id, tags, finished_at FROM quiz_answers WHERE openid = $1 AND account_id = $2
             ORDER BY id DESC LIMIT 20",
            &[&openid, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| QuizAnswer { quiz_id: r.get(0), tags: r.get(1), finished_at: r.get(2) }).collect())
}
