//! A writer task: takes every waiting push, stores the lot in one transaction, answers each.
//! A batch that fails on one push's data is stored again push by push, so one bad push never
//! fails its neighbours.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::{Mutex, mpsc};

use super::activity::{follower_activity, occurred_at};
use super::dispatch::{BatchContext, Received};
use super::{Dispatcher, HandlerError, InboxError, MAX_BATCH, StoreFailure, Stored, Submission};
use crate::domain::account::AccountId;
use crate::store::events::{NewEvent, delete_expired_signatures, insert_new_events, list_replies, update_replies};
use crate::store::followers::upsert_followers;
use crate::wechat::message::Message;
use crate::wechat::reply::Reply;

/// How often a batch is tried again after a deadlock or serialization failure.
const DB_RETRIES: usize = 2;

/// How often a writer deletes signatures past their retention.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// One writer task's share of the inbox.
pub(super) struct Writer {
    pub pool: Pool,
    pub dispatcher: Dispatcher,
    pub signature_retention: Duration,
}

impl Writer {
    pub(super) async fn run(self, receiver: Arc<Mutex<mpsc::Receiver<Submission>>>) {
        let mut last_prune = Instant::now();
        loop {
            let batch = {
                let mut receiver = receiver.lock().await;
                let Some(first) = receiver.recv().await else { return };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match receiver.try_recv() {
                        Ok(submission) => batch.push(submission),
                        Err(_) => break,
                    }
                }
                batch
            };
            self.store_batch(batch).await;
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                self.prune_signatures().await;
            }
        }
    }

    async fn prune_signatures(&self) {
        let deleted = match self.pool.get().await {
            Ok(client) => {
                delete_expired_signatures(&client, self.signature_retention).await.map_err(StoreFailure::from)
            }
            Err(error) => Err(StoreFailure::from(error)),
        };
        match deleted {
            Ok(0) => {}
            Ok(n) => tracing::debug!(signatures = n, "forgot callback signatures past the replay window"),
            Err(error) => {
                tracing::warn!(%error, "deleting expired callback signatures failed; trying again in a minute")
            }
        }
    }

    /// Stores a batch and answers each of its requests. When the batch fails on something tied to
    /// one row (data PostgreSQL refuses), its pushes are stored one by one, so only the offending
    /// push is refused and its neighbours are stored and answered as usual.
    #[tracing::instrument(skip_all, fields(batch.size = batch.len()))]
    async fn store_batch(&self, batch: Vec<Submission>) {
        let mut grouped: Grouped = BTreeMap::new();
        for submission in batch {
            grouped.entry(submission.dedupe_key.clone()).or_default().push(submission);
        }
        match commit(&self.pool, &self.dispatcher, &grouped).await {
            Err(failure) if is_row_level(&failure) && grouped.len() > 1 => {
                tracing::warn!(error = %failure, batch.size = grouped.len(), "a batch failed on its data; storing its pushes one by one");
                for (key, submissions) in grouped {
                    let single: Grouped = BTreeMap::from([(key, submissions)]);
                    let outcome = commit(&self.pool, &self.dispatcher, &single).await;
                    answer(single, outcome);
                }
            }
            outcome => answer(grouped, outcome),
        }
    }
}

/// Whether a failed statement is about the data of a row (SQLSTATE classes 22 data exception,
/// 23 integrity constraint violation, 54 program limit exceeded) rather than the database.
fn is_row_level(failure: &StoreFailure) -> bool {
    match failure {
        StoreFailure::Query(e) => e.code().is_some_and(|c| matches!(&c.code()[..2], "22" | "23" | "54")),
        StoreFailure::Pool(_) => false,
    }
}

/// Sends each request its answer: the stored reply; a refusal for a push whose signature another
/// push had claimed; or the batch's failure.
fn answer(grouped: Grouped, outcome: Result<HashMap<String, Stored>, StoreFailure>) {
    match outcome {
        Ok(mut stored) => {
            for (key, submissions) in grouped {
                let first = stored.remove(&key);
                for (i, submission) in submissions.into_iter().enumerate() {
                    let answer = match &first {
                        Some(first) => {
                            Ok(Stored { reply: first.reply.clone(), first_time: first.first_time && i == 0 })
                        }
                        None => Err(InboxError::Replayed),
                    };
                    // The request may have timed out and gone; nothing to do then.
                    let _ = submission.done.send(answer);
                }
            }
        }
        Err(failure) => {
            let row_level = is_row_level(&failure) && grouped.len() == 1;
            let failure = Arc::new(failure);
            let error = if row_level {
                tracing::warn!(error = %failure, "a push was refused by the database; answering 400");
                InboxError::Unstorable(failure)
            } else {
                tracing::error!(error = %failure, "storing a batch of pushes failed");
                InboxError::Store(failure)
            };
            for submission in grouped.into_values().flatten() {
                let _ = submission.done.send(Err(error.clone()));
            }
        }
    }
}

/// How handlers see a batch: all at once, or (after a failure) one push at a time without the
/// pushes known to fail.
enum HandlerMode {
    Batch,
    OneByOne { skip: HashSet<String> },
}

enum BatchError {
    Handler { dedupe_key: String, error: HandlerError },
    Store(StoreFailure),
}

impl<E: Into<StoreFailure>> From<E> for BatchError {
    fn from(error: E) -> Self {
        Self::Store(error.into())
    }
}

/// Submissions grouped by dedupe key, in key order (the order rows are locked in).
type Grouped = BTreeMap<String, Vec<Submission>>;

fn first_key(grouped: &Grouped) -> String {
    grouped.keys().next().cloned().unwrap_or_default()
}

/// Stores `grouped` in one transaction: tried again after a deadlock, and push by push for the
/// handlers when one of them fails. The map holds every key that was stored or found stored.
async fn commit(
    pool: &Pool,
    dispatcher: &Dispatcher,
    grouped: &Grouped,
) -> Result<HashMap<String, Stored>, StoreFailure> {
    let mut mode = HandlerMode::Batch;
    let mut db_failures = 0;
    loop {
        match try_store(pool, dispatcher, grouped, &mode).await {
            Ok(stored) => return Ok(stored),
            Err(BatchError::Handler { dedupe_key, error }) => match &mut mode {
                // Find the push that fails by trying them one at a time.
                HandlerMode::Batch => mode = HandlerMode::OneByOne { skip: HashSet::new() },
                HandlerMode::OneByOne { skip } => {
                    // The push is still stored and answered; only what the handlers would have done
                    // is lost, and it is logged for an operator to see.
                    tracing::error!(error = %error, event.dedupe_key = %dedupe_key, "a handler failed; replying success");
                    skip.insert(dedupe_key);
                }
            },
            Err(BatchError::Store(failure)) if is_transient(&failure) && db_failures < DB_RETRIES => {
                db_failures += 1;
                tracing::warn!(error = %failure, "batch conflicted with another; trying again");
            }
            Err(BatchError::Store(failure)) => return Err(failure),
        }
    }
}

/// The error that failed a pipelined batch. Once one statement fails the transaction is aborted and
/// every statement after it fails with 25P02, which says nothing about why; whichever of them
/// completes first must not hide the real cause (a push's data, say).
fn first_cause(errors: [Option<BatchError>; 4]) -> BatchError {
    let aborted = |error: &BatchError| {
        let db = match error {
            BatchError::Store(StoreFailure::Query(e)) => Some(e),
            BatchError::Handler { error, .. } => error.downcast_ref::<tokio_postgres::Error>(),
            BatchError::Store(StoreFailure::Pool(_)) => None,
        };
        db.and_then(tokio_postgres::Error::code) == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION)
    };
    let mut errors: Vec<BatchError> = errors.into_iter().flatten().collect();
    let cause = errors.iter().position(|error| !aborted(error)).unwrap_or(0);
    errors.swap_remove(cause)
}

fn is_transient(failure: &StoreFailure) -> bool {
    use tokio_postgres::error::SqlState;
    match failure {
        StoreFailure::Query(e) => {
            matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
        }
        StoreFailure::Pool(_) => false,
    }
}

async fn try_store(
    pool: &Pool,
    dispatcher: &Dispatcher,
    grouped: &Grouped,
    mode: &HandlerMode,
) -> Result<HashMap<String, Stored>, BatchError> {
    let client = pool.get().await?;
    let outcome = store_in_transaction(&client, dispatcher, grouped, mode).await;
    if outcome.is_err() {
        // Never hand a connection with an open transaction back to the pool.
        if client.batch_execute("ROLLBACK").await.is_err() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
    outcome
}

/// The batch in one transaction. BEGIN is sent together with the first statements (pipelined),
/// so a batch costs two round trips plus what handlers do, and the commit's flush.
async fn store_in_transaction(
    txn: &deadpool_postgres::Client,
    dispatcher: &Dispatcher,
    grouped: &Grouped,
    mode: &HandlerMode,
) -> Result<HashMap<String, Stored>, BatchError> {
    let events: Vec<NewEvent<'_, Message>> = grouped
        .iter()
        .map(|(key, subs)| {
            let message = &subs[0].message;
            NewEvent {
                account: subs[0].account,
                dedupe_key: key,
                openid: &message.from_user,
                kind: message.kind(),
                event_key: message.event_key(),
                occurred_at: occurred_at(message),
                payload: message,
                signature: subs[0].signature.as_deref(),
            }
        })
        .collect();
    // Followers before handlers, so they see who follows now (a returning follower gets their tags
    // back). Both statements go out together on the connection (pipelined); the upsert may include
    // retries, which is harmless: it keeps the newest state and the latest time it saw.
    let activity = follower_activity(grouped.values().map(|subs| (subs[0].account, &subs[0].message)));
    let mut accounts: Vec<AccountId> = grouped.values().map(|subs| subs[0].account).collect();
    accounts.sort_unstable();
    accounts.dedup();
    // Handlers' reads for the whole batch ride along too, except when a failing batch is being
    // taken apart push by push: then each handler reads for itself.
    let prefetch = async {
        match mode {
            HandlerMode::Batch if !dispatcher.is_empty() => dispatcher
                .prefetch(txn, &accounts)
                .await
                .map_err(|error| BatchError::Handler { dedupe_key: first_key(grouped), error }),
            _ => Ok(BatchContext::default()),
        }
    };
    let joined = tokio::join!(
        async { txn.batch_execute("BEGIN").await.map_err(BatchError::from) },
        async { insert_new_events(txn, &events).await.map_err(BatchError::from) },
        async { upsert_followers(txn, &activity).await.map_err(BatchError::from) },
        prefetch,
    );
    let (inserted, context) = match joined {
        (Ok(()), Ok(inserted), Ok(()), Ok(context)) => (inserted, context),
        (begin, inserted, upserted, context) => {
            return Err(first_cause([begin.err(), inserted.err(), upserted.err(), context.err()]));
        }
    };
    let inserted: HashSet<String> = inserted.into_iter().collect();

    let new: Vec<(&String, Received<'_>)> = grouped
        .iter()
        .filter(|(key, _)| inserted.contains(*key))
        .map(|(key, subs)| (key, Received { account: subs[0].account, message: &subs[0].message }))
        .collect();
    let replies = dispatch(txn, dispatcher, &new, mode, &context).await?;
    let now = chrono::Utc::now().timestamp();
    let mut stored: HashMap<String, Stored> = HashMap::with_capacity(grouped.len());
    let mut reply_rows: Vec<(&str, String)> = Vec::new();
    for ((key, message), reply) in new.iter().zip(replies) {
        let xml = reply.map(|r| r.to_xml(&message.from_user, &message.to_user, now));
        if let Some(xml) = &xml {
            reply_rows.push((key.as_str(), xml.clone()));
        }
        stored.insert((*key).clone(), Stored { reply: xml, first_time: true });
    }
    let reply_refs: Vec<(&str, &str)> = reply_rows.iter().map(|(k, r)| (*k, r.as_str())).collect();
    update_replies(txn, &reply_refs).await?;

    let retried: Vec<&str> = grouped.keys().filter(|key| !inserted.contains(*key)).map(String::as_str).collect();
    for (key, reply) in list_replies(txn, &retried).await? {
        stored.insert(key, Stored { reply: (!reply.is_empty()).then_some(reply), first_time: false });
    }
    txn.batch_execute("COMMIT").await?;
    Ok(stored)
}

async fn dispatch(
    txn: &deadpool_postgres::Client,
    dispatcher: &Dispatcher,
    new: &[(&String, Received<'_>)],
    mode: &HandlerMode,
    context: &BatchContext,
) -> Result<Vec<Option<Reply>>, BatchError> {
    if dispatcher.is_empty() || new.is_empty() {
        return Ok(vec![None; new.len()]);
    }
    match mode {
        HandlerMode::Batch => {
            let messages: Vec<Received<'_>> = new.iter().map(|(_, m)| *m).collect();
            dispatcher
                .dispatch(txn, &messages, context)
                .await
                .map_err(|error| BatchError::Handler { dedupe_key: new[0].0.clone(), error })
        }
        HandlerMode::OneByOne { skip } => {
            let mut replies = Vec::with_capacity(new.len());
            for (key, message) in new {
                if skip.contains(*key) {
                    replies.push(None);
                    continue;
                }
                let mut answer = dispatcher
                    .dispatch(txn, &[*message], context)
                    .await
                    .map_err(|error| BatchError::Handler { dedupe_key: (*key).clone(), error })?;
                replies.push(answer.pop().flatten());
            }
            Ok(replies)
        }
    }
}
