//! A writer task: takes every waiting push, decides their replies and effects, stores the lot
//! (one statement when the handlers could decide from memory, else one transaction), answers
//! each, and wakes the event consumer. A batch that fails on one push's data is stored again push
//! by push, so one bad push never fails its neighbours.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::{Mutex, mpsc};

use super::activity::occurred_at;
use super::dispatch::{Combined, Received};
use super::{Dispatcher, HandlerError, InboxError, MAX_BATCH, StoreFailure, Stored, Submission};
use crate::store::events::{Inserted, NewEvent, Outcome, delete_expired_signatures, insert_new_events, list_replies};
use crate::wechat::message::Message;

/// How often a batch is tried again after a deadlock or serialization failure.
const DB_RETRIES: usize = 2;

/// How often a writer deletes signatures past their retention.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// One writer task's share of the inbox.
pub(super) struct Writer {
    pub pool: Pool,
    pub dispatcher: Dispatcher,
    pub signature_retention: Duration,
    /// The event consumer, woken when a batch stored something new.
    pub consumer: Arc<tokio::sync::Notify>,
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
    #[tracing::instrument(level = "debug", skip_all, fields(batch.size = batch.len()))]
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
                    self.wake_consumer(&outcome);
                    answer(single, outcome);
                }
            }
            outcome => {
                self.wake_consumer(&outcome);
                answer(grouped, outcome);
            }
        }
    }

    fn wake_consumer(&self, outcome: &Result<HashMap<String, Stored>, StoreFailure>) {
        if outcome.as_ref().is_ok_and(|stored| stored.values().any(|s| s.first_time)) {
            self.consumer.notify_one();
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
    Handler { dedupe_key: String, handler: &'static str, error: HandlerError },
    Store(StoreFailure),
}

impl<E: Into<StoreFailure>> From<E> for BatchError {
    fn from(error: E) -> Self {
        Self::Store(error.into())
    }
}

/// Submissions grouped by dedupe key, in key order (the order rows are locked in).
type Grouped = BTreeMap<String, Vec<Submission>>;

/// Stores `grouped`: tried again after a deadlock, and push by push for the handlers when one of
/// them fails. The map holds every key that was stored or found stored.
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
            Err(BatchError::Handler { dedupe_key, handler, error }) => match &mut mode {
                // Find the push that fails by trying them one at a time.
                HandlerMode::Batch => mode = HandlerMode::OneByOne { skip: HashSet::new() },
                HandlerMode::OneByOne { skip } => {
                    // The push is still stored and answered; only what the handlers would have done
                    // is lost, and it is logged for an operator to see.
                    tracing::error!(error = %error, handler, event.dedupe_key = %dedupe_key, "a handler failed; replying success");
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

fn is_transient(failure: &StoreFailure) -> bool {
    use tokio_postgres::error::SqlState;
    match failure {
        StoreFailure::Query(e) => {
            matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
        }
        StoreFailure::Pool(_) => false,
    }
}

/// One push of a batch (the first of its dedupe key's submissions).
#[derive(Clone, Copy)]
struct Push<'a> {
    key: &'a str,
    received: Received<'a>,
    signature: Option<&'a [u8]>,
}

fn pushes(grouped: &Grouped) -> Vec<Push<'_>> {
    grouped
        .iter()
        .map(|(key, subs)| Push {
            key,
            received: Received { account: subs[0].account, message: &subs[0].message },
            signature: subs[0].signature.as_deref(),
        })
        .collect()
}

async fn try_store(
    pool: &Pool,
    dispatcher: &Dispatcher,
    grouped: &Grouped,
    mode: &HandlerMode,
) -> Result<HashMap<String, Stored>, BatchError> {
    let client = pool.get().await?;
    let pushes = pushes(grouped);
    if matches!(mode, HandlerMode::Batch) {
        let messages: Vec<Received<'_>> = pushes.iter().map(|p| p.received).collect();
        if let Some(decision) = dispatcher.decide(&messages) {
            let decided: Vec<(Push<'_>, Combined)> = pushes.iter().copied().zip(decision.combined).collect();
            if let Some(stored) = store_decided(&client, &decided, decision.config_version).await? {
                return Ok(stored);
            }
            // Decided against a configuration (or a quiz state) that has changed: decide again
            // in a transaction, which reads both.
            dispatcher.forget_config();
        }
    }
    let outcome = store_in_transaction(&client, dispatcher, &pushes, mode).await;
    if outcome.is_err() {
        // Never hand a connection with an open transaction back to the pool.
        if client.batch_execute("ROLLBACK").await.is_err() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
    outcome
}

/// Each decided reply as the XML WeChat gets.
fn render(decided: &[(Push<'_>, Combined)]) -> Vec<Option<String>> {
    let now = chrono::Utc::now().timestamp();
    decided
        .iter()
        .map(|(push, combined)| {
            let message = push.received.message;
            combined.reply.as_ref().map(|reply| reply.to_xml(&message.from_user, &message.to_user, now))
        })
        .collect()
}

/// The rows of `decided`, replies rendered as `xml`.
fn new_events<'a>(decided: &'a [(Push<'a>, Combined)], xml: &'a [Option<String>]) -> Vec<NewEvent<'a, Message>> {
    decided
        .iter()
        .zip(xml)
        .map(|((push, combined), xml)| {
            let message = push.received.message;
            NewEvent {
                account: push.received.account,
                dedupe_key: push.key,
                openid: &message.from_user,
                kind: message.kind(),
                event_key: message.event_key(),
                occurred_at: occurred_at(message),
                payload: message,
                signature: push.signature,
                reply: xml.as_deref(),
                effects: combined.effects.as_ref(),
                no_quiz_session_since: combined.no_quiz_session_since,
            }
        })
        .collect()
}

/// What each push gets back: its reply if stored now; the stored reply if it is a retry. A key
/// neither stored now nor found stored is either a replay (refused) or a retry whose original
/// committed while the statement ran: asked once more, after it.
async fn answers(
    client: &deadpool_postgres::Client,
    keys: impl Iterator<Item = (&str, Option<String>)>,
    mut found: HashMap<String, Outcome>,
) -> Result<HashMap<String, Stored>, BatchError> {
    let mut stored = HashMap::with_capacity(found.len());
    let mut unknown: Vec<&str> = Vec::new();
    for (key, reply) in keys {
        match found.remove(key) {
            Some(Outcome::Inserted) => {
                stored.insert(key.to_owned(), Stored { reply, first_time: true });
            }
            Some(Outcome::Stored { reply }) => {
                stored
                    .insert(key.to_owned(), Stored { reply: (!reply.is_empty()).then_some(reply), first_time: false });
            }
            None => unknown.push(key),
        }
    }
    for (key, reply) in list_replies(client, &unknown).await? {
        stored.insert(key, Stored { reply: (!reply.is_empty()).then_some(reply), first_time: false });
    }
    Ok(stored)
}

/// Stores a batch decided from memory: one statement, committed on its own. `None`: an
/// assumption of a decision no longer holds, and nothing was written.
async fn store_decided(
    client: &deadpool_postgres::Client,
    decided: &[(Push<'_>, Combined)],
    config_version: Option<i64>,
) -> Result<Option<HashMap<String, Stored>>, BatchError> {
    let xml = render(decided);
    let events = new_events(decided, &xml);
    let found = match insert_new_events(client, &events, config_version).await? {
        Inserted::Redecide => return Ok(None),
        Inserted::Done(found) => found,
    };
    let keys = decided.iter().zip(xml).map(|((push, _), xml)| (push.key, xml));
    Ok(Some(answers(client, keys, found).await?))
}

/// The batch in one transaction, for pushes whose decision reads or writes state of its own: the
/// handlers decide on the transaction, the events are stored with their replies and effects, and
/// the handlers write what they decided for the pushes that were new.
async fn store_in_transaction(
    txn: &deadpool_postgres::Client,
    dispatcher: &Dispatcher,
    pushes: &[Push<'_>],
    mode: &HandlerMode,
) -> Result<HashMap<String, Stored>, BatchError> {
    let keys: Vec<&str> = pushes.iter().map(|p| p.key).collect();
    // Retries stored before are not decided again; BEGIN and this read share a round trip.
    let (begin, before) = tokio::join!(txn.batch_execute("BEGIN"), list_replies(txn, &keys));
    begin?;
    let before: HashSet<String> = before?.into_iter().map(|(key, _)| key).collect();
    let new: Vec<Push<'_>> = pushes.iter().copied().filter(|p| !before.contains(p.key)).collect();

    let stored = match mode {
        HandlerMode::Batch => decide_store_write(txn, dispatcher, &new).await?,
        HandlerMode::OneByOne { skip } => {
            let mut stored = HashMap::with_capacity(new.len());
            for push in &new {
                let one = std::slice::from_ref(push);
                let found = if skip.contains(push.key) {
                    store_undecided(txn, one).await?
                } else {
                    decide_store_write(txn, dispatcher, one).await?
                };
                stored.extend(found);
            }
            stored
        }
    };
    let mut stored = stored;
    let known: Vec<&str> = keys.iter().copied().filter(|key| !stored.contains_key(*key)).collect();
    for (key, reply) in list_replies(txn, &known).await? {
        stored.insert(key, Stored { reply: (!reply.is_empty()).then_some(reply), first_time: false });
    }
    txn.batch_execute("COMMIT").await?;
    Ok(stored)
}

/// Decides `new` with every handler on `txn`, stores it, and writes what was decided for the
/// pushes that were stored. Keys missing from the answer were refused as replays, or stored by
/// another transaction meanwhile (the caller looks them up).
async fn decide_store_write(
    txn: &deadpool_postgres::Client,
    dispatcher: &Dispatcher,
    new: &[Push<'_>],
) -> Result<HashMap<String, Stored>, BatchError> {
    if new.is_empty() {
        return Ok(HashMap::new());
    }
    let messages: Vec<Received<'_>> = new.iter().map(|p| p.received).collect();
    let on_error = |(handler, error): (&'static str, HandlerError)| BatchError::Handler {
        dedupe_key: new[0].key.to_owned(),
        handler,
        error,
    };
    let decision = dispatcher.decide_in_transaction(txn, &messages).await.map_err(on_error)?;
    let decided: Vec<(Push<'_>, Combined)> = new.iter().copied().zip(decision.combined.iter().cloned()).collect();
    let xml = render(&decided);
    let mut events = new_events(&decided, &xml);
    // The handlers read the state these decisions rest on inside this transaction.
    for event in &mut events {
        event.no_quiz_session_since = None;
    }
    let found = insert_in_transaction(txn, &events).await?;
    let inserted: Vec<bool> = new.iter().map(|p| found.get(p.key) == Some(&Outcome::Inserted)).collect();
    dispatcher.write(txn, &messages, decision, &inserted).await.map_err(on_error)?;
    let mut stored = HashMap::with_capacity(new.len());
    for (((push, _), xml), inserted) in decided.iter().zip(xml).zip(inserted) {
        if inserted {
            stored.insert(push.key.to_owned(), Stored { reply: xml, first_time: true });
        }
    }
    Ok(stored)
}

/// [`insert_new_events`] for the transaction lane: the state its decisions rest on was read in
/// this transaction, so they carry no assumption that could make the statement write nothing.
async fn insert_in_transaction(
    txn: &deadpool_postgres::Client,
    events: &[NewEvent<'_, Message>],
) -> Result<HashMap<String, Outcome>, BatchError> {
    debug_assert!(events.iter().all(|e| e.no_quiz_session_since.is_none()));
    match insert_new_events(txn, events, None).await? {
        Inserted::Done(found) => Ok(found),
        Inserted::Redecide => unreachable!("no assumption was passed"),
    }
}

/// Stores pushes with no handler's decision (one whose handler failed): answered `success`.
async fn store_undecided(
    txn: &deadpool_postgres::Client,
    pushes: &[Push<'_>],
) -> Result<HashMap<String, Stored>, BatchError> {
    let decided: Vec<(Push<'_>, Combined)> = pushes.iter().map(|p| (*p, Combined::default())).collect();
    let events = new_events(&decided, &[None]);
    let found = insert_in_transaction(txn, &events).await?;
    Ok(found
        .into_iter()
        .filter(|(_, outcome)| *outcome == Outcome::Inserted)
        .map(|(key, _)| (key, Stored { reply: None, first_time: true }))
        .collect())
}
