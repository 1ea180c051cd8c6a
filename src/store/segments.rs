//! `segments`, and every query that runs a compiled segment expression
//! ([`crate::domain::expr::sql::to_sql`]) over `followers f`: counting and listing a segment's
//! members, and the membership of dynamic tags (for a few followers, or set-based for all).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use crate::domain::expr::Expr;
use crate::domain::expr::sql::{SqlParam, to_sql};

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

/// Inserts a segment.
pub async fn insert_segment(
    client: &impl GenericClient,
    name: &str,
    expr: &Expr,
    created_by: &str,
) -> Result<SegmentRow, tokio_postgres::Error> {
    let row = client
        .query_one(
            "INSERT INTO segments (name, expr, created_by) VALUES ($1, $2, $3)
             RETURNING id, name, expr, created_at, created_by",
            &[&name, &expr.to_string(), &created_by],
        )
        .await?;
    Ok(segment_from_row(&row))
}

/// A segment by id.
pub async fn get_segment(client: &impl GenericClient, id: i64) -> Result<Option<SegmentRow>, tokio_postgres::Error> {
    let row =
        client.query_opt("SELECT id, name, expr, created_at, created_by FROM segments WHERE id = $1", &[&id]).await?;
    Ok(row.as_ref().map(segment_from_row))
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

/// How many subscribed followers match `expr` at `now` (unix seconds).
#[tracing::instrument(skip_all)]
pub async fn count_members(client: &impl GenericClient, expr: &Expr, now: i64) -> Result<i64, tokio_postgres::Error> {
    let (condition, params) = to_sql(expr, now, 1);
    let sql = format!("SELECT count(*) FROM followers f WHERE f.subscribed AND ({condition})");
    let params = bind(params);
    // Not cached: an operator typing produces a new shape per keystroke.
    Ok(client.query_one(sql.as_str(), &refs(&[], &params)).await?.get(0))
}

/// One page of the openids of subscribed followers matching `expr`, in openid order, after `after`.
#[tracing::instrument(skip_all)]
pub async fn list_members(
    client: &impl GenericClient,
    expr: &Expr,
    now: i64,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let (condition, params) = to_sql(expr, now, 3);
    let sql = format!(
        "SELECT f.openid FROM followers f WHERE f.subscribed AND f.openid > $1::text AND ({condition})
         ORDER BY f.openid LIMIT $2::bigint"
    );
    let params = bind(params);
    let rows = client.query(sql.as_str(), &refs(&[&after, &limit], &params)).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Which of `openids` (known followers, subscribed or not) carry the tag `tag_id` although they
/// do not match `expr` at `now` (`false`: remove it), or match without carrying it (`true`).
pub async fn list_wrong_members(
    client: &impl GenericClient,
    tag_id: i64,
    expr: &Expr,
    now: i64,
    openids: &[&str],
) -> Result<Vec<(String, bool)>, tokio_postgres::Error> {
    let (condition, params) = to_sql(expr, now, 3);
    let sql = format!(
        "SELECT f.openid, m.should FROM followers f CROSS JOIN LATERAL (SELECT ({condition}) AS should) m
         WHERE f.openid = ANY($1::text[])
           AND m.should <> EXISTS (SELECT 1 FROM follower_tags ft WHERE ft.openid = f.openid AND ft.tag_id = $2::bigint)"
    );
    let params = bind(params);
    // Cached: a dynamic tag's text depends only on its shape, and it runs after every event.
    let statement = client.prepare_cached(&sql).await?;
    let rows = client.query(&statement, &refs(&[&openids, &tag_id], &params)).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Recomputes a dynamic tag over every known follower at `now`, set-based in one statement:
/// followers who now match get it, those who no longer do lose it, and each change of a mirrored
/// tag for a follower who still follows is queued for WeChat (as `apply_tag_changes` queues).
/// Returns (added, removed).
#[tracing::instrument(skip_all, fields(tag.id = tag_id))]
pub async fn refresh_dynamic_tag(
    client: &impl GenericClient,
    tag_id: i64,
    expr: &Expr,
    now: i64,
) -> Result<(i64, i64), tokio_postgres::Error> {
    let (condition, params) = to_sql(expr, now, 2);
    // Data-modifying CTEs share one snapshot: `removed` never sees what `added` inserts, and a
    // follower in `should` is never removed.
    let sql = format!(
        "WITH should AS MATERIALIZED (SELECT f.openid FROM followers f WHERE ({condition})),
         added AS (
             INSERT INTO follower_tags (openid, tag_id, source)
             SELECT s.openid, $1::bigint, 'dynamic' FROM should s
             ON CONFLICT DO NOTHING RETURNING openid),
         removed AS (
             DELETE FROM follower_tags ft WHERE ft.tag_id = $1::bigint
               AND NOT EXISTS (SELECT 1 FROM should s WHERE s.openid = ft.openid)
             RETURNING ft.openid),
         changes AS (SELECT openid, true AS add FROM added UNION ALL SELECT openid, false FROM removed),
         queued AS (
             INSERT INTO tag_outbox (openid, tag_id, add)
             SELECT c.openid, t.id, c.add FROM changes c JOIN tags t ON t.id = $1::bigint AND t.mirrored
             WHERE NOT EXISTS (SELECT 1 FROM followers f WHERE f.openid = c.openid AND NOT f.subscribed)
             ON CONFLICT (openid, tag_id) DO UPDATE SET
                 add = EXCLUDED.add, seq = nextval('tag_outbox_seq'), run_at = now(),
                 attempts = 0, last_error = NULL, state = 'pending'
             RETURNING 1)
         SELECT (SELECT count(*) FROM added), (SELECT count(*) FROM removed), (SELECT count(*) FROM queued)"
    );
    let params = bind(params);
    let statement = client.prepare_cached(&sql).await?;
    let row = client.query_one(&statement, &refs(&[&tag_id], &params)).await?;
    let (added, removed): (i64, i64) = (row.get(0), row.get(1));
    if added + removed > 0 {
        client.execute("UPDATE tags SET last_used_at = now() WHERE id = $1", &[&tag_id]).await?;
    }
    Ok((added, removed))
}

/// The dynamic tags: (id, path, `when` text), by id.
pub async fn list_dynamic_tags(
    client: &impl GenericClient,
) -> Result<Vec<(i64, String, String)>, tokio_postgres::Error> {
    let statement =
        client.prepare_cached("SELECT id, path, when_expr FROM tags WHERE when_expr IS NOT NULL ORDER BY id").await?;
    Ok(client.query(&statement, &[]).await?.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}
