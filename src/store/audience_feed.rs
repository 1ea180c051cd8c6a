//! What the in-memory audience index reads: everything of one account at once when it is built,
//! then the rows added to `events` and `orders` since (of every account: one tail feeds every
//! account's index), and the current state of the followers they name.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use futures_util::{TryStreamExt, pin_mut};

use crate::domain::account::AccountId;
use crate::domain::audience_index::state::{FollowerState, State};

/// The epochs non-event changes bump, of each of `accounts`. The first account's also counts
/// the deployment-wide `audience_epoch`, which the release before accounts still bumps during a
/// rolling upgrade.
pub async fn epochs(
    client: &impl GenericClient,
    accounts: &[i64],
) -> Result<Vec<(AccountId, i64)>, tokio_postgres::Error> {
    let statement = client
        .prepare_cached(
            "SELECT a.id, coalesce(e.epoch, 0)
                    + CASE WHEN a.id = 1 THEN coalesce((SELECT max(epoch) FROM audience_epoch), 0) ELSE 0 END
             FROM unnest($1::bigint[]) AS a(id) LEFT JOIN account_audience_epochs e ON e.account_id = a.id",
        )
        .await?;
    Ok(client.query(&statement, &[&accounts]).await?.iter().map(|r| (AccountId(r.get(0)), r.get(1))).collect())
}

/// Marks a change of `account` no event or order row announces: its index rebuilds, in every
/// process. The first account's also bumps `audience_epoch`, for the release before accounts.
pub async fn bump_epoch(client: &impl GenericClient, account: AccountId) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO account_audience_epochs (account_id, epoch) VALUES ($1, 1)
             ON CONFLICT (account_id) DO UPDATE SET epoch = account_audience_epochs.epoch + 1",
            &[&account.get()],
        )
        .await?;
    if account == AccountId::FIRST {
        client.execute("UPDATE audience_epoch SET epoch = epoch + 1", &[]).await?;
    }
    Ok(())
}

/// How far below the high-water marks a load looks for ids its snapshot lacks: transactions
/// that took an id before the snapshot and commit after it.
pub const LOOKBACK: i64 = 10_000;

/// Where a fresh load leaves the tails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marks {
    pub event_id: i64,
    /// Event ids in `(event_id - LOOKBACK, event_id]` the snapshot does not hold.
    pub event_holes: Vec<i64>,
    pub order_seq: i64,
    pub order_holes: Vec<i64>,
    pub epoch: i64,
}

/// `sql` reads the ids in `($1, $2]`: a closed range, which a planner without statistics still
/// estimates as narrow (an open `id > $1` it takes for a third of the table, and scans it all).
async fn missing_ids(client: &impl GenericClient, sql: &str, high: i64) -> Result<Vec<i64>, tokio_postgres::Error> {
    let low = (high - LOOKBACK).max(0);
    let present: std::collections::HashSet<i64> =
        client.query(sql, &[&low, &high]).await?.iter().map(|r| r.get(0)).collect();
    Ok((low + 1..=high).filter(|id| !present.contains(id)).collect())
}

fn unix(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

/// Loads everything of `account` into `state`. Run it in a REPEATABLE READ transaction so the
/// rows and the marks are one snapshot; rows committed later carry ids above the marks, or fill
/// holes below them that the tail finds ([`super::super::audience::index`]). The marks are over
/// every account's rows, as the shared tail reads them.
pub async fn load_all(
    client: &impl GenericClient,
    account: AccountId,
    state: &mut State,
) -> Result<Marks, tokio_postgres::Error> {
    // Events count as seen only once the tagging consumer has applied them: the follower rows and
    // tags read below are what it left, so its mark and holes are the events' mark and holes.
    let marks_row = client
        .query_one(
            "SELECT coalesce((SELECT mark FROM event_cursors WHERE name = 'tagging'),
                             (SELECT max(id) FROM events), 0),
                    coalesce((SELECT holes FROM event_cursors WHERE name = 'tagging'), '{}'),
                    (SELECT coalesce(max(seq), 0) FROM orders)",
            &[],
        )
        .await?;
    let epoch = epochs(client, &[account.get()]).await?.first().map_or(0, |e| e.1);
    let a = account.get();
    let (event_id, unapplied, order_seq): (i64, Vec<i64>, i64) = (marks_row.get(0), marks_row.get(1), marks_row.get(2));
    let mut event_holes = missing_ids(client, "SELECT id FROM events WHERE id > $1 AND id <= $2", event_id).await?;
    event_holes.extend(unapplied);
    event_holes.sort_unstable();
    event_holes.dedup();
    let marks = Marks {
        event_id,
        event_holes,
        order_seq,
        order_holes: missing_ids(client, "SELECT seq FROM orders WHERE seq > $1 AND seq <= $2", order_seq).await?,
        epoch,
    };
    let tags = client.query("SELECT path, id FROM tags WHERE account_id = $1", &[&a]).await?;
    state.set_tags(tags.iter().map(|r| (r.get(0), r.get(1))));

    let rows = client
        .query_raw(
            concat!(
                "SELECT openid, subscribed AND ",
                not_test_follower!("openid"),
                " FROM followers WHERE account_id = $1"
            ),
            [&a],
        )
        .await?;
    pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        let who = state.number(row.get(0));
        state.set_subscribed(who, row.get(1));
    }
    let rows = client
        .query_raw(
            "SELECT ft.openid, ft.tag_id FROM follower_tags ft JOIN tags t ON t.id = ft.tag_id WHERE t.account_id = $1",
            [&a],
        )
        .await?;
    pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        let who = state.number(row.get(0));
        state.add_member(row.get(1), who);
    }
    let rows = client
        .query_raw(
            "SELECT openid, event_key, occurred_at FROM events WHERE kind = 'click' AND event_key IS NOT NULL
             AND id <= $1 AND account_id = $2 AND id <> ALL($3)",
            [&marks.event_id as &(dyn tokio_postgres::types::ToSql + Sync), &a, &marks.event_holes],
        )
        .await?;
    pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        state.add_click(row.get(0), row.get(1), unix(row.get(2)));
    }
    // Clicks with a key were noted above; the other interactions only as each follower's latest.
    let rows = client
        .query_raw(
            "SELECT openid, max(occurred_at) FROM events WHERE (kind IN ('view', 'text', 'subscribe', 'scan') OR kind = 'click' AND event_key IS NULL)
             AND id <= $1 AND account_id = $2 AND id <> ALL($3) GROUP BY openid",
            [&marks.event_id as &(dyn tokio_postgres::types::ToSql + Sync), &a, &marks.event_holes],
        )
        .await?;
    pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        state.add_activity(row.get(0), unix(row.get(1)));
    }
    let rows = client
        .query_raw(
            "SELECT openid, amount_cents, occurred_at FROM orders WHERE seq <= $1 AND account_id = $2",
            [&marks.order_seq, &a],
        )
        .await?;
    pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        state.add_order(row.get(0), row.get(1), unix(row.get(2)));
    }
    // Scores change only with a scoring run, which bumps the epoch: a rebuild reads them anew.
    let rows = client.query_raw("SELECT model, openid, score FROM follower_scores WHERE account_id = $1", [&a]).await?;
    pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        state.put_score(row.get(0), row.get(1), row.get(2));
    }
    state.settle();
    Ok(marks)
}

/// An `events` row as the index sees it.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub account: AccountId,
    pub openid: String,
    /// The EventKey of a click; `None` for other kinds.
    pub click_key: Option<String>,
    /// One of `expr::INTERACTION_KINDS` (clicks included), for `active(W)`.
    pub interaction: bool,
    pub occurred_at: i64,
}

/// Events with `id > after` (at most `limit`, in id order) and those with an id in `holes`, of
/// those the tagging consumer has applied (the follower state the index reads next must include
/// them). Two statements, each with a plan that stays an index scan when prepared generically (an
/// `OR` of the two made Postgres scan the whole table once it cached a generic plan).
pub async fn events_since(
    client: &impl GenericClient,
    after: i64,
    holes: &[i64],
    limit: i64,
) -> Result<Vec<EventRow>, tokio_postgres::Error> {
    const COLUMNS: &str = "id, openid, CASE WHEN kind = 'click' THEN event_key END, occurred_at, account_id, \
                           kind IN ('click', 'view', 'text', 'subscribe', 'scan')";
    const APPLIED: &str = "c.name = 'tagging' AND id <= c.mark AND id <> ALL(c.holes)";
    let newer = client
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM events, event_cursors c WHERE id > $1 AND {APPLIED} ORDER BY id LIMIT $2"
        ))
        .await?;
    let mut rows = client.query(&newer, &[&after, &limit]).await?;
    if !holes.is_empty() {
        let late = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM unnest($1::bigint[]) h (hole)
                 CROSS JOIN LATERAL (SELECT * FROM events WHERE id = h.hole OFFSET 0) events, event_cursors c
                 WHERE {APPLIED}"
            ))
            .await?;
        rows.extend(client.query(&late, &[&holes]).await?);
    }
    Ok(rows
        .iter()
        .map(|r| EventRow {
            id: r.get(0),
            account: AccountId(r.get(4)),
            openid: r.get(1),
            click_key: r.get(2),
            interaction: r.get(5),
            occurred_at: unix(r.get(3)),
        })
        .collect())
}

/// An `orders` row as the index sees it.
#[derive(Debug, Clone)]
pub struct OrderRow {
    pub seq: i64,
    pub account: AccountId,
    pub openid: String,
    pub amount_cents: i64,
    pub occurred_at: i64,
}

/// Orders with `seq > after` (at most `limit`, in seq order) and those with a seq in `holes`
/// (two statements, as [`events_since`]).
pub async fn orders_since(
    client: &impl GenericClient,
    after: i64,
    holes: &[i64],
    limit: i64,
) -> Result<Vec<OrderRow>, tokio_postgres::Error> {
    const COLUMNS: &str = "seq, openid, amount_cents, occurred_at, account_id";
    let newer =
        client.prepare_cached(&format!("SELECT {COLUMNS} FROM orders WHERE seq > $1 ORDER BY seq LIMIT $2")).await?;
    let mut rows = client.query(&newer, &[&after, &limit]).await?;
    if !holes.is_empty() {
        let late = client.prepare_cached(&format!("SELECT {COLUMNS} FROM orders WHERE seq = ANY($1)")).await?;
        rows.extend(client.query(&late, &[&holes]).await?);
    }
    Ok(rows
        .iter()
        .map(|r| OrderRow {
            seq: r.get(0),
            account: AccountId(r.get(4)),
            openid: r.get(1),
            amount_cents: r.get(2),
            occurred_at: unix(r.get(3)),
        })
        .collect())
}

/// The subscription and tags of each of `openids` of `account` now.
pub async fn follower_states(
    client: &impl GenericClient,
    account: AccountId,
    openids: &[&str],
) -> Result<Vec<FollowerState>, tokio_postgres::Error> {
    let statement = client
        .prepare_cached(concat!(
            "SELECT o.openid, f.subscribed AND ",
            not_test_follower!("f.openid"),
            ",
                    coalesce((SELECT array_agg(ft.tag_id) FROM follower_tags ft JOIN tags t ON t.id = ft.tag_id
                              WHERE ft.openid = o.openid AND t.account_id = $2), '{}')
             FROM unnest($1::text[]) AS o(openid)
             LEFT JOIN followers f ON f.openid = o.openid AND f.account_id = $2"
        ))
        .await?;
    Ok(client
        .query(&statement, &[&openids, &account.get()])
        .await?
        .iter()
        .map(|r| FollowerState { openid: r.get(0), subscribed: r.get(1), tag_ids: r.get(2) })
        .collect())
}

/// The tags (account, path, id) of each of `accounts`, to follow creations and deletions.
pub async fn tag_ids(
    client: &impl GenericClient,
    accounts: &[i64],
) -> Result<Vec<(AccountId, String, i64)>, tokio_postgres::Error> {
    let statement = client.prepare_cached("SELECT account_id, path, id FROM tags WHERE account_id = ANY($1)").await?;
    Ok(client
        .query(&statement, &[&accounts])
        .await?
        .iter()
        .map(|r| (AccountId(r.get(0)), r.get(1), r.get(2)))
        .collect())
}
