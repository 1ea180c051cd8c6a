//! The in-memory audience index: segment counts (and member lists) in milliseconds at a million
//! followers, where SQL must scan every follower and hash every term.
//!
//! Each process keeps its own copy, one [`State`] per account, built from Postgres in the
//! background on the account's first count (the first account's at start), and kept exact when
//! asked. An account nobody counts costs nothing; one counted costs what its followers, tags,
//! clicks and orders take, so a hundred accounts of 10,000 followers take about what one of a
//! million does. One tail of `events` and `orders` (their rows carry the account) feeds every
//! built account, each with its own cursor, so a catch-up is one read whatever the number of
//! accounts:
//! - every follower action and its effects (rules, quizzes, self-service, dynamic tags) commit
//!   with an `events` row, and every order with an `orders` row; before answering, the index reads
//!   the rows added since it last looked (by id, and the ids it skipped because their transaction
//!   had not committed yet), adds their clicks and orders, and re-reads the subscription and tags
//!   of the followers they name;
//! - changes no such row announces (a dynamic tag's scheduled pass, erasure, the follower import)
//!   bump the account's epoch (`account_audience_epochs`); an account's index that sees a newer
//!   epoch answers `None` (callers use SQL) and rebuilds in the background;
//! - tags created or deleted are followed on every catch-up; a full rebuild also runs every
//!   [`IndexSettings::rebuild_every`], bounding what any writer that forgot the epoch could skew.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::{Mutex, RwLock, watch};
use tokio_util::sync::CancellationToken;

use crate::domain::account::AccountId;
use crate::domain::audience_index::state::State;
use crate::domain::expr::Expr;
use crate::store;
use crate::store::audience_feed::{EventRow, Marks, OrderRow};

/// Rows read per catch-up query.
const TAIL_BATCH: i64 = 20_000;
/// A skipped id whose row has not appeared after this long belonged to a rolled-back
/// transaction (sequences do not roll back).
const HOLE_PATIENCE: Duration = crate::store::database::EVENT_HOLE_PATIENCE;

/// How the index is run.
#[derive(Debug, Clone)]
pub struct IndexSettings {
    /// Off: every count is SQL.
    pub enabled: bool,
    /// How long a count waits for a build in progress before it falls back to SQL.
    pub wait_for_build: Duration,
    /// The safety net: a full rebuild this often.
    pub rebuild_every: Duration,
    /// How often the background task catches up, so counts find little to read.
    pub catch_up_every: Duration,
}

impl Default for IndexSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            wait_for_build: Duration::from_secs(2),
            rebuild_every: Duration::from_secs(15 * 60),
            catch_up_every: Duration::from_secs(1),
        }
    }
}

/// Where a tail stands: everything up to `high` has been read except `holes`.
#[derive(Debug, Default, Clone)]
struct Cursor {
    high: i64,
    holes: BTreeMap<i64, Instant>,
}

impl Cursor {
    fn new(high: i64, holes: &[i64]) -> Self {
        let now = Instant::now();
        Self { high, holes: holes.iter().map(|&id| (id, now)).collect() }
    }

    fn holes(&mut self) -> Vec<i64> {
        let now = Instant::now();
        self.holes.retain(|_, seen| now.duration_since(*seen) < HOLE_PATIENCE);
        self.holes.keys().copied().collect()
    }

    /// Records a row read; false when it was read before.
    fn saw(&mut self, id: i64) -> bool {
        if id > self.high {
            // Ids between the last one read and this one belong to transactions still open.
            let now = Instant::now();
            for skipped in (self.high + 1..id).take(10_000) {
                self.holes.insert(skipped, now);
            }
            self.high = id;
            true
        } else {
            self.holes.remove(&id).is_some()
        }
    }
}

struct Built {
    state: State,
    events: Cursor,
    orders: Cursor,
    epoch: i64,
    built_at: Instant,
}

/// One account's index: small until built.
struct Slot {
    built: RwLock<Option<Built>>,
    building: std::sync::Mutex<bool>,
    /// Bumped when a build finishes.
    generation: watch::Sender<u64>,
}

impl Slot {
    fn new() -> Self {
        Self { built: RwLock::new(None), building: std::sync::Mutex::new(false), generation: watch::channel(0).0 }
    }
}

struct Shared {
    slots: std::sync::RwLock<HashMap<AccountId, Arc<Slot>>>,
    /// Serializes catch-ups, so concurrent counts share one.
    catching_up: Mutex<()>,
    /// Builds running at once: a hundred accounts due for their rebuild in the same minute
    /// must not take every database connection the requests need.
    builds: tokio::sync::Semaphore,
}

/// Builds at once, across accounts.
const CONCURRENT_BUILDS: usize = 2;

impl Default for Shared {
    fn default() -> Self {
        Self {
            slots: std::sync::RwLock::default(),
            catching_up: Mutex::default(),
            builds: tokio::sync::Semaphore::new(CONCURRENT_BUILDS),
        }
    }
}

/// Why the index could not answer; callers fall back to SQL.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
}

/// A process's audience index, every account's; cheap to clone.
#[derive(Clone)]
pub struct AudienceIndex {
    pool: Pool,
    settings: IndexSettings,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AudienceIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudienceIndex").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// What one account's index holds, by the index's own accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountMemory {
    pub account: AccountId,
    pub followers: usize,
    pub bytes: usize,
}

impl AudienceIndex {
    pub fn new(pool: Pool, settings: IndexSettings) -> Self {
        Self { pool, settings, shared: Arc::new(Shared::default()) }
    }

    fn slot(&self, account: AccountId) -> Arc<Slot> {
        if let Some(slot) = self.shared.slots.read().expect("no panics while holding the lock").get(&account) {
            return Arc::clone(slot);
        }
        let mut slots = self.shared.slots.write().expect("no panics while holding the lock");
        Arc::clone(slots.entry(account).or_insert_with(|| Arc::new(Slot::new())))
    }

    fn slots(&self) -> Vec<(AccountId, Arc<Slot>)> {
        let slots = self.shared.slots.read().expect("no panics while holding the lock");
        slots.iter().map(|(a, s)| (*a, Arc::clone(s))).collect()
    }

    /// Builds the first account's now (the others on their first count), then catches up and
    /// rebuilds on schedule until `cancel`.
    pub fn spawn_maintenance(&self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let index = self.clone();
        tokio::spawn(async move {
            if !index.settings.enabled {
                return;
            }
            index.start_build(AccountId::FIRST);
            let mut tick = tokio::time::interval(index.settings.catch_up_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                for (account, slot) in index.slots() {
                    let due =
                        slot.built.read().await.as_ref().map(|b| b.built_at.elapsed() >= index.settings.rebuild_every);
                    if due == Some(true) {
                        index.start_build(account);
                    }
                }
                match index.catch_up(None).await {
                    Ok(stale) => {
                        for account in stale {
                            index.start_build(account);
                        }
                    }
                    Err(error) => tracing::warn!(error = ?error, "the audience index could not catch up"),
                }
            }
        })
    }

    /// Starts a full build of `account` in the background unless one is running.
    fn start_build(&self, account: AccountId) {
        let slot = self.slot(account);
        {
            let mut building = slot.building.lock().expect("no panics while holding the lock");
            if *building {
                return;
            }
            *building = true;
        }
        let index = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = index.build(account).await;
            *slot.building.lock().expect("no panics while holding the lock") = false;
            match outcome {
                Ok(built) => {
                    let size = built.state.size();
                    let bytes = built.state.approx_bytes();
                    *slot.built.write().await = Some(built);
                    slot.generation.send_modify(|g| *g += 1);
                    tracing::info!(
                        account = account.get(),
                        duration_ms = started.elapsed().as_millis() as u64,
                        followers = size.followers,
                        subscribed = size.subscribed,
                        memberships = size.memberships,
                        clicks = size.clicks,
                        orders = size.orders,
                        bytes,
                        "built the audience index"
                    );
                }
                Err(error) => tracing::warn!(error = ?error, "building the audience index failed; counts use SQL"),
            }
        });
    }

    async fn build(&self, account: AccountId) -> Result<Built, IndexError> {
        let _permit = self.shared.builds.acquire().await.expect("the semaphore is never closed");
        let mut client = self.pool.get().await?;
        let txn =
            client.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead).start().await?;
        let mut state = State::default();
        let marks: Marks = store::audience_feed::load_all(&txn, account, &mut state).await?;
        txn.commit().await?;
        Ok(Built {
            state,
            events: Cursor::new(marks.event_id, &marks.event_holes),
            orders: Cursor::new(marks.order_seq, &marks.order_holes),
            epoch: marks.epoch,
            built_at: Instant::now(),
        })
    }

    /// Reads what changed since the last look, for account `only` (a count: it pays for its
    /// own account alone) or every built account at once (the background pass). Returns the
    /// accounts whose index cannot be trusted (an epoch bump: the caller starts a rebuild); an
    /// account not built is in neither.
    async fn catch_up(&self, only: Option<AccountId>) -> Result<HashSet<AccountId>, IndexError> {
        let _turn = self.shared.catching_up.lock().await;
        let mut cursors: Vec<(AccountId, Arc<Slot>, Cursor, Cursor)> = Vec::new();
        let mut stale = HashSet::new();
        let built_epochs = {
            let mut epochs = HashMap::new();
            for (account, slot) in self.slots() {
                if only.is_some_and(|only| only != account) {
                    continue;
                }
                if let Some(built) = slot.built.read().await.as_ref() {
                    epochs.insert(account, built.epoch);
                    cursors.push((account, slot.clone(), built.events.clone(), built.orders.clone()));
                }
            }
            epochs
        };
        if cursors.is_empty() {
            return Ok(stale);
        }
        let ids: Vec<i64> = cursors.iter().map(|c| c.0.get()).collect();
        let client = self.pool.get().await?;
        let (epochs, tags) = tokio::try_join!(
            store::audience_feed::epochs(&client, &ids),
            store::audience_feed::tag_ids(&client, &ids)
        )?;
        for (account, epoch) in epochs {
            if built_epochs.get(&account) != Some(&epoch) {
                stale.insert(account);
            }
        }
        cursors.retain(|c| !stale.contains(&c.0));
        if cursors.is_empty() {
            return Ok(stale);
        }
        // One read from the least advanced account's position serves them all; each account's
        // own cursor then says which rows it has not seen. Holes past their patience go first.
        for (_, _, events, orders) in &mut cursors {
            events.holes();
            orders.holes();
        }
        let events_from = merged(cursors.iter().map(|c| &c.2));
        let orders_from = merged(cursors.iter().map(|c| &c.3));
        let mut new_events = Vec::new();
        let mut from = events_from;
        loop {
            let rows = store::audience_feed::events_since(&client, from.high, &from.holes(), TAIL_BATCH).await?;
            let full = rows.len() as i64 >= TAIL_BATCH;
            new_events.extend(rows.into_iter().filter(|row| from.saw(row.id)));
            if !full {
                break;
            }
        }
        let mut new_orders = Vec::new();
        let mut from = orders_from;
        loop {
            let rows = store::audience_feed::orders_since(&client, from.high, &from.holes(), TAIL_BATCH).await?;
            let full = rows.len() as i64 >= TAIL_BATCH;
            new_orders.extend(rows.into_iter().filter(|row| from.saw(row.seq)));
            if !full {
                break;
            }
        }

        let mut updates = Vec::with_capacity(cursors.len());
        for (account, slot, mut events, mut orders) in cursors {
            let mine_events: Vec<&EventRow> =
                new_events.iter().filter(|row| events.saw(row.id) && row.account == account).collect();
            let mine_orders: Vec<&OrderRow> =
                new_orders.iter().filter(|row| orders.saw(row.seq) && row.account == account).collect();
            let mut touched: Vec<&str> = mine_events
                .iter()
                .map(|e| e.openid.as_str())
                .chain(mine_orders.iter().map(|o| o.openid.as_str()))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            touched.sort_unstable();
            let mut states = Vec::with_capacity(touched.len());
            for chunk in touched.chunks(TAIL_BATCH as usize) {
                states.extend(store::audience_feed::follower_states(&client, account, chunk).await?);
            }
            let account_tags: Vec<(String, i64)> =
                tags.iter().filter(|t| t.0 == account).map(|t| (t.1.clone(), t.2)).collect();
            updates.push((slot, events, orders, mine_events, mine_orders, states, account_tags));
        }
        drop(client);

        for (slot, events, orders, mine_events, mine_orders, states, account_tags) in updates {
            let mut built = slot.built.write().await;
            let Some(built) = built.as_mut() else { continue };
            built.state.set_tags(account_tags);
            for event in &mine_events {
                if let Some(key) = &event.click_key {
                    built.state.add_click(&event.openid, key, event.occurred_at);
                } else if event.interaction {
                    built.state.add_activity(&event.openid, event.occurred_at);
                }
            }
            for order in &mine_orders {
                built.state.add_order(&order.openid, order.amount_cents, order.occurred_at);
            }
            for follower in &states {
                built.state.apply_follower(follower);
            }
            built.events = events;
            built.orders = orders;
        }
        Ok(stale)
    }

    /// Brings `account`'s index up to date: waits (up to the configured time) for a build when
    /// there is none yet or the epoch moved, then catches up. False: answer with SQL.
    async fn current(&self, account: AccountId) -> bool {
        if !self.settings.enabled {
            return false;
        }
        let slot = self.slot(account);
        for _ in 0..2 {
            let generation = *slot.generation.borrow();
            let trusted = match self.catch_up(Some(account)).await {
                Ok(stale) => !stale.contains(&account) && slot.built.read().await.is_some(),
                Err(error) => {
                    tracing::warn!(error = ?error, "the audience index could not catch up; answering with SQL");
                    return false;
                }
            };
            if trusted {
                return true;
            }
            self.start_build(account);
            let mut rx = slot.generation.subscribe();
            let built = tokio::time::timeout(self.settings.wait_for_build, rx.wait_for(|g| *g > generation));
            if !built.await.is_ok_and(|r| r.is_ok()) {
                return false;
            }
        }
        false
    }

    /// How many subscribed followers of `account` match `expr` at `now`; `None`: use SQL.
    pub async fn count(&self, account: AccountId, expr: &Expr, now: i64) -> Option<i64> {
        let count = self.evaluate(account, expr, now, |_, matching| matching.len()).await?;
        Some(i64::try_from(count).unwrap_or(i64::MAX))
    }

    /// The sum of `model`'s scores over the subscribed followers of `account` matching `expr` at
    /// `now`: how many of them are expected to buy (预计下单人数). `None` when the index cannot
    /// answer or nobody has a score.
    pub async fn expected(&self, account: AccountId, expr: &Expr, now: i64, model: &'static str) -> Option<f64> {
        self.evaluate(account, expr, now, move |state, matching| state.expected(model, &matching)).await.flatten()
    }

    /// The openids of the subscribed followers of `account` matching `expr` at `now`; `None`:
    /// use SQL.
    pub async fn members(&self, account: AccountId, expr: &Expr, now: i64) -> Option<Vec<String>> {
        self.evaluate(account, expr, now, |state, matching| state.openids(&matching).map(str::to_owned).collect()).await
    }

    /// One page of the members of [`AudienceIndex::members`] (in the index's order, skipping
    /// `offset`) and how many there are in all: the 粉丝 page's filter, without copying every
    /// openid of a large audience to show fifty. `None`: use SQL.
    pub async fn members_page(
        &self,
        account: AccountId,
        expr: &Expr,
        now: i64,
        offset: u64,
        limit: usize,
    ) -> Option<(u64, Vec<String>)> {
        self.evaluate(account, expr, now, move |state, matching| {
            let total = matching.len();
            let skip = usize::try_from(offset).unwrap_or(usize::MAX);
            let page = state.openids(&matching).skip(skip).take(limit).map(str::to_owned).collect();
            (total, page)
        })
        .await
    }

    /// Folds the openids of the subscribed followers of `account` matching `expr` at `now`
    /// without copying them out (a send's confirmation counts per variant and against the
    /// monthly limit at a million followers); `None`: use SQL.
    pub async fn fold_members<T: Send + 'static>(
        &self,
        account: AccountId,
        expr: &Expr,
        now: i64,
        answer: impl FnOnce(&mut dyn Iterator<Item = &str>) -> T + Send + 'static,
    ) -> Option<T> {
        self.evaluate(account, expr, now, move |state, matching| answer(&mut state.openids(&matching))).await
    }

    /// How many subscribed followers of `account` match `expr` at `now`, and how many of them
    /// are in `marked`; `None`: use SQL.
    pub async fn count_marked(
        &self,
        account: AccountId,
        expr: &Expr,
        now: i64,
        marked: std::sync::Arc<std::collections::HashSet<String>>,
    ) -> Option<(i64, i64)> {
        self.evaluate(account, expr, now, move |state, matching| {
            let among = state.count_among(&matching, marked.iter().map(String::as_str));
            (i64::try_from(matching.len()).unwrap_or(i64::MAX), i64::try_from(among).unwrap_or(i64::MAX))
        })
        .await
    }

    /// What each built account's index holds (the benchmark and tests compare them).
    pub async fn memory(&self) -> Vec<AccountMemory> {
        let mut out = Vec::new();
        for (account, slot) in self.slots() {
            if let Some(built) = slot.built.read().await.as_ref() {
                out.push(AccountMemory {
                    account,
                    followers: built.state.size().followers,
                    bytes: built.state.approx_bytes(),
                });
            }
        }
        out.sort_by_key(|m| m.account);
        out
    }

    /// Evaluates `expr` on a blocking thread (a count over a million followers takes
    /// milliseconds of CPU, which must not stall the HTTP worker's other requests) and hands the
    /// matching followers to `answer` while the index is still read-locked.
    async fn evaluate<T: Send + 'static>(
        &self,
        account: AccountId,
        expr: &Expr,
        now: i64,
        answer: impl FnOnce(&State, roaring::RoaringBitmap) -> T + Send + 'static,
    ) -> Option<T> {
        if !self.current(account).await {
            return None;
        }
        let slot = self.slot(account);
        let expr = expr.clone();
        tokio::task::spawn_blocking(move || {
            let built = slot.built.blocking_read();
            let state = &built.as_ref()?.state;
            let matching = state.matching(&expr, now);
            Some(answer(state, matching))
        })
        .await
        .ok()
        .flatten()
    }
}

/// Where a read serving every cursor starts: the lowest high-water mark, and the holes at or
/// below it (those above it come with the rows after it).
fn merged<'a>(cursors: impl Iterator<Item = &'a Cursor>) -> Cursor {
    let mut from = Cursor { high: i64::MAX, holes: BTreeMap::new() };
    for cursor in cursors {
        from.high = from.high.min(cursor.high);
        from.holes.extend(cursor.holes.iter().map(|(id, at)| (*id, *at)));
    }
    let high = from.high;
    from.holes.retain(|id, _| *id <= high);
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_read_from_the_least_advanced_cursor_gives_each_account_only_what_it_has_not_seen() {
        // An account built early (read up to 10, 7 still open) and one built later (up to 20).
        let mut early = Cursor::new(10, &[7]);
        let mut late = Cursor::new(20, &[15]);
        let from = merged([&early, &late].into_iter());
        assert_eq!(from.high, 10);
        assert_eq!(from.holes.keys().copied().collect::<Vec<_>>(), [7], "15 comes with the rows after 10");
        // The shared read returns 11..=21 and the late row 7.
        let rows: Vec<i64> = (11..=21).chain([7]).collect();
        let early_new: Vec<i64> = rows.iter().copied().filter(|id| early.saw(*id)).collect();
        let late_new: Vec<i64> = rows.iter().copied().filter(|id| late.saw(*id)).collect();
        assert_eq!(early_new, (11..=21).chain([7]).collect::<Vec<_>>());
        assert_eq!(late_new, [15, 21], "what the later build's snapshot held is not counted twice");
        assert!(early.holes().is_empty() && late.holes().is_empty());
    }
}
