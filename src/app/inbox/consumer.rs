//! The event consumer: applies what stored pushes decided (follower activity, then each handler's
//! [`super::Handler::apply`]: tags, the outbox, dynamic tags), off the push's own transaction.
//!
//! It tails `events` by id from a cursor kept in `event_cursors`, and advances the cursor in the
//! transaction that applies the events it passed, so each event is applied exactly once, even
//! across a crash. An id below the mark whose row is not there yet (its transaction has not
//! committed, or never will: a conflict or rollback burned it) is a hole, read again on every pass
//! until it shows up or [`EVENT_HOLE_PATIENCE`] passes. The cursor row is locked for the pass, so
//! of several instances one applies at a time and the others skip.
//!
//! Writers wake it after each commit; it also looks every [`POLL`] for other instances' pushes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Dispatcher;
use super::activity::follower_activity;
use crate::store::database::EVENT_HOLE_PATIENCE;
use crate::store::event_cursor::{self, Cursor, StoredEvent, TAGGING};
use crate::store::followers::upsert_followers;

/// How many events one pass applies at most.
const BATCH: i64 = 5_000;
/// The least time between two passes: woken after every stored batch, it lets a few batches
/// gather, so a pass's fixed cost (its transaction, cursor and commit) is shared by hundreds of
/// events under load (about 10 % more pushes per second than a pass per batch, bench/callback).
const GATHER: Duration = Duration::from_millis(25);
/// How often it looks for events nobody woke it for (another instance's).
const POLL: Duration = Duration::from_millis(100);
/// How long it waits after a failed pass.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a pass failed; the events stay unapplied and the next pass takes them again.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
    #[error("the handler {handler} failed")]
    Handler {
        handler: &'static str,
        #[source]
        error: super::HandlerError,
    },
}

/// The consumer of one process.
pub struct Consumer {
    pool: Pool,
    dispatcher: Dispatcher,
    lag: prometheus_client::metrics::histogram::Histogram,
    /// When this process first saw each hole (a hole read from the cursor counts from then).
    holes_seen: HashMap<i64, Instant>,
}

impl Consumer {
    pub fn new(pool: Pool, dispatcher: Dispatcher, lag: prometheus_client::metrics::histogram::Histogram) -> Self {
        Self { pool, dispatcher, lag, holes_seen: HashMap::new() }
    }

    /// Runs until `cancel`, woken by `wake` or every [`POLL`].
    pub async fn run(mut self, wake: Arc<Notify>, cancel: CancellationToken) {
        let mut last = Instant::now();
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
            let since = last.elapsed();
            if since < GATHER {
                tokio::time::sleep(GATHER - since).await;
            }
            last = Instant::now();
            if let Err(error) = self.catch_up().await {
                tracing::warn!(error = ?error, "applying stored pushes failed; trying again in a second");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(RETRY_AFTER) => {}
                }
            }
        }
    }

    /// Applies passes until nothing is left. Returns how many events were applied.
    ///
    /// # Errors
    /// A pass failed: its events stay for the next.
    pub async fn catch_up(&mut self) -> Result<usize, ConsumerError> {
        let mut applied = 0;
        loop {
            let (count, more) = self.pass().await?;
            applied += count;
            if !more {
                return Ok(applied);
            }
        }
    }

    /// One pass: returns how many events it applied, and whether more may be waiting.
    async fn pass(&mut self) -> Result<(usize, bool), ConsumerError> {
        let client = self.pool.get().await?;
        client.batch_execute("BEGIN").await?;
        let outcome = self.pass_in_transaction(&client).await;
        let finished = match &outcome {
            Ok(_) => client.batch_execute("COMMIT").await,
            Err(_) => client.batch_execute("ROLLBACK").await,
        };
        if let Err(error) = finished {
            // The connection's state is unknown: it must not go back to the pool.
            drop(deadpool_postgres::Object::take(client));
            outcome?;
            return Err(error.into());
        }
        let done = outcome?;
        if let Some(saved) = done.saved {
            self.holes_seen.retain(|id, _| saved.cursor.holes.contains(id));
            let since_read = saved.read_at.elapsed().as_secs_f64();
            for age in saved.ages {
                self.lag.observe(age + since_read);
            }
        }
        Ok((done.applied, done.more))
    }

    /// The body of a pass, inside its transaction; the caller commits or rolls back.
    async fn pass_in_transaction(&mut self, txn: &deadpool_postgres::Client) -> Result<PassDone, ConsumerError> {
        let Some(cursor) = event_cursor::lock_cursor(txn, TAGGING).await? else {
            // Another instance is applying; it takes these events too.
            return Ok(PassDone::default());
        };
        let read_at = Instant::now();
        let mut events = event_cursor::events_after(txn, &cursor, BATCH).await?;
        let full = events.iter().filter(|e| e.id > cursor.mark).count() as i64 >= BATCH;
        events.sort_unstable_by_key(|e| e.id);
        let next = self.advance(&cursor, &events);
        if events.is_empty() && next == cursor {
            return Ok(PassDone::default());
        }
        upsert_followers(txn, &follower_activity(&events)).await?;
        if !events.is_empty() {
            self.dispatcher
                .apply(txn, &events)
                .await
                .map_err(|(handler, error)| ConsumerError::Handler { handler, error })?;
        }
        event_cursor::save_cursor(txn, TAGGING, &next).await?;
        let ages = events.iter().map(|e| e.age_at_read).collect();
        Ok(PassDone { applied: events.len(), more: full, saved: Some(SavedCursor { cursor: next, read_at, ages }) })
    }

    /// Where the cursor stands once `events` (read from `cursor`, sorted by id) are applied: the
    /// mark moves to the newest, ids skipped on the way become holes, holes that showed up or
    /// outlived their patience go.
    fn advance(&mut self, cursor: &Cursor, events: &[StoredEvent]) -> Cursor {
        let now = Instant::now();
        let seen: HashSet<i64> = events.iter().map(|e| e.id).collect();
        let mut holes: Vec<i64> = cursor.holes.iter().copied().filter(|id| !seen.contains(id)).collect();
        let mut mark = cursor.mark;
        for event in events.iter().filter(|e| e.id > cursor.mark) {
            holes.extend(mark + 1..event.id);
            mark = event.id;
        }
        holes.retain(|id| {
            let first_seen = *self.holes_seen.entry(*id).or_insert(now);
            let waited = now.duration_since(first_seen);
            if waited >= EVENT_HOLE_PATIENCE {
                tracing::debug!(event.id = id, "an event id never committed; no longer waiting for it");
                false
            } else {
                true
            }
        });
        holes.sort_unstable();
        Cursor { mark, holes }
    }
}

/// What a pass did, for the caller to act on once it has committed.
#[derive(Default)]
struct PassDone {
    applied: usize,
    more: bool,
    saved: Option<SavedCursor>,
}

/// The cursor a pass saved, when it read its events, and how old each was then.
struct SavedCursor {
    cursor: Cursor,
    read_at: Instant,
    ages: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::AccountId;

    fn consumer() -> Consumer {
        let pool = crate::store::build_pool(&"postgres://nobody@127.0.0.1:1/none".to_owned().into(), 1).unwrap();
        Consumer::new(pool, Dispatcher::default(), prometheus_client::metrics::histogram::Histogram::new([1.0]))
    }

    fn event(id: i64) -> StoredEvent {
        StoredEvent {
            id,
            account: AccountId::FIRST,
            openid: "o".into(),
            kind: "click".into(),
            event_key: None,
            occurred_at: chrono::Utc::now(),
            effects: None,
            received_at: chrono::Utc::now(),
            age_at_read: 0.0,
        }
    }

    #[test]
    fn ids_skipped_become_holes_and_leave_once_they_show_up() {
        let mut consumer = consumer();
        let cursor = Cursor { mark: 10, holes: vec![] };
        let next = consumer.advance(&cursor, &[event(11), event(14), event(15)]);
        assert_eq!(next, Cursor { mark: 15, holes: vec![12, 13] });
        let after = consumer.advance(&next, &[event(13)]);
        assert_eq!(after, Cursor { mark: 15, holes: vec![12] });
    }

    #[test]
    fn a_hole_past_its_patience_is_dropped() {
        let mut consumer = consumer();
        let cursor = Cursor { mark: 15, holes: vec![12] };
        consumer.holes_seen.insert(12, Instant::now() - EVENT_HOLE_PATIENCE - Duration::from_secs(1));
        assert_eq!(consumer.advance(&cursor, &[]), Cursor { mark: 15, holes: vec![] });
    }
}
