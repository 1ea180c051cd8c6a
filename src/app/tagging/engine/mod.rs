//! The tagging engine: the inbox handler that turns what followers do into tags, replies and quiz
//! steps.
//!
//! It decides before a push is stored. Most pushes (clicks, keywords, scans, subscribes) are
//! decided from memory: rules, quizzes and the tag index come from [`config`], and the push is
//! stored by one statement that checks the configuration was still current. A push whose decision
//! reads state is decided inside a transaction instead: a self-service command (which reads the
//! follower's tags, including changes not applied yet) and a push that starts a quiz or may
//! answer one (which reads and writes the quiz session). Tag changes are never written with the
//! push: they ride in the event's `effects`, and the event consumer applies them
//! ([`Handler::apply`]) with the outbox rows and the dynamic tags they touch, usually within
//! milliseconds. WeChat learns through the tag outbox.

pub mod config;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Client;

use crate::app::audience;
use crate::app::inbox::{
    DecideFuture, Decided, Handler, HandlerError, HandlerFuture, InMemory, InTransaction, Received,
};
use crate::domain::account::AccountId;
use crate::domain::clock::Clock;
use crate::domain::quiz::{self, QuizProgress, QuizStep};
use crate::domain::rule::Action;
use crate::domain::tag::TagPath;
use crate::store;
use crate::store::event_cursor::StoredEvent;
use crate::store::tags::TagChange;
use crate::wechat::message::{Inbound, Message};
use crate::wechat::reply::Reply;

use config::{ConfigCache, Loaded, PerAccount};

pub use crate::domain::follower::{ALLOW_GUESSES, DELETE_MY_TAGS, MY_TAGS};

/// The inbox handler for rules, quizzes and self-service commands.
#[derive(Debug)]
pub struct TaggingEngine {
    config: ConfigCache,
    /// A quiz untouched this long is abandoned.
    quiz_expiry: Duration,
    /// The time dynamic tags are evaluated at.
    clock: Clock,
}

impl TaggingEngine {
    pub fn new(quiz_expiry: Duration, clock: Clock) -> Self {
        Self { config: ConfigCache::default(), quiz_expiry, clock }
    }

    /// Sessions touched before this are abandoned.
    fn quiz_fresh_after(&self) -> DateTime<Utc> {
        Utc::now() - chrono::Duration::from_std(self.quiz_expiry).unwrap_or_default()
    }
}

/// What one push decided, beyond its reply.
#[derive(Default)]
struct Effects {
    changes: Vec<TagChange>,
    /// `None` ends the follower's session.
    sessions: HashMap<String, Option<(String, QuizProgress)>>,
    finished: Vec<(String, String, Vec<TagPath>, QuizProgress)>,
    /// Followers who refused (true) or allowed again (false) being profiled.
    profiling: HashMap<String, bool>,
}

/// A tag change as an event's `effects` carry it: `[tag id, added, source]` (the follower is the
/// event's sender).
type StoredChange = (i64, bool, String);

fn encode_changes(changes: &[TagChange]) -> Option<serde_json::Value> {
    if changes.is_empty() {
        return None;
    }
    let stored: Vec<StoredChange> = changes.iter().map(|c| (c.tag_id, c.add, c.source.clone())).collect();
    serde_json::to_value(stored).ok()
}

fn decode_changes(openid: &str, effects: &serde_json::Value) -> Vec<TagChange> {
    let stored: Vec<StoredChange> = serde_json::from_value(effects.clone()).unwrap_or_else(|error| {
        tracing::error!(%error, "an event's tag changes cannot be read; skipping them");
        Vec::new()
    });
    stored
        .into_iter()
        .map(|(tag_id, add, source)| TagChange { openid: openid.to_owned(), tag_id, add, source })
        .collect()
}

/// Whether deciding `message` reads or writes state beyond the configuration.
fn needs_state(loaded: &Loaded, message: &Message) -> bool {
    if let Inbound::Text { content, .. } = &message.body {
        if is_command(content) {
            return true;
        }
    }
    action_of(message)
        .is_some_and(|action| loaded.rules.matching(action).iter().any(|rule| rule.spec.start_quiz.is_some()))
}

/// What a batch decided in its transaction, written once its pushes are stored.
struct SessionWrites {
    /// Per push: its account and what it did to quiz sessions.
    per_push: Vec<(AccountId, Effects)>,
}

impl Handler for TaggingEngine {
    fn name(&self) -> &'static str {
        "tagging_engine"
    }

    fn decide(&self, messages: &[Received<'_>]) -> InMemory {
        let mut accounts: Vec<AccountId> = messages.iter().map(|r| r.account).collect();
        accounts.sort_unstable();
        accounts.dedup();
        let Some((version, loaded)) = self.config.cached(&accounts) else { return InMemory::NeedsTransaction };
        let fresh_after = self.quiz_fresh_after();
        let mut answers = Vec::with_capacity(messages.len());
        for received in messages {
            let Some(config) = loaded.get(&received.account) else { return InMemory::NeedsTransaction };
            if needs_state(config, received.message) {
                return InMemory::NeedsTransaction;
            }
            let mut effects = Effects::default();
            let reply = decide(config, received.message, &mut HashMap::new(), &mut HashMap::new(), &mut effects);
            let may_answer_quiz = matches!(received.message.body, Inbound::Text { .. }) && !config.quizzes.is_empty();
            answers.push(Decided {
                reply: reply.map(|content| Reply::Text { content }),
                effects: encode_changes(&effects.changes),
                no_quiz_session_since: may_answer_quiz.then_some(fresh_after),
            });
        }
        InMemory::Decided { config_version: Some(version), answers }
    }

    /// Each account's pushes are decided against that account's configuration, with the quiz
    /// sessions of their senders and, for those who asked about their tags, those tags with the
    /// changes not applied yet.
    fn decide_in_transaction<'a>(&'a self, txn: &'a Client, messages: &'a [Received<'a>]) -> DecideFuture<'a> {
        Box::pin(async move {
            let mut accounts: Vec<AccountId> = messages.iter().map(|r| r.account).collect();
            accounts.sort_unstable();
            accounts.dedup();
            let loaded = self.config.current(txn, &accounts).await.map_err(boxed)?;
            let mut sessions = self.read_sessions(txn, messages, &loaded).await.map_err(boxed)?;
            let mut current_tags = read_asked_tags(txn, messages).await.map_err(boxed)?;
            let mut answers = Vec::with_capacity(messages.len());
            let mut per_push = Vec::with_capacity(messages.len());
            for received in messages {
                let account = received.account;
                let Some(config) = loaded.get(&account) else {
                    answers.push(Decided::default());
                    per_push.push((account, Effects::default()));
                    continue;
                };
                let mut effects = Effects::default();
                let reply = decide(
                    config,
                    received.message,
                    sessions.entry(account).or_default(),
                    current_tags.entry(account).or_default(),
                    &mut effects,
                );
                answers.push(Decided {
                    reply: reply.map(|content| Reply::Text { content }),
                    effects: encode_changes(&effects.changes),
                    no_quiz_session_since: None,
                });
                per_push.push((account, effects));
            }
            Ok(InTransaction { answers, writes: Box::new(SessionWrites { per_push }) })
        })
    }

    fn write<'a>(
        &'a self,
        txn: &'a Client,
        _messages: &'a [Received<'a>],
        writes: Box<dyn Any + Send + Sync>,
        stored: &'a [bool],
    ) -> HandlerFuture<'a> {
        Box::pin(async move {
            let Ok(writes) = writes.downcast::<SessionWrites>() else { return Ok(()) };
            let mut by_account: BTreeMap<AccountId, Effects> = BTreeMap::new();
            for ((account, effects), stored) in writes.per_push.into_iter().zip(stored) {
                if !*stored {
                    continue;
                }
                let into = by_account.entry(account).or_default();
                into.sessions.extend(effects.sessions);
                into.finished.extend(effects.finished);
                into.profiling.extend(effects.profiling);
            }
            for (account, effects) in by_account {
                write_sessions(txn, account, &effects).await.map_err(boxed)?;
            }
            Ok(())
        })
    }

    fn apply<'a>(
        &'a self,
        txn: &'a Client,
        events: &'a [StoredEvent],
        effects: &'a [Option<&'a serde_json::Value>],
    ) -> HandlerFuture<'a> {
        Box::pin(async move {
            let mut by_account: BTreeMap<AccountId, Vec<(&StoredEvent, Option<&serde_json::Value>)>> = BTreeMap::new();
            for (event, effects) in events.iter().zip(effects) {
                by_account.entry(event.account).or_default().push((event, *effects));
            }
            let accounts: Vec<AccountId> = by_account.keys().copied().collect();
            let loaded = self.config.current(txn, &accounts).await.map_err(boxed)?;
            for (account, events) in by_account {
                let Some(config) = loaded.get(&account) else { continue };
                self.apply_account(txn, account, config, &events).await.map_err(boxed)?;
            }
            Ok(())
        })
    }

    fn forget_config(&self) {
        self.config.forget();
    }
}

fn boxed(error: tokio_postgres::Error) -> HandlerError {
    Box::new(error)
}

/// The quiz sessions of a batch's followers, per account: one statement for all accounts.
type SessionsByAccount = HashMap<AccountId, HashMap<String, (String, QuizProgress)>>;

/// The tags of followers who asked about them, per account, with the changes the consumer has
/// not applied yet laid over, in order: a tag earned a moment ago is listed, and deleted too.
async fn read_asked_tags(
    txn: &Client,
    messages: &[Received<'_>],
) -> Result<HashMap<AccountId, HashMap<String, BTreeSet<i64>>>, tokio_postgres::Error> {
    let mut asking: Vec<(AccountId, &str)> = messages
        .iter()
        .filter(|r| matches!(&r.message.body, Inbound::Text { content, .. } if is_command(content)))
        .map(|r| (r.account, r.message.from_user.as_str()))
        .collect();
    asking.sort_unstable();
    asking.dedup();
    if !asking.is_empty() {
        // Otherwise a pass committing between the two reads below would hide its events from both.
        store::event_cursor::hold_off_consumer(txn, store::event_cursor::TAGGING).await?;
    }
    let mut tags: HashMap<AccountId, HashMap<String, BTreeSet<i64>>> = HashMap::new();
    for (account, openid) in asking {
        let mut ids: BTreeSet<i64> =
            store::tags::list_follower_tag_ids(txn, account, openid).await?.into_iter().collect();
        let pending =
            store::event_cursor::pending_effects(txn, store::event_cursor::TAGGING, account, &[openid]).await?;
        for (_, effects) in pending {
            let Some(changes) = effects.get(ENGINE) else { continue };
            for change in decode_changes(openid, changes) {
                if change.add {
                    ids.insert(change.tag_id);
                } else {
                    ids.remove(&change.tag_id);
                }
            }
        }
        tags.entry(account).or_default().insert(openid.to_owned(), ids);
    }
    Ok(tags)
}

/// The engine's name, under which its entry of an event's `effects` is kept.
const ENGINE: &str = "tagging_engine";

/// Writes what a batch did to one account's quiz sessions, and the quizzes it finished.
async fn write_sessions(txn: &Client, account: AccountId, effects: &Effects) -> Result<(), tokio_postgres::Error> {
    let (ended, ongoing): (Vec<_>, Vec<_>) = effects.sessions.iter().partition(|(_, s)| s.is_none());
    let ended: Vec<&str> = ended.into_iter().map(|(openid, _)| openid.as_str()).collect();
    store::quizzes::delete_sessions(txn, account, &ended).await?;
    let ongoing: Vec<(&str, &str, &QuizProgress)> = ongoing
        .into_iter()
        .filter_map(|(openid, s)| s.as_ref().map(|(quiz, progress)| (openid.as_str(), quiz.as_str(), progress)))
        .collect();
    store::quizzes::upsert_sessions(txn, account, &ongoing).await?;
    let answers: Vec<(&str, &str, Vec<&str>, &QuizProgress)> = effects
        .finished
        .iter()
        .map(|(openid, quiz, tags, progress)| {
            (openid.as_str(), quiz.as_str(), tags.iter().map(TagPath::as_str).collect(), progress)
        })
        .collect();
    store::quizzes::insert_answers(txn, account, &answers).await?;
    for refused in [true, false] {
        let openids: Vec<&str> =
            effects.profiling.iter().filter(|(_, r)| **r == refused).map(|(openid, _)| openid.as_str()).collect();
        if store::followers::set_profiling_refused(txn, account, &openids, refused).await? > 0 {
            // Their scores are gone from the table: the in-memory indexes must reload them.
            store::audience_feed::bump_epoch(txn, account).await?;
        }
    }
    Ok(())
}

impl TaggingEngine {
    /// Reads the open quiz sessions of every follower in the batch whose account has quizzes.
    async fn read_sessions(
        &self,
        txn: &Client,
        messages: &[Received<'_>],
        loaded: &PerAccount,
    ) -> Result<SessionsByAccount, tokio_postgres::Error> {
        let mut followers: Vec<(AccountId, &str)> = messages
            .iter()
            .filter(|r| loaded.get(&r.account).is_some_and(|config| !config.quizzes.is_empty()))
            .map(|r| (r.account, r.message.from_user.as_str()))
            .collect();
        followers.sort_unstable();
        followers.dedup();
        if followers.is_empty() {
            return Ok(HashMap::new());
        }
        let mut by_account = SessionsByAccount::new();
        for ((account, openid), session) in
            store::quizzes::list_sessions_across(txn, &followers, self.quiz_fresh_after()).await?
        {
            by_account.entry(account).or_default().insert(openid, (session.quiz_id, session.progress));
        }
        Ok(by_account)
    }

    /// Applies one account's stored events: their tag changes (and the outbox rows), the dynamic
    /// tags their clicks, subscribes and changes can move, WeChat's state of followers who left,
    /// and the tags of followers who came back.
    async fn apply_account(
        &self,
        txn: &Client,
        account: AccountId,
        loaded: &Loaded,
        events: &[(&StoredEvent, Option<&serde_json::Value>)],
    ) -> Result<(), tokio_postgres::Error> {
        let mut changes: Vec<TagChange> = events
            .iter()
            .filter_map(|(event, effects)| effects.map(|effects| decode_changes(&event.openid, effects)))
            .flatten()
            .collect();
        drop_refused_guesses(txn, account, &mut changes).await?;
        store::tags::apply_tag_changes(txn, &changes).await?;
        if !loaded.dynamic.is_empty() {
            self.reevaluate_dynamic(txn, account, loaded, events, &changes).await?;
        }
        let left: Vec<&str> =
            events.iter().filter(|(e, _)| e.kind == "unsubscribe").map(|(e, _)| e.openid.as_str()).collect();
        store::tags::forget_wechat_state(txn, account, &left).await?;
        if !loaded.quizzes.is_empty() {
            let mut left_at: HashMap<&str, DateTime<Utc>> = HashMap::new();
            for (event, _) in events.iter().filter(|(e, _)| e.kind == "unsubscribe") {
                let at = left_at.entry(event.openid.as_str()).or_insert(event.received_at);
                *at = (*at).max(event.received_at);
            }
            let left_at: Vec<(&str, DateTime<Utc>)> = left_at.into_iter().collect();
            store::quizzes::delete_sessions_left_before(txn, account, &left_at).await?;
        }
        let back: Vec<&str> =
            events.iter().filter(|(e, _)| e.kind == "subscribe").map(|(e, _)| e.openid.as_str()).collect();
        store::tags::requeue_for_returning(txn, account, &back).await
    }

    /// Re-evaluates the dynamic tags of the followers whose pushes or tag changes can change a
    /// `when`: clicks (tags naming that key), messages, views and scans (tags reading
    /// `active(..)`), subscribes (every tag: orders may predate the follower) and the tags rules,
    /// quizzes and the intent model gave or took.
    async fn reevaluate_dynamic(
        &self,
        txn: &Client,
        account: AccountId,
        loaded: &Loaded,
        events: &[(&StoredEvent, Option<&serde_json::Value>)],
        changes: &[TagChange],
    ) -> Result<(), tokio_postgres::Error> {
        let mut triggers = audience::Triggers::default();
        let mut affected: Vec<&str> = Vec::new();
        for (event, _) in events {
            match (event.kind.as_str(), event.event_key.as_deref()) {
                ("click", Some(key)) => triggers.clicked.push(key),
                ("subscribe", _) => triggers.subscribed = true,
                (kind, _) if crate::domain::expr::INTERACTION_KINDS.contains(&kind) => triggers.interacted = true,
                _ => continue,
            }
            affected.push(event.openid.as_str());
        }
        if !changes.is_empty() {
            let paths: HashMap<i64, &str> = loaded.tags.iter().map(|(path, (id, _))| (*id, path.as_str())).collect();
            for change in changes {
                triggers.tagged.extend(paths.get(&change.tag_id));
                affected.push(change.openid.as_str());
            }
        }
        if affected.is_empty() {
            return Ok(());
        }
        affected.sort_unstable();
        affected.dedup();
        audience::reevaluate(txn, account, &loaded.dynamic, &affected, &triggers, self.clock.unix()).await?;
        Ok(())
    }
}

/// Removes the intent tags decided for followers who refused profiling (the decision was made
/// from memory, which does not know them; their refusal is stored with the command's push).
async fn drop_refused_guesses(
    txn: &Client,
    account: AccountId,
    changes: &mut Vec<TagChange>,
) -> Result<(), tokio_postgres::Error> {
    let mut guessed: Vec<&str> =
        changes.iter().filter(|c| c.source.starts_with(INTENT_SOURCE)).map(|c| c.openid.as_str()).collect();
    if guessed.is_empty() {
        return Ok(());
    }
    guessed.sort_unstable();
    guessed.dedup();
    let refused: BTreeSet<String> =
        store::followers::refusing_profiling(txn, account, &guessed).await?.into_iter().collect();
    changes.retain(|c| !(c.source.starts_with(INTENT_SOURCE) && refused.contains(&c.openid)));
    Ok(())
}

/// How a tag change given by the intent model names its source: `intent:<name>`.
const INTENT_SOURCE: &str = "intent:";

fn is_command(content: &str) -> bool {
    matches!(content.trim(), MY_TAGS | DELETE_MY_TAGS | ALLOW_GUESSES)
}

/// What rules see of a push.
fn action_of(message: &Message) -> Option<Action<'_>> {
    Some(match &message.body {
        Inbound::Click { key } => Action::Click(key),
        Inbound::View { url, .. } => Action::View(url),
        Inbound::Text { content, .. } => Action::Text(content),
        Inbound::Subscribe { scene, .. } => Action::Subscribe(scene.as_deref()),
        Inbound::Scan { scene, .. } => Action::Scan(scene),
        Inbound::Location { latitude, longitude, .. } | Inbound::LocationReport { latitude, longitude, .. } => {
            Action::Location { lat: *latitude, lng: *longitude }
        }
        _ => return None,
    })
}

/// Decides one push: its reply, and its effects added to `effects`.
fn decide(
    loaded: &Loaded,
    message: &Message,
    sessions: &mut HashMap<String, (String, QuizProgress)>,
    current_tags: &mut HashMap<String, BTreeSet<i64>>,
    effects: &mut Effects,
) -> Option<String> {
    let openid = message.from_user.as_str();
    match &message.body {
        // The consumer forgets WeChat's state of a follower who left, and ends their quiz.
        Inbound::Unsubscribe => return None,
        Inbound::Text { content, .. } => {
            if let Some((quiz_id, progress)) = sessions.get(openid).cloned() {
                if let Some(quiz) = loaded.quizzes.get(&quiz_id) {
                    return Some(answer_quiz(loaded, openid, &quiz_id, quiz, &progress, content, sessions, effects));
                }
            }
            match content.trim() {
                MY_TAGS => return Some(list_my_tags(loaded, current_tags.get(openid))),
                DELETE_MY_TAGS => {
                    let ids = current_tags.remove(openid).unwrap_or_default();
                    for tag_id in &ids {
                        effects.changes.push(TagChange {
                            openid: openid.to_owned(),
                            tag_id: *tag_id,
                            add: false,
                            source: "self_service".to_owned(),
                        });
                    }
                    current_tags.insert(openid.to_owned(), BTreeSet::new());
                    effects.profiling.insert(openid.to_owned(), true);
                    let deleted = if ids.is_empty() {
                        "你目前没有标签。".to_owned()
                    } else {
                        format!("已删除你的全部 {} 个标签（含微信端标签）。", ids.len())
                    };
                    return Some(format!(
                        "{deleted}系统也不再根据你的互动和留言推测你的意向（不再打推测标签、不再估计购买可能）。回复「{ALLOW_GUESSES}」可恢复。"
                    ));
                }
                ALLOW_GUESSES => {
                    effects.profiling.insert(openid.to_owned(), false);
                    return Some(format!(
                        "已恢复：系统会根据你的互动和留言推测你可能感兴趣的内容（只是估计）。回复「{DELETE_MY_TAGS}」可随时关闭并删除全部标签。"
                    ));
                }
                _ => {}
            }
        }
        _ => {}
    }
    if let (Inbound::Text { content, .. }, Some(model)) = (&message.body, &loaded.intents) {
        if crate::app::intents::worth_labelling(content) {
            if let Some((tag_id, intent)) = model.tag_for(content) {
                if let Some(tags) = current_tags.get_mut(openid) {
                    tags.insert(tag_id);
                }
                effects.changes.push(TagChange {
                    openid: openid.to_owned(),
                    tag_id,
                    add: true,
                    source: format!("{INTENT_SOURCE}{intent}"),
                });
            }
        }
    }
    let action = action_of(message)?;
    let mut reply: Option<String> = None;
    for rule in loaded.rules.matching(action) {
        let source = format!("rule:{}", rule.id);
        for (paths, add) in [(&rule.spec.add, true), (&rule.spec.remove, false)] {
            for path in paths {
                change_tag(loaded, openid, path, add, &source, current_tags, effects);
            }
        }
        if reply.is_none() {
            reply.clone_from(&rule.spec.reply);
        }
        if let Some(quiz_id) = &rule.spec.start_quiz {
            match loaded.quizzes.get(quiz_id) {
                Some(quiz) => {
                    let (progress, first) = quiz::start(quiz);
                    sessions.insert(openid.to_owned(), (quiz_id.clone(), progress.clone()));
                    effects.sessions.insert(openid.to_owned(), Some((quiz_id.clone(), progress)));
                    reply = Some(match reply {
                        Some(text) => format!("{text}\n{first}"),
                        None => first,
                    });
                }
                None => tracing::warn!(rule.id = rule.id, quiz.id = %quiz_id, "rule starts a quiz that does not exist"),
            }
        }
    }
    reply
}

fn change_tag(
    loaded: &Loaded,
    openid: &str,
    path: &TagPath,
    add: bool,
    source: &str,
    current_tags: &mut HashMap<String, BTreeSet<i64>>,
    effects: &mut Effects,
) {
    let Some(&(tag_id, _)) = loaded.tags.get(path.as_str()) else {
        tracing::warn!(tag.path = %path, "a rule or quiz names a tag that no longer exists");
        return;
    };
    if let Some(tags) = current_tags.get_mut(openid) {
        if add {
            tags.insert(tag_id);
        } else {
            tags.remove(&tag_id);
        }
    }
    effects.changes.push(TagChange { openid: openid.to_owned(), tag_id, add, source: source.to_owned() });
}

#[expect(clippy::too_many_arguments, reason = "one step of the batch's shared state")]
fn answer_quiz(
    loaded: &Loaded,
    openid: &str,
    quiz_id: &str,
    quiz: &quiz::QuizSpec,
    progress: &QuizProgress,
    content: &str,
    sessions: &mut HashMap<String, (String, QuizProgress)>,
    effects: &mut Effects,
) -> String {
    match quiz::answer(quiz, progress, content) {
        QuizStep::Next { progress, reply } => {
            sessions.insert(openid.to_owned(), (quiz_id.to_owned(), progress.clone()));
            effects.sessions.insert(openid.to_owned(), Some((quiz_id.to_owned(), progress)));
            reply
        }
        QuizStep::Reask { reply } => reply,
        QuizStep::Exited { reply } => {
            sessions.remove(openid);
            effects.sessions.insert(openid.to_owned(), None);
            reply
        }
        QuizStep::Finished { tags, reply, progress } => {
            sessions.remove(openid);
            effects.sessions.insert(openid.to_owned(), None);
            let source = format!("quiz:{quiz_id}");
            let mut untracked = HashMap::new();
            for path in &tags {
                change_tag(loaded, openid, path, true, &source, &mut untracked, effects);
            }
            effects.finished.push((openid.to_owned(), quiz_id.to_owned(), tags, progress));
            reply
        }
    }
}

fn list_my_tags(loaded: &Loaded, ids: Option<&BTreeSet<i64>>) -> String {
    let by_id: HashMap<i64, &str> = loaded.tags.iter().map(|(path, (id, _))| (*id, path.as_str())).collect();
    // Tags a prediction decides (a `when` reading `score(..)`, an intent) are named as guesses, not facts.
    let mut predicted: BTreeSet<i64> =
        loaded.dynamic.iter().filter(|t| !t.expr.score_models().is_empty()).map(|t| t.id).collect();
    // An intent tag is the model's reading of what they wrote, a guess too, and stays one after
    // its intent is deleted or the model is gone: the root 意图/ is where intents put their tags.
    let intent_root = format!("{}/", crate::app::intents::TAG_ROOT);
    predicted.extend(loaded.tags.iter().filter(|(path, _)| path.starts_with(&intent_root)).map(|(_, (id, _))| *id));
    // A dynamic tag that reads a guessed tag is a guess too (`"购买意向/高" AND orders(30d) = 0`).
    loop {
        let before = predicted.len();
        for tag in &loaded.dynamic {
            let reads_guess = tag
                .expr
                .tag_paths()
                .iter()
                .any(|path| loaded.tags.get(path.as_str()).is_some_and(|(id, _)| predicted.contains(id)));
            if reads_guess {
                predicted.insert(tag.id);
            }
        }
        if predicted.len() == before {
            break;
        }
    }
    let (mut guessed, mut known): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for id in ids.into_iter().flatten() {
        if let Some(path) = by_id.get(id) {
            if predicted.contains(id) { guessed.push(path) } else { known.push(path) }
        }
    }
    known.sort_unstable();
    guessed.sort_unstable();
    let mut lines = Vec::new();
    if !known.is_empty() {
        lines.push(format!("你的标签：{}", known.join("、")));
    }
    if !guessed.is_empty() {
        lines.push(format!("系统根据你近期的互动和留言推测的标签（只是估计，会随之更新）：{}", guessed.join("、")));
    }
    if lines.is_empty() {
        return "你目前还没有标签。".to_owned();
    }
    lines.push(format!("回复「{DELETE_MY_TAGS}」可删除全部标签。"));
    lines.join("\n")
}
