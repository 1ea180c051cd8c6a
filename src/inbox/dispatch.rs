//! The dispatcher: where later features (rules, quizzes, self-service commands) plug in to act on
//! a push and choose the passive reply. Handlers run inside the transaction that stores the push,
//! so what they write and the push itself commit together, and a retry never runs them again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use deadpool_postgres::Client;

use crate::wechat::message::Message;
use crate::wechat::reply::Reply;

/// What a handler may fail with; the push is still stored and answered with `success`.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// The future a handler returns: one entry per message, `Some` to reply.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Option<Reply>>, HandlerError>> + Send + 'a>>;

/// Acts on newly received pushes, a batch at a time, on a connection inside the transaction that
/// stores them, so a busy account costs a few set-based
/// statements per batch rather than a few per push.
///
/// A handler must not call WeChat's API (the callback has 5 s and WeChat retries anything slow):
/// slow work goes into the outbox or a job written through `txn`.
pub trait Handler: Send + Sync {
    /// Short name for logs.
    fn name(&self) -> &'static str;
    /// Acts on `messages` (in arrival order; each is new, never a retry) and returns one entry
    /// per message: `Some(reply)` to answer it.
    fn handle<'a>(&'a self, txn: &'a Client, messages: &'a [&'a Message]) -> HandlerFuture<'a>;
}

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

    /// Per message, the reply of the first handler that gives one (`None`: answer `success`).
    ///
    /// # Errors
    /// The first handler error; the caller rolls back what handlers wrote.
    pub async fn dispatch(&self, txn: &Client, messages: &[&Message]) -> Result<Vec<Option<Reply>>, HandlerError> {
        let mut replies: Vec<Option<Reply>> = vec![None; messages.len()];
        for handler in &self.handlers {
            let answers = handler.handle(txn, messages).await?;
            for (slot, answer) in replies.iter_mut().zip(answers) {
                if slot.is_none() {
                    *slot = answer;
                }
            }
        }
        Ok(replies)
    }
}
