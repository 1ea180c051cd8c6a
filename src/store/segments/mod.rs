//! `segments`, and every query that runs a compiled segment expression
//! ([`compile::to_sql`]) over `followers f`: counting and listing a segment's
//! members, and the membership of dynamic tags (for a few followers, or set-based for all).

pub mod compile;

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::types::ToSql;

use crate::domain::account::AccountId;
use crate::domain::expr::Expr;
use crate::store;
use crate::store::tags::TagChange;
use compile::{SqlParam, to_sql, to_sql_set_based};

/// A segment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRow {
    pub id: i64,
    pub name: String,
    /// Canonical expression text.
    pub expr: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

fn segment_from_row(row: &tokio_postgres::Row) -> SegmentRow {
    SegmentRow { id: row.get(0), name: row.get(1), expr: row.get(2), created_at: row.get(3), created_by: row.get(4) }
}

/// Inserts a segment of `account`.
pub async fn insert_segment(
    client: &impl GenericClient,
    account: AccountId,
    name: &str,
    expr: &Expr,
    created_by: &str,
) -> Result<SegmentRow, tokio_postgres::Error> {
    let row = client
        .query_one(
            "INSERT INTO segments (name, expr, created_by, account_id) VALUES ($1, $2, $3, $4)
             RETURNING id, name, expr, created_at, created_by",
            &[&name, &expr.to_string(), &created_by, &account.get()],
        )
        .await?;
    Ok(segment_from_row(&row))
}

/// A segment of `account` by id (`None` when it is another account's).
pub async fn get_segment(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
) -> Result<Option<SegmentRow>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT id, name, expr, created_at, created_by FROM segments WHERE id = $1 AND account_id = $2",
            &[&id, &account.get()],
        )
        .await?;
    Ok(row.as_ref().map(segment_from_row))
}

/// Saved segments of `account`, newest first, older than `before` (keyset paging).
pub async fn list_segments(
    client: &impl GenericClient,
    account: AccountId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<SegmentRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, name, expr, created_at, created_by FROM segments
             WHERE account_id = $3 AND ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
            &[&before, &limit, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(segment_from_row).collect())
}

/// Bind values for `params`, typed as the compiled text casts them.
fn bind(params: Vec<SqlParam>) -> Vec<Box<dyn ToSql + Sync + Send>> {
    params
        .into_iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                SqlParam::Text(text) => Box::new(text),
                SqlParam::Int(n) => Box::new(n),
                SqlParam::Timestamp(secs) => {
                    Box::new(DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MIN_UTC))
                }
            }
        })
        .collect()
}

fn refs<'a>(
    leading: &[&'a (dyn ToSql + Sync)],
    params: &'a [Box<dyn ToSql + Sync + Send>],
) -> Vec<&'a (dyn ToSql + Sync)> {
    leading.iter().copied().chain(params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync))).collect()
}

/// Memory for the hashes of set-based conditions ([`to_sql_set_based`]), raised for the
/// transaction only: a hash of a million openids takes about 60 MB, and one that does not fit
/// makes Postgres re-scan the subquery for every follower.
const SET_BASED_WORK_MEM: &str = "256MB";

/// Also turns JIT off for the transaction: compiling a 10-term condition costs Postgres hundreds
/// of milliseconds, more than running it.
async fn raise_work_mem(txn: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    txn.execute("SELECT set_config('work_mem', $1, true), set_config('jit', 'off', true)", &[&SET_BASED_WORK_MEM])
        .await?;
    Ok(())
}

/// How many subscribed followers match `expr` at `now` (unix seconds). Set-based, so it needs a
/// transaction of its own to raise `work_mem` in.
#[tracing::instrument(skip_all)]
pub async fn count_members(
    txn: &Transaction<'_>,
    account: AccountId,
    expr: &Expr,
    now: i64,
) -> Result<i64, tokio_postgres::Error> {
    raise_work_mem(txn).await?;
    let client = txn;
    let (condition, params) = to_sql_set_based(expr, account, now, 2);
    let sql = format!(
        concat!(
            "SELECT count(*) FROM followers f WHERE f.account_id = $1::bigint AND f.subscribed AND ",
            not_test_follower!("f.openid"),
            " AND ({})"
        ),
        condition
    );
    let params = bind(params);
    // Not cached: an operator typing produces a new shape per keystroke.
    Ok(client.query_one(sql.as_str(), &refs(&[&account.get()], &params)).await?.get(0))
}

/// One page of the openids of subscribed followers matching `expr`, in openid order, after `after`.
/// Probes follower by follower in openid order and stops at `limit`, so a page costs about
/// `limit` followers' probes rather than a pass over every event.
#[tracing::instrument(skip_all)]
pub async fn list_members(
    client: &impl GenericClient,
    account: AccountId,
    expr: &Expr,
    now: i64,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let (condition, params) = to_sql(expr, account, now, 4);
    let sql = format!(
        concat!(
            "SELECT f.openid FROM followers f WHERE f.account_id = $3::bigint AND f.subscribed AND ",
            not_test_follower!("f.openid"),
            " AND f.openid > $1::text AND ({})
         ORDER BY f.openid LIMIT $2::bigint"
        ),
        condition
    );
    let params = bind(params);
    let rows = client.query(sql.as_str(), &refs(&[&after, &limit, &account.get()], &params)).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// For each `(tag id, expr)`, which of `openids` (known followers, subscribed or not) carry the
/// tag although they do not match `expr` at `now` (`false`: remove it), or match without
/// carrying it (`true`). One statement for all the tags, probing per follower.
pub async fn list_wrong_memberships(
    client: &impl GenericClient,
    account: AccountId,
    tags: &[(i64, &Expr)],
    now: i64,
    openids: &[&str],
) -> Result<Vec<(i64, String, bool)>, tokio_postgres::Error> {
    if tags.is_empty() || openids.is_empty() {
        return Ok(Vec::new());
    }
    let mut parts = Vec::with_capacity(tags.len());
    let mut params = Vec::new();
    for (tag_id, expr) in tags {
        let (condition, mine) = to_sql(expr, account, now, 3 + params.len());
        params.extend(mine);
        // Tag ids are ours (never user input), so they are written into the text.
        parts.push(format!(
            "SELECT {tag_id}::bigint, f.openid, m.should FROM followers f
             CROSS JOIN LATERAL (SELECT ({condition}) AS should) m
             WHERE f.account_id = $2::bigint AND f.openid = ANY($1::text[])
               AND m.should <> EXISTS (SELECT 1 FROM follower_tags ft WHERE ft.openid = f.openid AND ft.tag_id = {tag_id})"
        ));
    }
    let sql = parts.join("\nUNION ALL\n");
    let params = bind(params);
    // Cached: the text depends only on which tags are asked and their shapes, and it runs after
    // every event.
    let statement = client.prepare_cached(&sql).await?;
    let rows = client.query(&statement, &refs(&[&openids, &account.get()], &params)).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// Followers changed per statement when a dynamic tag is refreshed, bounding statement size and
/// the memory of one step.
const REFRESH_CHUNK: usize = 10_000;

/// Recomputes a dynamic tag over every known follower at `now`: one set-based statement finds
/// the followers whose membership is wrong (a `FULL JOIN` of who matches with who carries it,
/// which Postgres can only run as a hash or merge join, so no row estimate can make it
/// quadratic), then the differences are applied by chunks of openids (index lookups by primary
/// key), each change of a mirrored tag for a follower who still follows queued for WeChat.
/// Holds the differing openids in memory (about 60 bytes each). Returns (added, removed).
#[tracing::instrument(skip_all, fields(tag.id = tag_id))]
pub async fn refresh_dynamic_tag(
    txn: &Transaction<'_>,
    account: AccountId,
    tag_id: i64,
    expr: &Expr,
    now: i64,
) -> Result<(i64, i64), tokio_postgres::Error> {
    // Held until commit, as a foreign key would: a concurrent delete of the tag waits, then
    // removes what this adds (see `store::tags::delete_tag`); a tag already deleted is left alone.
    let held = txn
        .query_opt("SELECT 1 FROM tags WHERE id = $1 AND account_id = $2 FOR KEY SHARE", &[&tag_id, &account.get()])
        .await?;
    if held.is_none() {
        return Ok((0, 0));
    }
    raise_work_mem(txn).await?;
    let (condition, params) = to_sql_set_based(expr, account, now, 3);
    let sql = format!(
        "SELECT coalesce(s.openid, m.openid), s.openid IS NOT NULL
         FROM (SELECT f.openid FROM followers f WHERE f.account_id = $2::bigint AND ({condition})) s
         FULL JOIN (SELECT ft.openid FROM follower_tags ft WHERE ft.tag_id = $1::bigint) m ON m.openid = s.openid
         WHERE s.openid IS NULL OR m.openid IS NULL"
    );
    let params = bind(params);
    let statement = txn.prepare_cached(&sql).await?;
    let rows = txn.query(&statement, &refs(&[&tag_id, &account.get()], &params)).await?;
    let (mut adds, mut removes): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for row in rows {
        let openid: String = row.get(0);
        if row.get::<_, bool>(1) { adds.push(openid) } else { removes.push(openid) }
    }
    let add = txn
        .prepare_cached(
            "INSERT INTO follower_tags (openid, tag_id, source) SELECT o, $1::bigint, 'dynamic' FROM unnest($2::text[]) AS o
             ON CONFLICT DO NOTHING RETURNING openid",
        )
        .await?;
    let remove = txn
        .prepare_cached(
            "DELETE FROM follower_tags WHERE tag_id = $1::bigint AND openid = ANY($2::text[]) RETURNING openid",
        )
        .await?;
    let (mut added, mut removed) = (0, 0);
    for (openids, statement, is_add) in [(&adds, &add, true), (&removes, &remove, false)] {
        for chunk in openids.chunks(REFRESH_CHUNK) {
            let done = txn.query(statement, &[&tag_id, &chunk]).await?;
            let changes: Vec<TagChange> = done
                .iter()
                .map(|r| TagChange { openid: r.get(0), tag_id, add: is_add, source: "dynamic".to_owned() })
                .collect();
            store::tags::enqueue(txn, &changes).await?;
            if is_add { added += changes.len() as i64 } else { removed += changes.len() as i64 }
        }
    }
    if added + removed > 0 {
        txn.execute("UPDATE tags SET last_used_at = now() WHERE id = $1", &[&tag_id]).await?;
        // No event or order row announces these changes to the audience indexes.
        store::audience_feed::bump_epoch(txn, account).await?;
    }
    Ok((added, removed))
}

/// The dynamic tags of `account`: (id, path, `when` text), by id.
pub async fn list_dynamic_tags(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Vec<(i64, String, String)>, tokio_postgres::Error> {
    let statement = client
        .prepare_cached(
            "SELECT id, path, when_expr FROM tags WHERE when_expr IS NOT NULL AND account_id = $1 ORDER BY id",
        )
        .await?;
    Ok(client.query(&statement, &[&account.get()]).await?.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// Every subscribed follower matching `expr` at `now`, in openid order: the recipients of a
/// segment campaign. Set-based (one pass, hashes of the event conditions), so it needs a
/// transaction of its own to raise `work_mem` in.
#[tracing::instrument(skip_all)]
pub async fn list_all_members(
    txn: &Transaction<'_>,
    account: AccountId,
    expr: &Expr,
    now: i64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    raise_work_mem(txn).await?;
    let (condition, params) = to_sql_set_based(expr, account, now, 2);
    let sql = format!(
        concat!(
            "SELECT f.openid FROM followers f WHERE f.account_id = $1::bigint AND f.subscribed AND ",
            not_test_follower!("f.openid"),
            " AND ({}) ORDER BY f.openid"
        ),
        condition
    );
    let params = bind(params);
    let rows = txn.query(sql.as_str(), &refs(&[&account.get()], &params)).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Segments of `account` whose expression contains `needle` (a cheap filter before parsing): (id, expr).
pub async fn list_segments_mentioning(
    client: &impl GenericClient,
    account: AccountId,
    needle: &str,
) -> Result<Vec<(i64, String)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, expr FROM segments WHERE account_id = $2 AND strpos(expr, $1) > 0 ORDER BY id",
            &[&needle, &account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Rewrites a segment's expression (same meaning, new text: a tag it names was renamed).
pub async fn update_segment_expr(
    client: &impl GenericClient,
    id: i64,
    expr: &str,
) -> Result<(), tokio_postgres::Error> {
    client.execute("UPDATE segments SET expr = $2 WHERE id = $1", &[&id, &expr]).await?;
    Ok(())
}

/// The accounts with at least one dynamic tag.
pub async fn list_accounts_with_dynamic_tags(
    client: &impl GenericClient,
) -> Result<Vec<AccountId>, tokio_postgres::Error> {
    let rows = client
        .query("SELECT DISTINCT account_id FROM tags WHERE when_expr IS NOT NULL ORDER BY account_id", &[])
        .await?;
    Ok(rows.iter().map(|r| AccountId(r.get(0))).collect())
}

/// Deletes a saved segment of `account`; false when there was none.
pub async fn delete_segment(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client.execute("DELETE FROM segments WHERE id = $1 AND account_id = $2", &[&id, &account.get()]).await? > 0)
}
