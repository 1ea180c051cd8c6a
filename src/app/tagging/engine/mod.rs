//! The tagging engine: the inbox handler that turns what followers do into tags, replies and quiz
//! steps. It decides in memory (rules, quizzes and the tag index come from [`config`]), reads at
//! most two indexed queries per batch (quiz sessions, tags for self-service commands), and writes
//! its effects set-based in the push's own transaction, then re-evaluates the dynamic tags of the
//! followers whose clicks, subscribes or tags can change a `when`. WeChat learns through the tag outbox.

pub mod config;

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use deadpool_postgres::Client;

use crate::app::audience;
use crate::app::inbox::{Handler, HandlerError, HandlerFuture, PrefetchFuture, Prefetched, Received};
use crate::domain::account::AccountId;
use crate::domain::clock::Clock;
use crate::domain::quiz::{self, QuizProgress, QuizStep};
use crate::domain::rule::Action;
use crate::domain::tag::TagPath;
use crate::store;
use crate::store::tags::TagChange;
use crate::wechat::message::{Inbound, Message};
use crate::wechat::reply::Reply;

use config::{ConfigCache, Loaded, PerAccount};

/// The follower's command to list their tags (CONTRACT.md §3).
pub const MY_TAGS: &str = "我的标签";
/// The follower's command to remove all their tags (PIPL: a self-service way to delete).
pub const DELETE_MY_TAGS: &str = "删除我的标签";

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
}

impl Handler for TaggingEngine {
    fn name(&self) -> &'static str {
        "tagging_engine"
    }

    /// The configuration check (one read of `config_version`) rides along with the batch's
    /// first statements.
    fn prefetch<'a>(&'a self, txn: &'a Client, accounts: &'a [AccountId]) -> Option<PrefetchFuture<'a>> {
        Some(Box::pin(async move {
            let loaded = self.config.current(txn, accounts).await.map_err(|e| Box::new(e) as HandlerError)?;
            Ok(Box::new(loaded) as Prefetched)
        }))
    }

    /// Each account's pushes are decided against that account's configuration, as a batch of
    /// their own; the replies come back in the order of `messages`.
    fn handle<'a>(
        &'a self,
        txn: &'a Client,
        messages: &'a [Received<'a>],
        prefetched: Option<&'a (dyn Any + Send + Sync)>,
    ) -> HandlerFuture<'a> {
        Box::pin(async move {
            let mut by_account: std::collections::BTreeMap<AccountId, Vec<usize>> = std::collections::BTreeMap::new();
            for (i, received) in messages.iter().enumerate() {
                by_account.entry(received.account).or_default().push(i);
            }
            let prefetched = prefetched.and_then(|p| p.downcast_ref::<PerAccount>());
            let loaded: PerAccount = match prefetched {
                Some(loaded) if by_account.keys().all(|a| loaded.contains_key(a)) => loaded.clone(),
                _ => {
                    let accounts: Vec<AccountId> = by_account.keys().copied().collect();
                    self.config.current(txn, &accounts).await.map_err(|e| Box::new(e) as HandlerError)?
                }
            };
            let mut sessions =
                self.read_sessions(txn, messages, &loaded).await.map_err(|e| Box::new(e) as HandlerError)?;
            let mut replies: Vec<Option<Reply>> = vec![None; messages.len()];
            for (account, indexes) in &by_account {
                let Some(config) = loaded.get(account) else { continue };
                let batch: Vec<&Message> = indexes.iter().map(|&i| messages[i].message).collect();
                let own = sessions.remove(account).unwrap_or_default();
                let answers = self
                    .handle_batch(txn, *account, config, &batch, own)
                    .await
                    .map_err(|e| Box::new(e) as HandlerError)?;
                for (&i, answer) in indexes.iter().zip(answers) {
                    replies[i] = answer;
                }
            }
            Ok(replies)
        })
    }
}

/// What one batch does, gathered while deciding and written at the end.
#[derive(Default)]
struct Effects {
    changes: Vec<TagChange>,
    /// `None` ends the follower's session.
    sessions: HashMap<String, Option<(String, QuizProgress)>>,
    finished: Vec<(String, String, Vec<TagPath>, QuizProgress)>,
    subscribed: Vec<String>,
    unsubscribed: Vec<String>,
}

/// The quiz sessions of a batch's followers, per account: one statement for all accounts.
type SessionsByAccount = HashMap<AccountId, HashMap<String, (String, QuizProgress)>>;

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
        let fresh_after = chrono::Utc::now() - chrono::Duration::from_std(self.quiz_expiry).unwrap_or_default();
        let mut by_account = SessionsByAccount::new();
        for ((account, openid), session) in store::quizzes::list_sessions_across(txn, &followers, fresh_after).await? {
            by_account.entry(account).or_default().insert(openid, (session.quiz_id, session.progress));
        }
        Ok(by_account)
    }

    #[tracing::instrument(skip_all, fields(batch.size = messages.len()))]
    async fn handle_batch(
        &self,
        txn: &Client,
        account: AccountId,
        loaded: &Loaded,
        messages: &[&Message],
        mut sessions: HashMap<String, (String, QuizProgress)>,
    ) -> Result<Vec<Option<Reply>>, tokio_postgres::Error> {
        // Tags are read only for followers who asked about them.
        let asking: Vec<&str> = messages
            .iter()
            .filter(|m| matches!(&m.body, Inbound::Text { content, .. } if is_command(content)))
            .map(|m| m.from_user.as_str())
            .collect();
        let mut current_tags: HashMap<String, BTreeSet<i64>> = HashMap::new();
        if !asking.is_empty() {
            for openid in &asking {
                let ids = store::tags::list_follower_tag_ids(txn, account, openid).await?;
                current_tags.insert((*openid).to_owned(), ids.into_iter().collect());
            }
        }

        let mut effects = Effects::default();
        let mut replies = Vec::with_capacity(messages.len());
        for message in messages {
            let reply = decide(loaded, message, &mut sessions, &mut current_tags, &mut effects);
            replies.push(reply.map(|content| Reply::Text { content }));
        }

        store::tags::apply_tag_changes(txn, &effects.changes).await?;
        if !loaded.dynamic.is_empty() {
            self.reevaluate_dynamic(txn, account, loaded, messages, &effects.changes).await?;
        }
        let left: Vec<&str> = effects.unsubscribed.iter().map(String::as_str).collect();
        store::tags::forget_wechat_state(txn, account, &left).await?;
        let back: Vec<&str> = effects.subscribed.iter().map(String::as_str).collect();
        store::tags::requeue_for_returning(txn, account, &back).await?;
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
        Ok(replies)
    }
}

impl TaggingEngine {
    /// Re-evaluates the dynamic tags of the followers whose pushes or tag changes can change a
    /// `when`: clicks (tags naming that key), subscribes (every tag: orders may predate the
    /// follower) and the tags rules and quizzes just gave or took.
    async fn reevaluate_dynamic(
        &self,
        txn: &Client,
        account: crate::domain::account::AccountId,
        loaded: &Loaded,
        messages: &[&Message],
        changes: &[TagChange],
    ) -> Result<(), tokio_postgres::Error> {
        let mut triggers = audience::Triggers::default();
        let mut affected: Vec<&str> = Vec::new();
        for message in messages {
            match &message.body {
                Inbound::Click { key } => triggers.clicked.push(key.as_str()),
                Inbound::Subscribe { .. } => triggers.subscribed = true,
                _ => continue,
            }
            affected.push(message.from_user.as_str());
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

fn is_command(content: &str) -> bool {
    matches!(content.trim(), MY_TAGS | DELETE_MY_TAGS)
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
        Inbound::Unsubscribe => {
            effects.unsubscribed.push(openid.to_owned());
            if sessions.remove(openid).is_some() {
                effects.sessions.insert(openid.to_owned(), None);
            }
            return None;
        }
        Inbound::Subscribe { .. } => effects.subscribed.push(openid.to_owned()),
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
                    return Some(if ids.is_empty() {
                        "你目前没有标签，无需删除。".to_owned()
                    } else {
                        format!("已删除你的全部 {} 个标签（含微信端标签）。", ids.len())
                    });
                }
                _ => {}
            }
        }
        _ => {}
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
    let mut paths: Vec<&str> = ids.into_iter().flatten().filter_map(|id| by_id.get(id).copied()).collect();
    paths.sort_unstable();
    if paths.is_empty() {
        "你目前还没有标签。".to_owned()
    } else {
        format!("你的标签：{}\n回复「{DELETE_MY_TAGS}」可删除全部标签。", paths.join("、"))
    }
}
