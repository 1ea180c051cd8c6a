//! The in-memory audience index: segment counts (and member lists) in milliseconds at a million
//! followers, where SQL must scan every follower and hash every term.
//!
//! Each process keeps its own copy ([`State`]), built from Postgres in the background at
//! start, and kept exact when asked:
//! - every follower action and its effects (rules, quizzes, self-service, dynamic tags) commit
//!   with an `events` row, and every order with an `orders` row; before answering, the index reads
//!   the rows added since it last looked (by id, and the ids it skipped because their transaction
//!   had not committed yet), adds their clicks and orders, and re-reads the subscription and tags
//!   of the followers they name;
//! - changes no such row announces (a dynamic tag's scheduled pass, erasure, the follower import)
//!   bump `audience_epoch`; an index that sees a newer epoch answers `None` (callers use SQL) and
//!   rebuilds in the background;
//! - tags created or deleted are followed on every catch-up; a full rebuild also runs every
//!   [`IndexSettings::rebuild_every`], bounding what any writer that forgot the epoch could skew.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::{Mutex, RwLock, watch};
use tokio_util::sync::CancellationToken;

use crate::domain::audience_index::state::State;
use crate::domain::expr::Expr;
use crate::store;
use crate::store::audience_feed::Marks;

/// Rows read per catch-up query.
const TAIL_BATCH: i64 = 20_000;
/// A skipped id whose row has not appeared after this long belonged to a rolled-back
/// transaction (sequences do not roll back).
const HOLE_PATIENCE: Duration = Duration::from_secs(60);

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

#[derive(Default)]
struct Shared {
    built: RwLock<Option<Built>>,
    /// Serializes catch-ups, so concurrent counts share one.
    catching_up: Mutex<()>,
    building: std::sync::Mutex<bool>,
    /// Bumped when a build finishes.
    generation: Option<watch::Sender<u64>>,
}

/// Why the index could not answer; callers fall back to SQL.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
}

/// A process's audience index; cheap to clone.
#[derive(Clone)]
pub struct AudienceIndex {
    pool: Pool,
    settings: IndexSettings,
    shared: Arc<Shared>,
    built_rx: watch::Receiver<u64>,
}

impl std::fmt::Debug for AudienceIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudienceIndex").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl AudienceIndex {
    pub fn new(pool: Pool, settings: IndexSettings) -> Self {
        let (tx, rx) = watch::channel(0);
        let shared = Shared { generation: Some(tx), ..Shared::default() };
        Self { pool, settings, shared: Arc::new(shared), built_rx: rx }
    }

    /// Builds now, then catches up and rebuilds on schedule until `cancel`.
    pub fn spawn_maintenance(&self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let index = self.clone();
        tokio::spawn(async move {
            if !index.settings.enabled {
                return;
            }
            index.start_build();
            let mut tick = tokio::time::interval(index.settings.catch_up_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let due = index
                    .shared
                    .built
                    .read()
                    .await
                    .as_ref()
                    .map(|b| b.built_at.elapsed() >= index.settings.rebuild_every);
                match due {
                    Some(true) => index.start_build(),
                    Some(false) => match index.catch_up().await {
                        Ok(true) => {}
                        Ok(false) => index.start_build(),
                        Err(error) => tracing::warn!(error = ?error, "the audience index could not catch up"),
                    },
                    None => {}
                }
            }
        })
    }

    /// Starts a full build in the background unless one is running.
    fn start_build(&self) {
        {
            let mut building = self.shared.building.lock().expect("no panics while holding the lock");
            if *building {
                return;
            }
            *building = true;
        }
        let index = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = index.build().await;
            *index.shared.building.lock().expect("no panics while holding the lock") = false;
            match outcome {
                Ok(built) => {
                    let size = built.state.size();
                    *index.shared.built.write().await = Some(built);
                    if let Some(generation) = &index.shared.generation {
                        generation.send_modify(|g| *g += 1);
                    }
                    tracing::info!(
                        duration_ms = started.elapsed().as_millis() as u64,
                        followers = size.followers,
                        subscribed = size.subscribed,
                        memberships = size.memberships,
                        clicks = size.clicks,
                        orders = size.orders,
                        "built the audience index"
                    );
                }
                Err(error) => tracing::warn!(error = ?error, "building the audience index failed; counts use SQL"),
            }
        });
    }

    async fn build(&self) -> Result<Built, IndexError> {
        let mut client = self.pool.get().await?;
        let txn =
            client.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead).start().await?;
        let mut state = State::default();
        let marks: Marks = store::audience_feed::load_all(&txn, &mut state).await?;
        txn.commit().await?;
        Ok(Built {
            state,
            events: Cursor::new(marks.event_id, &marks.event_holes),
            orders: Cursor::new(marks.order_seq, &marks.order_holes),
            epoch: marks.epoch,
            built_at: Instant::now(),
        })
    }

    /// Reads what changed since the last look. Returns false when the index cannot be trusted
    /// (not built, or an epoch bump: a rebuild has been started).
    async fn catch_up(&self) -> Result<bool, IndexError> {
        let _turn = self.shared.catching_up.lock().await;
        let client = self.pool.get().await?;
        let (epoch, tags) =
            tokio::try_join!(store::audience_feed::epoch(&client), store::audience_feed::tag_ids(&client))?;
        let (mut events, mut orders) = {
            let built = self.shared.built.read().await;
            let Some(built) = built.as_ref() else { return Ok(false) };
            if built.epoch != epoch {
                return Ok(false);
            }
            (built.events.clone(), built.orders.clone())
        };
        // Read outside the write lock: counts keep running on the state as it was.
        let mut new_events = Vec::new();
        loop {
            let rows = store::audience_feed::events_since(&client, events.high, &events.holes(), TAIL_BATCH).await?;
            let full = rows.len() as i64 >= TAIL_BATCH;
            new_events.extend(rows.into_iter().filter(|row| events.saw(row.id)));
            if !full {
                break;
            }
        }
        let mut new_orders = Vec::new();
        loop {
            let rows = store::audience_feed::orders_since(&client, orders.high, &orders.holes(), TAIL_BATCH).await?;
            let full = rows.len() as i64 >= TAIL_BATCH;
            new_orders.extend(rows.into_iter().filter(|row| orders.saw(row.seq)));
            if !full {
                break;
            }
        }
        let mut touched: Vec<&str> = new_events
            .iter()
            .map(|e| e.openid.as_str())
            .chain(new_orders.iter().map(|o| o.openid.as_str()))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        touched.sort_unstable();
        let mut states = Vec::with_capacity(touched.len());
        for chunk in touched.chunks(TAIL_BATCH as usize) {
            states.extend(store::audience_feed::follower_states(&client, chunk).await?);
        }
        drop(client);

        let mut built = self.shared.built.write().await;
        let Some(built) = built.as_mut() else { return Ok(false) };
        built.state.set_tags(tags);
        for event in &new_events {
            if let Some(key) = &event.click_key {
                built.state.add_click(&event.openid, key, event.occurred_at);
            }
        }
        for order in &new_orders {
            built.state.add_order(&order.openid, order.amount_cents, order.occurred_at);
        }
        for follower in &states {
            built.state.apply_follower(follower);
        }
        built.events = events;
        built.orders = orders;
        Ok(true)
    }

    /// Brings the index up to date: waits (up to the configured time) for a build when there is
    /// none yet or the epoch moved, then catches up. False: answer with SQL.
    async fn current(&self) -> bool {
        if !self.settings.enabled {
            return false;
        }
        for _ in 0..2 {
            let generation = *self.built_rx.borrow();
            match self.catch_up().await {
                Ok(true) => return true,
                Ok(false) => {
                    self.start_build();
                    let mut rx = self.built_rx.clone();
                    let built = tokio::time::timeout(self.settings.wait_for_build, rx.wait_for(|g| *g > generation));
                    if !built.await.is_ok_and(|r| r.is_ok()) {
                        return false;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = ?error, "the audience index could not catch up; answering with SQL");
                    return false;
                }
            }
        }
        false
    }

    /// How many subscribed followers match `expr` at `now`; `None`: use SQL.
    pub async fn count(&self, expr: &Expr, now: i64) -> Option<i64> {
        let count = self.evaluate(expr, now, |_, matching| matching.len()).await?;
        Some(i64::try_from(count).unwrap_or(i64::MAX))
    }

    /// The openids of the subscribed followers matching `expr` at `now`; `None`: use SQL.
    pub async fn members(&self, expr: &Expr, now: i64) -> Option<Vec<String>> {
        self.evaluate(expr, now, |state, matching| state.openids(&matching).map(str::to_owned).collect()).await
    }

    /// Evaluates `expr` on a blocking thread (a count over a million followers takes
    /// milliseconds of CPU, which must not stall the HTTP worker's other requests) and hands the
    /// matching followers to `answer` while the index is still read-locked.
    async fn evaluate<T: Send + 'static>(
        &self,
        expr: &Expr,
        now: i64,
        answer: impl FnOnce(&State, roaring::RoaringBitmap) -> T + Send + 'static,
    ) -> Option<T> {
        if !self.current().await {
            return None;
        }
        let shared = Arc::clone(&self.shared);
        let expr = expr.clone();
        tokio::task::spawn_blocking(move || {
            let built = shared.built.blocking_read();
            let state = &built.as_ref()?.state;
            let matching = state.matching(&expr, now);
            Some(answer(state, matching))
        })
        .await
        .ok()
        .flatten()
    }
}
