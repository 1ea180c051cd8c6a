//! The dispatcher: where features (rules, quizzes, self-service commands, send results) plug in
//! to act on a push and choose its passive reply.
//!
//! A handler lives through three moments of a push:
//! 1. **Before it is stored**, it decides the reply and the effects: from memory alone when it
//!    can ([`Handler::decide`]), which lets the push be stored by one statement; or, when the
//!    decision reads or writes state of its own (a quiz session, the tags a follower asks
//!    about), inside a transaction ([`Handler::decide_in_transaction`], then
//!    [`Handler::write`] once the pushes are stored).
//! 2. **With it**: the reply and the effects go into the push's own row, so a retry gets the same
//!    reply and nothing is decided twice.
//! 3. **After it**: the event consumer hands each stored event, in id order and exactly once, to
//!    [`Handler::apply`], which carries out the effects (tags, the outbox, dynamic tags).

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use deadpool_postgres::Client;

use crate::domain::account::AccountId;
use crate::store::event_cursor::StoredEvent;
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

/// What a handler decided for one push.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decided {
    pub reply: Option<Reply>,
    /// Handed back to [`Handler::apply`] by the event consumer; `None`: nothing to apply.
    pub effects: Option<serde_json::Value>,
    /// The decision holds only if the follower has no quiz session touched after this time (a
    /// text that would otherwise be an answer): the push is stored only if the database agrees.
    pub no_quiz_session_since: Option<chrono::DateTime<chrono::Utc>>,
}

/// A decision made from memory ([`Handler::decide`]).
#[derive(Debug, Clone, PartialEq)]
pub enum InMemory {
    /// One answer per push, valid while `config_version` (when given) is still current.
    Decided { config_version: Option<i64>, answers: Vec<Decided> },
    /// At least one push needs the database to be decided.
    NeedsTransaction,
}

/// A decision made inside the batch's transaction ([`Handler::decide_in_transaction`]).
pub struct InTransaction {
    pub answers: Vec<Decided>,
    /// What [`Handler::write`] writes once the pushes are stored.
    pub writes: Box<dyn Any + Send + Sync>,
}

impl InTransaction {
    /// Answers with nothing to write afterwards.
    pub fn answers_only(answers: Vec<Decided>) -> Self {
        Self { answers, writes: Box::new(()) }
    }
}

/// The future of [`Handler::decide_in_transaction`].
pub type DecideFuture<'a> = Pin<Box<dyn Future<Output = Result<InTransaction, HandlerError>> + Send + 'a>>;

/// The future of [`Handler::write`] and [`Handler::apply`].
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send + 'a>>;

/// Acts on pushes, a batch at a time (see the module's documentation for when each method runs).
///
/// A handler must not call WeChat's API (the callback has 5 s and WeChat retries anything slow):
/// slow work goes into the outbox or a job.
pub trait Handler: Send + Sync {
    /// Short name for logs, and the key of its entry in an event's `effects`.
    fn name(&self) -> &'static str;

    /// Decides `messages` (in arrival order, none known to be a retry) from memory alone, or
    /// says the batch needs the database.
    fn decide(&self, messages: &[Received<'_>]) -> InMemory {
        InMemory::Decided { config_version: None, answers: vec![Decided::default(); messages.len()] }
    }

    /// Decides `messages` on `txn`, the transaction that will store them, reading (and locking)
    /// what the decision depends on.
    fn decide_in_transaction<'a>(&'a self, _txn: &'a Client, messages: &'a [Received<'a>]) -> DecideFuture<'a> {
        let answers = vec![Decided::default(); messages.len()];
        Box::pin(async move { Ok(InTransaction::answers_only(answers)) })
    }

    /// Writes what [`Handler::decide_in_transaction`] decided, for the pushes that were stored
    /// (`stored[i]`: `messages[i]` is new, not a retry).
    fn write<'a>(
        &'a self,
        _txn: &'a Client,
        _messages: &'a [Received<'a>],
        _writes: Box<dyn Any + Send + Sync>,
        _stored: &'a [bool],
    ) -> HandlerFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    /// Applies stored events (in id order, each once) inside the event consumer's transaction.
    /// `effects` holds, per event, this handler's entry of its `effects`.
    fn apply<'a>(
        &'a self,
        _txn: &'a Client,
        _events: &'a [StoredEvent],
        _effects: &'a [Option<&'a serde_json::Value>],
    ) -> HandlerFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    /// Forgets the configuration decisions from memory were made against (the store refused one
    /// made under an older version), so the next decision reads it again.
    fn forget_config(&self) {}
}

/// Every handler's decision for one push, combined: the first reply, each handler's effects
/// under its name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Combined {
    pub reply: Option<Reply>,
    pub effects: Option<serde_json::Value>,
    pub no_quiz_session_since: Option<chrono::DateTime<chrono::Utc>>,
}

/// Runs the registered handlers in order; the first reply wins.
#[derive(Clone, Default)]
pub struct Dispatcher {
    handlers: Vec<Arc<dyn Handler>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.handlers.iter().map(|h| h.name())).finish()
    }
}

/// The decisions of a whole batch from memory: per push, and the configuration they assume.
pub struct MemoryDecision {
    pub config_version: Option<i64>,
    pub combined: Vec<Combined>,
}

/// What the handlers decided in a transaction, and what they write once the pushes are stored.
pub struct TransactionDecision {
    pub combined: Vec<Combined>,
    writes: Vec<Box<dyn Any + Send + Sync>>,
}

impl Dispatcher {
    /// Adds a handler after those already registered.
    #[must_use]
    pub fn with(mut self, handler: impl Handler + 'static) -> Self {
        self.handlers.push(Arc::new(handler));
        self
    }

    /// True when no handler is registered.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// Every handler's decision from memory, or `None` when one of them needs the database.
    pub fn decide(&self, messages: &[Received<'_>]) -> Option<MemoryDecision> {
        let mut config_version = None;
        let mut per_handler = Vec::with_capacity(self.handlers.len());
        for handler in &self.handlers {
            match handler.decide(messages) {
                InMemory::Decided { config_version: version, answers } => {
                    match (config_version, version) {
                        (Some(a), Some(b)) if a != b => return None,
                        (None, Some(b)) => config_version = Some(b),
                        _ => {}
                    }
                    per_handler.push(answers);
                }
                InMemory::NeedsTransaction => return None,
            }
        }
        Some(MemoryDecision { config_version, combined: self.combine(messages.len(), per_handler) })
    }

    /// Every handler's decision on `txn`.
    ///
    /// # Errors
    /// The first handler that failed, and its name.
    pub async fn decide_in_transaction(
        &self,
        txn: &Client,
        messages: &[Received<'_>],
    ) -> Result<TransactionDecision, (&'static str, HandlerError)> {
        let mut per_handler = Vec::with_capacity(self.handlers.len());
        let mut writes = Vec::with_capacity(self.handlers.len());
        for handler in &self.handlers {
            let decided = handler.decide_in_transaction(txn, messages).await.map_err(|e| (handler.name(), e))?;
            per_handler.push(decided.answers);
            writes.push(decided.writes);
        }
        Ok(TransactionDecision { combined: self.combine(messages.len(), per_handler), writes })
    }

    /// Runs every handler's [`Handler::write`] for what `decision` decided.
    ///
    /// # Errors
    /// The first handler that failed, and its name.
    pub async fn write(
        &self,
        txn: &Client,
        messages: &[Received<'_>],
        decision: TransactionDecision,
        stored: &[bool],
    ) -> Result<(), (&'static str, HandlerError)> {
        for (handler, writes) in self.handlers.iter().zip(decision.writes) {
            handler.write(txn, messages, writes, stored).await.map_err(|e| (handler.name(), e))?;
        }
        Ok(())
    }

    /// Hands stored events to every handler's [`Handler::apply`], each with its own effects.
    ///
    /// # Errors
    /// The first handler that failed, and its name.
    pub async fn apply(&self, txn: &Client, events: &[StoredEvent]) -> Result<(), (&'static str, HandlerError)> {
        for handler in &self.handlers {
            let name = handler.name();
            let effects: Vec<Option<&serde_json::Value>> =
                events.iter().map(|e| e.effects.as_ref().and_then(|all| all.get(name))).collect();
            handler.apply(txn, events, &effects).await.map_err(|e| (name, e))?;
        }
        Ok(())
    }

    /// Makes every handler read its configuration again before its next decision.
    pub fn forget_config(&self) {
        for handler in &self.handlers {
            handler.forget_config();
        }
    }

    fn combine(&self, len: usize, per_handler: Vec<Vec<Decided>>) -> Vec<Combined> {
        let mut combined = vec![Combined::default(); len];
        for (handler, answers) in self.handlers.iter().zip(per_handler) {
            for (slot, answer) in combined.iter_mut().zip(answers) {
                if slot.reply.is_none() {
                    slot.reply = answer.reply;
                }
                slot.no_quiz_session_since = match (slot.no_quiz_session_since, answer.no_quiz_session_since) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if let Some(effects) = answer.effects {
                    let all = slot.effects.get_or_insert_with(|| serde_json::json!({}));
                    if let Some(map) = all.as_object_mut() {
                        map.insert(handler.name().to_owned(), effects);
                    }
                }
            }
        }
        combined
    }
}
