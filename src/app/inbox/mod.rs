//! The inbox: every accepted push is stored durably, acted on once, and answered with the reply
//! chosen the first time. Concurrent pushes are group-committed: writer tasks take whatever is
//! waiting, decide their replies, store them with their replies and effects (one statement, one
//! fsync for the lot) and wake each request once its row is committed. The event consumer
//! ([`consumer`]) then applies what they decided, off the pushes' own transactions.

mod activity;
pub mod consumer;
pub mod dispatch;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};

pub use dispatch::{
    Combined, DecideFuture, Decided, Dispatcher, Handler, HandlerError, HandlerFuture, InMemory, InTransaction,
    Received,
};

use crate::domain::account::AccountId;
use crate::wechat::message::Message;

/// How many pushes one transaction stores at most.
const MAX_BATCH: usize = 512;
/// Writer tasks per inbox: one commits a batch while the next gathers.
pub const WRITERS: usize = 2;
/// Pushes waiting beyond this are refused at once rather than queued past WeChat's patience.
const QUEUE_DEPTH: usize = 16_384;

/// Slack for the clocks of the instances (which check a push's timestamp) against the database's
/// (which stamps and expires its signature).
pub const SIGNATURE_CLOCK_MARGIN: Duration = Duration::from_secs(5 * 60);
/// How long a signature stays claimed when no replay window is set: nothing else bounds the table.
pub const SIGNATURE_RETENTION_WITHOUT_WINDOW: Duration = Duration::from_secs(86_400);

/// How long a plaintext signature stays claimed. A push is accepted while its timestamp is within
/// the window either side of the instance's clock, so its signature can come back up to twice the
/// window after it was first seen; the margin covers an instance's clock being off the database's,
/// so a signature is never forgotten while its timestamp would still pass. Without a window nothing
/// makes a captured signature stale: it is remembered for a day, then replayable.
pub fn signature_retention(replay_window: Option<Duration>) -> Duration {
    replay_window.map_or(SIGNATURE_RETENTION_WITHOUT_WINDOW, |window| 2 * window + SIGNATURE_CLOCK_MARGIN)
}

/// Why a push could not be stored; the callback answers 503 (WeChat retries), or 400/403 for a
/// push that is itself at fault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InboxError {
    #[error("the inbox is full")]
    Overloaded,
    #[error("the inbox is shut down")]
    Closed,
    #[error("storing the push failed")]
    Store(#[source] Arc<StoreFailure>),
    /// The push failed on its own, tried alone, with an error tied to its data (a byte
    /// PostgreSQL cannot store, a value out of range): bad input that a retry cannot fix.
    #[error("the push cannot be stored")]
    Unstorable(#[source] Arc<StoreFailure>),
    /// A plaintext push under a signature that already carried another push.
    #[error("the signature was already used for another push")]
    Replayed,
    #[error("storing the push took longer than {0:?}")]
    Timeout(Duration),
}

/// The database error behind a failed batch, shared by every request in it.
#[derive(Debug, thiserror::Error)]
pub enum StoreFailure {
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
}

/// What the callback sends back for a stored push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Plaintext passive-reply XML, or `None` for `success`.
    pub reply: Option<String>,
    /// False when this push is a retry of one stored before.
    pub first_time: bool,
}

struct Submission {
    account: AccountId,
    message: Message,
    dedupe_key: String,
    /// See [`Inbox::submit`].
    signature: Option<Vec<u8>>,
    done: oneshot::Sender<Result<Stored, InboxError>>,
}

/// Handle used by the callback to hand a push over; cheap to clone.
#[derive(Clone, Debug)]
pub struct Inbox {
    queue: mpsc::Sender<Submission>,
    pool: Pool,
}

impl Inbox {
    /// Starts the writer tasks on the current runtime. They stop once every `Inbox` clone is dropped
    /// and the queue is drained (the HTTP server waits for in-flight requests, which wait for
    /// their batch).
    ///
    /// `signature_retention` is how long a plaintext push's signature stays claimed: past it, the
    /// push's timestamp is outside the replay window.
    ///
    /// `consumer` is notified whenever a batch stored something new.
    pub fn start(
        pool: Pool,
        dispatcher: Dispatcher,
        signature_retention: Duration,
        consumer: Arc<tokio::sync::Notify>,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        for _ in 0..WRITERS {
            let writer = writer::Writer {
                pool: pool.clone(),
                dispatcher: dispatcher.clone(),
                signature_retention,
                consumer: Arc::clone(&consumer),
            };
            tokio::spawn(writer.run(Arc::clone(&receiver)));
        }
        Self { queue, pool }
    }

    /// Claims a plaintext signature that came with no push (the URL check's), as storing a push
    /// under it would.
    ///
    /// # Errors
    /// The database could not be reached or refused the write.
    pub async fn claim_signature(&self, signature: &[u8]) -> Result<(), StoreFailure> {
        let client = self.pool.get().await?;
        crate::store::events::insert_signature(&client, signature).await?;
        Ok(())
    }

    /// Stores `message`, pushed to `account`'s callback, (or recognises it as a retry) and
    /// returns the reply to send.
    ///
    /// `signature` is the plaintext-mode request signature (`None` for encrypted pushes): the
    /// first push stored under it owns it, and another push under it is refused
    /// ([`InboxError::Replayed`]) while a retry of the same push still gets its stored reply.
    ///
    /// # Errors
    /// The push could not be stored within `deadline`, was refused as a replay, or cannot be
    /// stored at all; nothing was acknowledged to WeChat.
    pub async fn submit(
        &self,
        account: AccountId,
        message: Message,
        signature: Option<Vec<u8>>,
        deadline: Duration,
    ) -> Result<Stored, InboxError> {
        let (done, result) = oneshot::channel();
        let dedupe_key = account.scoped_dedupe_key(&message.dedupe_key());
        self.queue.try_send(Submission { account, message, dedupe_key, signature, done }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => InboxError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => InboxError::Closed,
        })?;
        match tokio::time::timeout(deadline, result).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(InboxError::Closed),
            Err(_) => Err(InboxError::Timeout(deadline)),
        }
    }
}
