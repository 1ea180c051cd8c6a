//! The dispatcher: where later features (rules, quizzes, self-service commands) plug in to act on
//! a push and choose the passive reply. Handlers run inside the transaction that stores the push,
//! so what they write and the push itself commit together, and a retry never runs them again.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use deadpool_postgres::Client;

use crate::domain::account::AccountId;
use crate::wechat::message::Message;
use crate::wechat::reply::Reply;

/// A push and the account whose callback URL it came to: a batch may hold several accounts'
/// pushes, and the same openid means a different person in each.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub account: AccountId,
    pub message: &'a Message,
}

impl std::ops::Deref for Received<'_> {
    type Target = Message;
    fn deref(&self) -> &Message {
        self.message
    }
}

/// What a handler may fail with; the push is still stored and answered with `success`.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// The future a handler returns: one entry per message, `Some` to reply.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Option<Reply>>, HandlerError>> + Send + 'a>>;

/// What a handler read ahead for a batch ([`Handler::prefetch`]), handed back to its `handle`.
pub type Prefetched = Box<dyn Any + Send + Sync>;

/// The future of [`Handler::prefetch`].
pub type PrefetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Prefetched, HandlerError>> + Send + 'a>>;

/// Acts on newly received pushes, a batch at a time, on a connection inside the transaction that
/// stores them, so a busy account costs a few set-based
/// statements per batch rather than a few per push.
///
/// A handler must not call WeChat's API (the callback has 5 s and WeChat retries anything slow):
/// slow work goes into the outbox or a job written through `txn`.
pub trait Handler: Send + Sync {
    /// Short name for logs.
    fn name(&self) -> &'static str;
    /// Reads the handler needs for every batch. They go out on the connection together with the
    /// batch's first statements (pipelined), so they cost no round trip of their own; what they
    /// return reaches [`Handler::handle`] as `prefetched`.
    /// `accounts` are the accounts of the batch's pushes, sorted and without repeats.
    fn prefetch<'a>(&'a self, _txn: &'a Client, _accounts: &'a [AccountId]) -> Option<PrefetchFuture<'a>> {
        None
    }
    /// Acts on `messages` (in arrival order; each is new, never a retry) and returns one entry
    /// per message: `Some(reply)` to answer it. `prefetched` is what [`Handler::prefetch`] read
    /// for this batch, or `None` when it was not run (the handler then reads for itself).
    fn handle<'a>(
        &'a self,
        txn: &'a Client,
        messages: &'a [Received<'a>],
        prefetched: Option<&'a (dyn Any + Send + Sync)>,
    ) -> HandlerFuture<'a>;
}

/// What every handler read ahead for one batch.
#[derive(Default)]
pub struct BatchContext(Vec<Option<Prefetched>>);

/// Runs the registered handlers in order until one replies.
#[derive(Clone, Default)]
pub struct Dispatcher {
    handlers: Vec<Arc<dyn Handler>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.handlers.iter().map(|h| h.name())).finish()
    }
}

impl Dispatcher {
    /// Adds a handler after those already registered.
    #[must_use]
    pub fn with(mut self, handler: impl Handler + 'static) -> Self {
        self.handlers.push(Arc::new(handler));
        self
    }

    /// True when no handler is registered, so dispatch can be skipped entirely.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// Runs every handler's [`Handler::prefetch`] on `txn`; poll it together with the batch's
    /// first statements.
    ///
    /// # Errors
    /// The first prefetch that failed.
    pub async fn prefetch(&self, txn: &Client, accounts: &[AccountId]) -> Result<BatchContext, HandlerError> {
        let reads = self.handlers.iter().map(|handler| async move {
            match handler.prefetch(txn, accounts) {
                Some(read) => read.await.map(Some),
                None => Ok(None),
            }
        });
        Ok(BatchContext(futures_util::future::try_join_all(reads).await?))
    }

    /// Per message, the reply of the first handler that gives one (`None`: answer `success`).
    ///
    /// # Errors
    /// The first handler error; the caller rolls back what handlers wrote.
    pub async fn dispatch(
        &self,
        txn: &Client,
        messages: &[Received<'_>],
        context: &BatchContext,
    ) -> Result<Vec<Option<Reply>>, HandlerError> {
        let mut replies: Vec<Option<Reply>> = vec![None; messages.len()];
        for (i, handler) in self.handlers.iter().enumerate() {
            let prefetched = context.0.get(i).and_then(Option::as_deref);
            let answers = handler.handle(txn, messages, prefetched).await?;
            for (slot, answer) in replies.iter_mut().zip(answers) {
                if slot.is_none() {
                    *slot = answer;
                }
            }
        }
        Ok(replies)
    }
}
