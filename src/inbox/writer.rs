//! A writer task: takes every waiting push, stores the lot in one transaction, answers each.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::{Mutex, mpsc};

use super::activity::{follower_activity, occurred_at};
use super::{Dispatcher, HandlerError, InboxError, MAX_BATCH, StoreFailure, Stored, Submission};
use crate::store::events::{NewEvent, insert_new_events, list_replies, update_replies};
use crate::store::followers::upsert_followers;

/// How often a batch is tried again after a deadlock or serialization failure.
const DB_RETRIES: usize = 2;

pub(super) async fn run(pool: Pool, dispatcher: Dispatcher, receiver: Arc<Mutex<mpsc::Receiver<Submission>>>) {
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
        store_batch(&pool, &dispatcher, batch).await;
    }
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

#[tracing::instrument(skip_all, fields(batch.size = batch.len()))]
async fn store_batch(pool: &Pool, dispatcher: &Dispatcher, batch: Vec<Submission>) {
    let mut grouped: Grouped = BTreeMap::new();
    for submission in batch {
        grouped.entry(submission.dedupe_key.clone()).or_default().push(submission);
    }
    let mut without_handlers: HashSet<String> = HashSet::new();
    let mut db_failures = 0;
    let outcome = loop {
        match try_store(pool, dispatcher, &grouped, &without_handlers).await {
            Ok(stored) => break Ok(stored),
            Err(BatchError::Handler { dedupe_key, error }) => {
                // The push is still stored and answered; only what the handlers would have done is lost,
                // and it is recorded for an operator to see.
                tracing::error!(error = %error, event.dedupe_key = %dedupe_key, "a handler failed; replying success");
                without_handlers.insert(dedupe_key);
            }
            Err(BatchError::Store(failure)) if is_transient(&failure) && db_failures < DB_RETRIES => {
                db_failures += 1;
                tracing::warn!(error = %failure, "batch conflicted with another; trying again");
            }
            Err(BatchError::Store(failure)) => break Err(failure),
        }
    };
    match outcome {
        Ok(mut stored) => {
            for (key, submissions) in grouped {
                let first = stored.remove(&key).unwrap_or(Stored { reply: None, first_time: false });
                for (i, submission) in submissions.into_iter().enumerate() {
                    let answer = Stored { reply: first.reply.clone(), first_time: first.first_time && i == 0 };
                    // The request may have timed out and gone; nothing to do then.
                    let _ = submission.done.send(Ok(answer));
                }
            }
        }
        Err(failure) => {
            tracing::error!(error = %failure, "storing a batch of pushes failed");
            let failure = Arc::new(failure);
            for submission in grouped.into_values().flatten() {
                let _ = submission.done.send(Err(InboxError::Store(Arc::clone(&failure))));
            }
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

async fn try_store(
    pool: &Pool,
    dispatcher: &Dispatcher,
    grouped: &Grouped,
    without_handlers: &HashSet<String>,
) -> Result<HashMap<String, Stored>, BatchError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;

    let payloads: Vec<serde_json::Value> = grouped
        .values()
        .map(|subs| serde_json::to_value(&subs[0].message).unwrap_or(serde_json::Value::Null))
        .collect();
    let events: Vec<NewEvent<'_>> = grouped
        .iter()
        .zip(payloads)
        .map(|((key, subs), payload)| {
            let message = &subs[0].message;
            NewEvent {
                dedupe_key: key,
                openid: &message.from_user,
                kind: message.kind(),
                event_key: message.event_key(),
                occurred_at: occurred_at(message),
                payload,
            }
        })
        .collect();
    let inserted: HashSet<String> = insert_new_events(&txn, &events).await?.into_iter().collect();

    let mut stored: HashMap<String, Stored> = HashMap::with_capacity(grouped.len());
    let mut replies: Vec<(&str, String)> = Vec::new();
    for (key, subs) in grouped.iter().filter(|(key, _)| inserted.contains(*key)) {
        let message = &subs[0].message;
        let reply = if dispatcher.is_empty() || without_handlers.contains(key) {
            None
        } else {
            match dispatcher.dispatch(&txn, message).await {
                Ok(reply) => {
                    reply.map(|r| r.to_xml(&message.from_user, &message.to_user, chrono::Utc::now().timestamp()))
                }
                Err(error) => return Err(BatchError::Handler { dedupe_key: key.clone(), error }),
            }
        };
        if let Some(xml) = &reply {
            replies.push((key, xml.clone()));
        }
        stored.insert(key.clone(), Stored { reply, first_time: true });
    }
    let reply_refs: Vec<(&str, &str)> = replies.iter().map(|(k, r)| (*k, r.as_str())).collect();
    update_replies(&txn, &reply_refs).await?;

    let activity =
        follower_activity(grouped.iter().filter(|(key, _)| inserted.contains(*key)).map(|(_, subs)| &subs[0].message));
    upsert_followers(&txn, &activity).await?;

    let retried: Vec<&str> = grouped.keys().filter(|key| !inserted.contains(*key)).map(String::as_str).collect();
    for (key, reply) in list_replies(&txn, &retried).await? {
        stored.insert(key, Stored { reply: (!reply.is_empty()).then_some(reply), first_time: false });
    }
    txn.commit().await?;
    Ok(stored)
}
