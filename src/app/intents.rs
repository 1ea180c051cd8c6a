//! Intent tags (issue 21, point 4) for the console and the tagging engine: the operator's intents
//! (each gives a tag under `意图/`), labelling and passing over messages in the 待标注 queue,
//! keyword seeding, training with cross-validated figures, and the classifier the engine tags
//! with. The learning itself is `domain::intent`; nothing here calls WeChat.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};

use deadpool_postgres::{GenericClient, Pool};
use serde::{Deserialize, Serialize};

use crate::app::tagging::{TagRequest, TaggingError, create_tag_in};
use crate::domain::account::AccountId;
use crate::domain::intent::tokenize::normalize;
use crate::domain::intent::{
    Classifier, CvError, Example, OTHER, Source, ThresholdError, Thresholds, cross_validate, decide, seed_examples,
};
use crate::domain::job::{Job, TrainIntents};
use crate::domain::rule::Trigger;
use crate::domain::tag::TagPath;
use crate::store;
use crate::store::intents::{IntentRow, NewExample};

/// The first level of every intent's tag: `意图/咨询价格`.
pub const TAG_ROOT: &str = "意图";
/// How many of the latest text messages the queue (and keyword seeding) looks at.
pub const LOOKBACK: i64 = 2_000;
/// Messages the queue shows at once.
pub const QUEUE_SIZE: usize = 20;
/// Folds of the cross-validation shown in the console.
pub const CV_FOLDS: usize = 5;
/// Keywords an intent keeps at most, and their length.
const MAX_KEYWORDS: usize = 50;
const MAX_KEYWORD_CHARS: usize = 20;

/// Why an intent operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error("意图名称不能为空：请写一个简短的名字，例如「咨询价格」")]
    EmptyName,
    #[error("「{OTHER}」表示不属于任何意图，不能用作意图名称，请换一个名字")]
    ReservedName,
    #[error("意图名称「{name}」不能用作标签名：{reason}")]
    BadName { name: String, reason: String },
    #[error("已经有意图「{0}」了，请换一个名字，或在列表里修改它")]
    Exists(String),
    #[error("关键词最多 {MAX_KEYWORDS} 个、每个不超过 {MAX_KEYWORD_CHARS} 个字，请删减一些")]
    TooManyKeywords,
    #[error("{0}")]
    Threshold(#[from] ThresholdError),
    #[error("没有这个意图，可能已被删除：请刷新页面")]
    NoSuchIntent,
    #[error("没有意图「{0}」：请先新建这个意图，或刷新页面")]
    UnknownIntent(String),
    #[error("请选择这条留言属于哪个意图（都不是就选「其他」）")]
    NoIntentChosen,
    #[error("找不到这条留言（可能发送者的个人信息已被删除）：请刷新页面")]
    NoSuchMessage,
    #[error("标签「{0}」是动态标签（按条件自动计算），不能同时做意图标签：请换一个意图名称")]
    DynamicTag(String),
    #[error("{0}")]
    Tagging(#[from] TaggingError),
    #[error("数据库暂时不可用，请稍后重试")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("数据库暂时不可用，请稍后重试")]
    Query(#[from] tokio_postgres::Error),
    #[error("训练意外中断，请稍后重试")]
    Join(#[from] tokio::task::JoinError),
}

/// Splits what an operator typed into keywords: by commas (either width), 、, spaces or lines.
///
/// # Errors
/// More than [`MAX_KEYWORDS`], or one longer than [`MAX_KEYWORD_CHARS`].
pub fn parse_keywords(raw: &str) -> Result<Vec<String>, IntentError> {
    let mut seen = HashSet::new();
    let keywords: Vec<String> = raw
        .split(|c: char| matches!(c, ',' | '，' | '、' | ';' | '；') || c.is_whitespace())
        .map(str::trim)
        .filter(|k| !k.is_empty() && seen.insert(normalize(k)))
        .map(str::to_owned)
        .collect();
    if keywords.len() > MAX_KEYWORDS || keywords.iter().any(|k| k.chars().count() > MAX_KEYWORD_CHARS) {
        return Err(IntentError::TooManyKeywords);
    }
    Ok(keywords)
}

/// Adds an intent, creating its tag `意图/{name}` (mirrored on WeChat when `wechat`, within its
/// limit) unless the account has it; a dynamic tag of that path is refused.
///
/// # Errors
/// A bad or taken name, a threshold outside (0, 1], the tag limits, or the database.
pub async fn create_intent(
    pool: &Pool,
    account: AccountId,
    name: &str,
    keywords: &[String],
    threshold: f64,
    wechat: bool,
    actor: &str,
) -> Result<IntentRow, IntentError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(IntentError::EmptyName);
    }
    if name == OTHER {
        return Err(IntentError::ReservedName);
    }
    let path = TagPath::parse(&format!("{TAG_ROOT}/{name}"))
        .map_err(|e| IntentError::BadName { name: name.to_owned(), reason: e.to_string() })?;
    Thresholds::new(threshold)?;
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let tag = match store::tags::get_tag_by_path(&txn, account, &path).await? {
        // Refreshes of its condition would take back what the model gives.
        Some(tag) if tag.when_expr.is_some() => return Err(IntentError::DynamicTag(tag.path)),
        Some(tag) => tag,
        None => {
            let request = TagRequest {
                path: path.clone(),
                description: format!("模型从消息推测的意图「{name}」（不是粉丝自己说的，可能有误）"),
                sensitive: false,
                wechat,
                when_expr: None,
            };
            create_tag_in(&txn, account, &request, actor).await?
        }
    };
    let Some(id) = store::intents::insert_intent(&txn, account, name, tag.id, threshold, keywords, actor).await? else {
        return Err(IntentError::Exists(name.to_owned()));
    };
    queue_training(&txn, account, actor).await?;
    txn.commit().await?;
    Ok(IntentRow {
        id,
        name: name.to_owned(),
        tag_id: tag.id,
        tag_path: tag.path,
        threshold,
        keywords: keywords.to_vec(),
    })
}

/// Changes an intent's threshold and keywords.
///
/// # Errors
/// No such intent, a threshold outside (0, 1], or the database.
pub async fn update_intent(
    pool: &Pool,
    account: AccountId,
    id: i64,
    threshold: f64,
    keywords: &[String],
    actor: &str,
) -> Result<(), IntentError> {
    Thresholds::new(threshold)?;
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    if !store::intents::update_intent(&txn, account, id, threshold, keywords).await? {
        return Err(IntentError::NoSuchIntent);
    }
    // The figures shown were cross-validated at the old threshold.
    queue_training(&txn, account, actor).await?;
    txn.commit().await?;
    Ok(())
}

/// Deletes an intent (its tag and the followers carrying it stay); the model is trained again
/// without it. Returns its name.
///
/// # Errors
/// No such intent, or the database.
pub async fn delete_intent(pool: &Pool, account: AccountId, id: i64, actor: &str) -> Result<String, IntentError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let name = store::intents::delete_intent(&txn, account, id).await?.ok_or(IntentError::NoSuchIntent)?;
    queue_training(&txn, account, actor).await?;
    txn.commit().await?;
    Ok(name)
}

/// An operator's label (`None`: 其他) for the account's text message `event`; the model is
/// trained again. The text and its sender come from the stored message, never from the form.
///
/// # Errors
/// An intent the account does not have, a message it does not have, or the database.
pub async fn label(
    pool: &Pool,
    account: AccountId,
    event: i64,
    intent: Option<&str>,
    actor: &str,
) -> Result<(), IntentError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let message = store::intents::text_event(&txn, account, event).await?.ok_or(IntentError::NoSuchMessage)?;
    if let Some(intent) = intent {
        let intents = store::intents::list_intents(&txn, account).await?;
        if !intents.iter().any(|i| i.name == intent) {
            return Err(IntentError::UnknownIntent(intent.to_owned()));
        }
    }
    let normalized = normalize(&message.content);
    let example = NewExample {
        text: &message.content,
        normalized: &normalized,
        intent,
        openid: Some(&message.openid),
        by: actor,
    };
    store::intents::label(&txn, account, &example).await?;
    queue_training(&txn, account, actor).await?;
    txn.commit().await?;
    Ok(())
}

/// Passes over the account's text message `event`: the queue does not show it again.
///
/// # Errors
/// A message the account does not have, or the database.
pub async fn skip(pool: &Pool, account: AccountId, event: i64) -> Result<(), IntentError> {
    let client = pool.get().await?;
    let message = store::intents::text_event(&client, account, event).await?.ok_or(IntentError::NoSuchMessage)?;
    store::intents::skip(&client, account, &normalize(&message.content), Some(&message.openid)).await?;
    Ok(())
}

/// Weak examples from the latest messages that contain an intent's keywords, or the key of a
/// keyword rule that gives the intent's tag. Returns how many were new.
///
/// # Errors
/// The database.
pub async fn seed_from_keywords(pool: &Pool, account: AccountId, actor: &str) -> Result<u64, IntentError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let intents = store::intents::list_intents(&txn, account).await?;
    let by_tag: HashMap<&str, &str> = intents.iter().map(|i| (i.tag_path.as_str(), i.name.as_str())).collect();
    let mut rules: Vec<(String, String)> =
        intents.iter().flat_map(|i| i.keywords.iter().map(|k| (k.clone(), i.name.clone()))).collect();
    for rule in store::rules::list_rules(&txn, account).await? {
        if rule.spec.on != Trigger::Keyword {
            continue;
        }
        for path in &rule.spec.add {
            if let Some(intent) = by_tag.get(path.as_str()) {
                rules.push((rule.spec.key.clone(), (*intent).to_owned()));
            }
        }
    }
    if rules.is_empty() {
        return Ok(0);
    }
    let messages: Vec<store::intents::TextMessage> = store::intents::recent_texts(&txn, account, LOOKBACK)
        .await?
        .into_iter()
        .filter(|m| worth_labelling(&m.content))
        .collect();
    let texts: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
    let sender: HashMap<&str, &str> = messages.iter().map(|m| (m.content.as_str(), m.openid.as_str())).collect();
    let seeded = seed_examples(&rules, &texts);
    let normalized: Vec<String> = seeded.iter().map(|e| normalize(&e.text)).collect();
    let new: Vec<NewExample<'_>> = seeded
        .iter()
        .zip(&normalized)
        .map(|(example, normalized)| NewExample {
            text: &example.text,
            normalized,
            intent: example.intent.as_deref(),
            openid: sender.get(example.text.as_str()).copied(),
            by: actor,
        })
        .collect();
    let added = store::intents::seed(&txn, account, &new).await?;
    if added > 0 {
        queue_training(&txn, account, actor).await?;
    }
    txn.commit().await?;
    Ok(added)
}

/// Queues a training run unless one is already waiting. Returns whether it queued one.
///
/// # Errors
/// The database.
pub async fn queue_training(
    client: &impl GenericClient,
    account: AccountId,
    who: &str,
) -> Result<bool, tokio_postgres::Error> {
    store::jobs::enqueue_unless_waiting(
        client,
        account,
        &Job::TrainIntents(TrainIntents { requested_by: who.to_owned() }),
    )
    .await
}

/// Cross-validated figures of one intent, as kept with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentFigures {
    pub intent: String,
    pub support: usize,
    pub predicted: usize,
    pub correct: usize,
    /// The figures in the operator's words, with what to do.
    pub summary: String,
}

impl IntentFigures {
    /// Of the messages it would have tagged, the share labelled with it, as a percentage.
    #[must_use]
    pub fn precision(&self) -> String {
        share(self.correct, self.predicted)
    }

    /// Of the messages labelled with it, the share it would have tagged, as a percentage.
    #[must_use]
    pub fn recall(&self) -> String {
        share(self.correct, self.support)
    }
}

fn share(part: usize, whole: usize) -> String {
    if whole == 0 { "—".to_owned() } else { format!("{:.0}%", part as f64 * 100.0 / whole as f64) }
}

/// What a training run keeps beside the model (`intent_models.figures`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Why there are no figures (too few labels), in Chinese.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    #[serde(default)]
    pub folds: usize,
    #[serde(default)]
    pub scored: usize,
    #[serde(default)]
    pub intents: Vec<IntentFigures>,
}

/// What a training run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    /// Examples it learned from (keyword guesses included).
    pub examples: usize,
    /// False when no intent had an example: no model, no tagging.
    pub has_model: bool,
    pub figures: Figures,
}

/// Trains the account's classifier on every labelled message, cross-validates it, and stores
/// both; the tagging engine picks the new model up with the configuration.
///
/// # Errors
/// The database.
pub async fn train(pool: &Pool, account: AccountId, who: &str) -> Result<Trained, IntentError> {
    let mut client = pool.get().await?;
    let client = client.transaction().await?;
    store::intents::lock_training(&client, account).await?;
    let intents = store::intents::list_intents(&client, account).await?;
    let known: HashSet<&str> = intents.iter().map(|i| i.name.as_str()).collect();
    let examples: Vec<Example> = store::intents::list_examples(&client, account)
        .await?
        .into_iter()
        // A label of an intent deleted since is "none of the current ones".
        .map(|row| Example {
            intent: row.intent.filter(|i| known.contains(i.as_str())),
            text: row.text,
            source: if row.source == "operator" { Source::Operator } else { Source::Keyword },
        })
        .collect();
    let thresholds = thresholds_of(&intents);
    let count = examples.len();
    let learnable = examples.iter().any(|e| e.intent.is_some());
    let (model, figures) = tokio::task::spawn_blocking(move || {
        if !learnable {
            let figures = Figures {
                missing: Some(
                    "还没有任何意图的示例：请在待标注里标注消息，或填写意图的关键词后点「用关键词生成示例」".to_owned(),
                ),
                ..Figures::default()
            };
            return (None, figures);
        }
        let model = Classifier::train(&examples);
        (Some(model), figures_of(&examples, &thresholds))
    })
    .await?;
    let stored = model.as_ref().and_then(|m| serde_json::to_value(m).ok());
    let figures_json = serde_json::to_value(&figures).unwrap_or_default();
    store::intents::save_model(&client, account, stored.as_ref(), &figures_json, count as i32, who).await?;
    client.commit().await?;
    Ok(Trained { examples: count, has_model: stored.is_some(), figures })
}

fn thresholds_of(intents: &[IntentRow]) -> Thresholds {
    let mut thresholds = Thresholds::default();
    for intent in intents {
        // The table's CHECK keeps thresholds in (0, 1]; a refused one keeps the default.
        let _ = thresholds.set(&intent.name, intent.threshold);
    }
    thresholds
}

fn figures_of(examples: &[Example], thresholds: &Thresholds) -> Figures {
    match cross_validate(examples, CV_FOLDS, 21, thresholds) {
        Ok(report) => Figures {
            missing: None,
            folds: report.folds,
            scored: report.scored,
            intents: report
                .intents
                .iter()
                .map(|s| IntentFigures {
                    intent: s.intent.clone(),
                    support: s.support,
                    predicted: s.predicted,
                    correct: s.correct,
                    summary: s.summary_zh(),
                })
                .collect(),
        },
        Err(error @ (CvError::TooFewExamples { .. } | CvError::TooFewFolds)) => {
            Figures { missing: Some(error.to_string()), ..Figures::default() }
        }
    }
}

/// The classifier the tagging engine tags with, and what each of its intents gives.
#[derive(Debug)]
pub struct IntentModel {
    pub classifier: Arc<Classifier>,
    pub thresholds: Thresholds,
    /// Intent name → tag id, for the intents the account still has.
    pub tags: HashMap<String, i64>,
}

impl IntentModel {
    /// The tag a confident reading of `text` gives, with the intent's name.
    #[must_use]
    pub fn tag_for(&self, text: &str) -> Option<(i64, &str)> {
        let prediction = self.classifier.predict(text);
        let intent = decide(&prediction, &self.thresholds)?;
        self.tags.get_key_value(intent).map(|(name, id)| (*id, name.as_str()))
    }
}

/// The account's classifier with its intents' thresholds and tags; `None` without a model.
///
/// # Errors
/// The database. A stored model that no longer loads is logged and treated as none.
pub async fn load_model(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Option<IntentModel>, tokio_postgres::Error> {
    load_model_cached(client, account, &ClassifierCache::default()).await
}

/// Parsed classifiers by account, with the instant each was trained: the tagging engine reloads
/// its configuration on every rule or tag change, and a real account's model is hundreds of KiB
/// of JSON, so it is parsed again only when a new one was trained.
#[derive(Debug, Default)]
pub struct ClassifierCache(RwLock<HashMap<AccountId, TrainedClassifier>>);

/// A parsed classifier and when it was trained.
type TrainedClassifier = (DateTime<Utc>, Arc<Classifier>);

/// [`load_model`], parsing the classifier only when `cache` does not hold the current one.
///
/// # Errors
/// The database.
pub async fn load_model_cached(
    client: &impl GenericClient,
    account: AccountId,
    cache: &ClassifierCache,
) -> Result<Option<IntentModel>, tokio_postgres::Error> {
    let Some(trained_at) = store::intents::model_trained_at(client, account).await? else { return Ok(None) };
    let held = cache.0.read().unwrap_or_else(PoisonError::into_inner).get(&account).cloned();
    let classifier = match held {
        Some((at, classifier)) if at == trained_at => classifier,
        _ => {
            let Some(json) = store::intents::model(client, account).await?.and_then(|row| row.model) else {
                return Ok(None);
            };
            let classifier: Classifier = match serde_json::from_value(json) {
                Ok(classifier) => classifier,
                Err(error) => {
                    tracing::error!(%account, %error, "the stored intent model does not load; no intent tagging until it is trained again");
                    return Ok(None);
                }
            };
            let classifier = Arc::new(classifier);
            cache
                .0
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(account, (trained_at, Arc::clone(&classifier)));
            classifier
        }
    };
    let intents = store::intents::list_intents(client, account).await?;
    let thresholds = thresholds_of(&intents);
    let tags = intents.into_iter().map(|i| (i.name, i.tag_id)).collect();
    Ok(Some(IntentModel { classifier, thresholds, tags }))
}

/// Whether a message is something to learn an intent from: not a follower command, not a
/// one-character answer (a quiz's `A`).
#[must_use]
pub fn worth_labelling(content: &str) -> bool {
    let trimmed = content.trim();
    trimmed.chars().count() >= 2 && !crate::domain::follower::COMMANDS.contains(&trimmed)
}

/// One message of the 待标注 queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    /// The `events` row, which labelling names.
    pub event: i64,
    pub text: String,
    pub openid: String,
    pub occurred_at: DateTime<Utc>,
    /// The model's reading: its most likely intent (`None`: 其他) and how sure it is.
    pub guess: Option<(Option<String>, f64)>,
    /// The words behind the guess, strongest first.
    pub words: Vec<String>,
}

/// The 待标注 queue: of the latest [`LOOKBACK`] text messages, the distinct ones nobody labelled
/// or passed over, those the model is least sure of first (newest first while there is no model),
/// at most [`QUEUE_SIZE`]; and how many such messages there are in all.
///
/// # Errors
/// The database.
pub async fn queue(pool: &Pool, account: AccountId) -> Result<(Vec<QueueItem>, usize), IntentError> {
    let client = pool.get().await?;
    let settled: HashSet<String> = store::intents::settled_texts(&client, account).await?.into_iter().collect();
    let model = load_model(&client, account).await?;
    let mut seen = HashSet::new();
    let candidates: Vec<store::intents::TextMessage> = store::intents::recent_texts(&client, account, LOOKBACK)
        .await?
        .into_iter()
        .filter(|m| worth_labelling(&m.content))
        .filter(|m| {
            let normalized = normalize(&m.content);
            !settled.contains(&normalized) && seen.insert(normalized)
        })
        .collect();
    let total = candidates.len();
    let Some(model) = model else {
        let items = candidates
            .into_iter()
            .take(QUEUE_SIZE)
            .map(|m| QueueItem {
                event: m.id,
                text: m.content,
                openid: m.openid,
                occurred_at: m.occurred_at,
                guess: None,
                words: Vec::new(),
            })
            .collect();
        return Ok((items, total));
    };
    // Segmenting and scoring up to 2,000 messages is CPU work: off the request's thread.
    let classifier = Arc::clone(&model.classifier);
    let items = tokio::task::spawn_blocking(move || least_sure_first(&classifier, candidates)).await?;
    Ok((items, total))
}

fn least_sure_first(classifier: &Classifier, candidates: Vec<store::intents::TextMessage>) -> Vec<QueueItem> {
    let mut scored: Vec<(f64, usize, store::intents::TextMessage)> = candidates
        .into_iter()
        .enumerate()
        .map(|(recency, m)| (classifier.uncertainty(&m.content), recency, m))
        .collect();
    // Least sure first; among equals the newest.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(QUEUE_SIZE)
        .map(|(_, _, m)| {
            let prediction = classifier.predict(&m.content);
            let best = prediction.best.clone();
            let words = classifier
                .explain(&m.content, best.as_deref().unwrap_or(OTHER))
                .into_iter()
                .filter(|(_, weight)| *weight > 0.0)
                .take(3)
                .map(|(word, _)| word)
                .collect();
            QueueItem {
                event: m.id,
                text: m.content,
                openid: m.openid,
                occurred_at: m.occurred_at,
                guess: Some((best, prediction.confidence)),
                words,
            }
        })
        .collect()
}

/// The model's reading of one message, for the console's 试一试: the top intents with their
/// probabilities, the words behind the best one, and whether it would tag.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub intents: Vec<(String, f64)>,
    pub other: f64,
    pub words: Vec<(String, f64)>,
    pub tags: Option<String>,
}

/// Reads `text` with the account's current model; `None` without one.
///
/// # Errors
/// The database.
pub async fn read_message(pool: &Pool, account: AccountId, text: &str) -> Result<Option<Reading>, IntentError> {
    let client = pool.get().await?;
    let Some(model) = load_model(&client, account).await? else { return Ok(None) };
    let prediction = model.classifier.predict(text);
    let best = prediction.best.clone().unwrap_or_else(|| OTHER.to_owned());
    let words = model.classifier.explain(text, &best).into_iter().take(5).collect();
    let tags = model.tag_for(text).map(|(_, name)| name.to_owned());
    Ok(Some(Reading { intents: prediction.intents, other: prediction.other, words, tags }))
}
