//! Audiences: orders in, and dynamic tags kept true (CONTRACT.md §5, issue 5). Shared by the
//! events API, the tagging engine (after clicks, subscribes and rule changes) and the scheduled
//! `refresh_dynamic_tags` job. Every membership change goes through `apply_tag_changes` or the
//! set-based refresh, both of which queue the tag outbox in the caller's transaction, so WeChat
//! follows. Segments themselves are counted by `store::segments` at the [`Clock`]'s now.
//!
//! Concurrency: orders for the same follower re-evaluate one after the other (an advisory lock
//! per openid). The scheduled pass reads, then writes; an event committed in between may be
//! overwritten by the pass's older view of that follower, and is corrected by the next event or
//! pass. Tags with no time window are only recomputed by events (and a fill when created).
//!
//! Evaluation is SQL over indexed tables ([`crate::store::segments::compile`]): one follower's dynamic
//! tags are one indexed probe per tag; a whole tag is one set-based statement.

pub mod index;
pub mod tag_check;

use deadpool_postgres::{GenericClient, Pool};

use crate::domain::account::AccountId;
use crate::domain::clock::Clock;
use crate::domain::expr::{self, Expr};
use crate::domain::order::Order;
use crate::store;
use crate::store::tags::TagChange;

/// A scheduled pass or fill that changes this many memberships refreshes the planner's
/// statistics of `follower_tags`.
const ANALYZE_AFTER_CHANGES: i64 = 10_000;

/// The source recorded on `follower_tags` for changes the engine makes to dynamic tags.
pub const SOURCE: &str = "dynamic";

/// A tag with `when`: the engine keeps its members equal to the followers matching `expr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicTag {
    pub id: i64,
    pub path: String,
    pub expr: Expr,
}

/// Why an audience operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
}

/// Every dynamic tag of `account`, in id order. A stored `when` that no longer parses (written
/// before a grammar change, say) is skipped with a warning rather than stopping the others.
///
/// # Errors
/// The database.
pub async fn load_dynamic_tags(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Vec<DynamicTag>, tokio_postgres::Error> {
    let mut tags = Vec::new();
    for (id, path, when) in store::segments::list_dynamic_tags(client, account).await? {
        match expr::parse(&when) {
            Ok(expr) => tags.push(DynamicTag { id, path, expr }),
            Err(error) => tracing::warn!(tag.id = id, %error, "a dynamic tag's `when` does not parse; skipped"),
        }
    }
    Ok(tags)
}

/// What happened to the followers being re-evaluated, so only the dynamic tags whose `when` it
/// can change are queried.
#[derive(Debug, Clone, Default)]
pub struct Triggers<'a> {
    /// They (re)subscribed: every dynamic tag, since orders may predate the follower row.
    pub subscribed: bool,
    /// They placed orders.
    pub ordered: bool,
    /// Menu keys they clicked.
    pub clicked: Vec<&'a str>,
    /// Paths of tags they were given or lost.
    pub tagged: Vec<&'a str>,
    /// They interacted without a click: a message, a view or a scan (`active(..)`).
    pub interacted: bool,
}

impl Triggers<'_> {
    /// Whether `expr` can change value because of these.
    pub fn can_change(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Tag(path) => self.subscribed || self.tagged.contains(&path.as_str()),
            Expr::Clicked { key, .. } => self.subscribed || self.clicked.contains(&key.as_str()),
            Expr::Orders { .. } | Expr::Spent { .. } => self.subscribed || self.ordered,
            // Scores change with a scoring run, which the scheduled pass follows, not with a push.
            Expr::Score { .. } => self.subscribed,
            Expr::Active { .. } => self.subscribed || self.interacted || !self.clicked.is_empty(),
            Expr::Not(inner) => self.can_change(inner),
            Expr::And(lhs, rhs) | Expr::Or(lhs, rhs) => self.can_change(lhs) || self.can_change(rhs),
        }
    }
}

/// Re-evaluates, for `openids` at `now` (unix seconds), the dynamic tags `triggers` can change,
/// and applies the differences (source [`SOURCE`]). All those tags are asked in one statement
/// that returns only the memberships that are wrong; when that changes a tag another dynamic tag
/// names, a further round asks those (at most one round per dynamic tag, so a cycle of tags
/// naming each other ends). Followers tagcast does not know (no `followers` row) match nothing.
/// Returns the changes made.
///
/// # Errors
/// The database.
pub async fn reevaluate(
    client: &impl GenericClient,
    account: AccountId,
    tags: &[DynamicTag],
    openids: &[&str],
    triggers: &Triggers<'_>,
    now: i64,
) -> Result<Vec<TagChange>, tokio_postgres::Error> {
    let mut made = Vec::new();
    if openids.is_empty() {
        return Ok(made);
    }
    let mut triggers = triggers.clone();
    for _ in 0..tags.len() {
        let asked: Vec<(i64, &Expr)> =
            tags.iter().filter(|t| triggers.can_change(&t.expr)).map(|t| (t.id, &t.expr)).collect();
        if asked.is_empty() {
            break;
        }
        let wrong = store::segments::list_wrong_memberships(client, account, &asked, now, openids).await?;
        let changes: Vec<TagChange> = wrong
            .into_iter()
            .map(|(tag_id, openid, add)| TagChange { openid, tag_id, add, source: SOURCE.to_owned() })
            .collect();
        let changed = store::tags::apply_tag_changes(client, &changes).await?;
        if changed.is_empty() {
            break;
        }
        // Only tags naming a dynamic tag that just changed are asked again.
        let tagged: Vec<&str> =
            tags.iter().filter(|t| changed.iter().any(|c| c.tag_id == t.id)).map(|t| t.path.as_str()).collect();
        triggers = Triggers { tagged, ..Triggers::default() };
        made.extend(changed);
    }
    if !made.is_empty() {
        tracing::info!(changes = made.len(), "dynamic tags changed");
    }
    Ok(made)
}

/// How many subscribed followers of `account` match `expr` at `now` (unix seconds): from the
/// in-memory index when it can answer, else by SQL (set-based, in a transaction of its own).
///
/// # Errors
/// The database.
pub async fn count_members(
    pool: &Pool,
    index: &index::AudienceIndex,
    account: AccountId,
    expr: &Expr,
    now: i64,
) -> Result<i64, AudienceError> {
    if let Some(count) = index.count(account, expr, now).await {
        return Ok(count);
    }
    tracing::debug!("the audience index cannot answer yet; counting with SQL");
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let count = store::segments::count_members(&txn, account, expr, now).await?;
    txn.commit().await?;
    Ok(count)
}

/// What `POST /events` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Orders stored now.
    pub accepted: usize,
    /// Orders whose id was stored before (or earlier in the batch); ignored, whatever they carry.
    pub duplicates: usize,
}

/// Stores orders (idempotent by id) and, in the same transaction, re-evaluates the dynamic tags
/// of the followers whose new orders were stored, at the clock's now.
///
/// # Errors
/// The database; nothing is stored then.
pub async fn record_orders(
    pool: &Pool,
    account: AccountId,
    orders: &[Order],
    clock: &Clock,
) -> Result<Recorded, AudienceError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let mut openids: Vec<&str> = orders.iter().map(|o| o.openid.as_str()).collect();
    openids.sort_unstable();
    openids.dedup();
    // Two posts about the same follower re-evaluate one after the other, so the second sees the
    // first's orders (under READ COMMITTED it would not see them while both run).
    store::orders::lock_followers_orders(&txn, account, &openids).await?;
    let inserted = store::orders::insert_orders(&txn, account, orders).await?;
    let mut changed: Vec<&str> = inserted.iter().map(String::as_str).collect();
    changed.sort_unstable();
    changed.dedup();
    if !changed.is_empty() {
        let tags = load_dynamic_tags(&txn, account).await?;
        let triggers = Triggers { ordered: true, ..Triggers::default() };
        reevaluate(&txn, account, &tags, &changed, &triggers, clock.unix()).await?;
    }
    txn.commit().await?;
    Ok(Recorded { accepted: inserted.len(), duplicates: orders.len() - inserted.len() })
}

/// Recomputes dynamic tags of `account` over its followers at the clock's now: the tag `only`,
/// or else every tag whose `when` can change as time passes (a window other than `all`). Each
/// tag in its own transaction. Returns (added, removed) over all of them.
///
/// # Errors
/// The database; tags refreshed before the failure stay refreshed.
pub async fn refresh_dynamic_tags(
    pool: &Pool,
    account: AccountId,
    clock: &Clock,
    only: Option<i64>,
) -> Result<(i64, i64), AudienceError> {
    let client = pool.get().await?;
    let tags = load_dynamic_tags(&client, account).await?;
    drop(client);
    let (mut added, mut removed) = (0, 0);
    for tag in tags {
        let wanted = match only {
            Some(id) => tag.id == id,
            None => tag.expr.windows().time_dependent() || !tag.expr.score_models().is_empty(),
        };
        if !wanted {
            continue;
        }
        let mut client = pool.get().await?;
        let txn = client.transaction().await?;
        let started = std::time::Instant::now();
        let (a, r) = store::segments::refresh_dynamic_tag(&txn, account, tag.id, &tag.expr, clock.unix()).await?;
        txn.commit().await?;
        tracing::info!(
            tag.id = tag.id,
            added = a,
            removed = r,
            duration_ms = started.elapsed().as_millis() as u64,
            "refreshed dynamic tag {}",
            tag.path
        );
        added += a;
        removed += r;
    }
    if added + removed >= ANALYZE_AFTER_CHANGES {
        // The per-follower re-evaluation after each event is a cached, generic plan: with the
        // statistics from before a fill, Postgres believes a tag just given to 450,000 followers
        // has one member, hashes all of them to probe one follower, and the 2 ms check takes
        // 600 ms (bench/segments). Autovacuum would analyze eventually; this does it now.
        pool.get().await?.batch_execute("ANALYZE follower_tags").await?;
    }
    Ok((added, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn can_change(triggers: &Triggers<'_>, when: &str) -> bool {
        triggers.can_change(&expr::parse(when).unwrap())
    }

    #[test]
    fn only_the_tags_an_event_can_change_are_asked() {
        let ordered = Triggers { ordered: true, ..Triggers::default() };
        assert!(can_change(&ordered, "orders(all) >= 3"));
        assert!(can_change(&ordered, r#""A" AND NOT spent(90d) > 5"#));
        assert!(!can_change(&ordered, r#""A" OR clicked("K", 7d)"#));

        let clicked = Triggers { clicked: vec!["K"], ..Triggers::default() };
        assert!(can_change(&clicked, r#""A" OR clicked("K", 7d)"#));
        assert!(!can_change(&clicked, r#"clicked("J", 7d) AND orders(all) = 0"#));
        assert!(can_change(&clicked, "score(purchase_7d) >= 0.3 AND active(14d)"), "any click is an interaction");
        assert!(!can_change(&ordered, "active(14d)"), "an order is not");
        let wrote = Triggers { interacted: true, ..Triggers::default() };
        assert!(can_change(&wrote, "active(14d)"), "a message is an interaction");
        assert!(!can_change(&wrote, r#"clicked("K", 7d)"#));

        let tagged = Triggers { tagged: vec!["肤质/油性"], ..Triggers::default() };
        assert!(can_change(&tagged, r#"NOT "肤质/油性" AND orders(all) >= 1"#));
        assert!(!can_change(&tagged, r#""肤质/干性""#));

        let subscribed = Triggers { subscribed: true, ..Triggers::default() };
        for when in [r#""A""#, r#"clicked("K", 1h)"#, "orders(all) = 0", "spent(all) < 1", "active(1d)"] {
            assert!(can_change(&subscribed, when), "{when}");
        }
    }
}
