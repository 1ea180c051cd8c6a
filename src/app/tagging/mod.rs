//! Tagging operations shared by the JSON API, playbooks and the admin pages: creating tags within
//! WeChat's limits, rules and quizzes whose tags exist, deleting tags, and erasing a follower.
//! Each runs in one transaction; none calls WeChat (the outbox and jobs do).
//!
//! The feature owns tags, rules and quizzes: these operations for the API, playbooks and pages,
//! and [`engine`], the inbox handler that applies rules and quizzes to what followers do.

pub mod engine;
mod quiz_removal;

pub use quiz_removal::{QuizRemoval, delete_quiz};

use deadpool_postgres::{GenericClient, Pool, Transaction};

use crate::domain::account::AccountId;
use crate::domain::job::{DeleteWechatTag, Job, RefreshDynamicTags, RenameWechatTag};
use crate::domain::quiz::QuizSpec;
use crate::domain::rule::RuleSpec;
use crate::domain::tag::TagPath;
use crate::store;
use crate::store::tags::{NewTag, TagChange, TagRow};

/// WeChat allows 100 tags per account (45056 beyond); its reserved 星标组 does not count.
pub const WECHAT_TAG_LIMIT: i64 = 100;
/// A local ceiling, far above what an operator can manage, against runaway scripts.
pub const LOCAL_TAG_LIMIT: i64 = 2_000;

/// Why a tagging operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum TaggingError {
    #[error("标签「{0}」已存在")]
    TagExists(String),
    #[error(
        "微信每个公众号最多 {WECHAT_TAG_LIMIT} 个标签，已经用完：请创建仅本地使用的标签（API 中 `\"wechat\": false`），人群和群发照样可以用它"
    )]
    WeChatTagLimit,
    #[error("tagcast 最多保存 {LOCAL_TAG_LIMIT} 个标签，已经用完：请删除不用的标签")]
    LocalTagLimit,
    #[error("{0}")]
    InvalidRule(#[source] crate::domain::rule::RuleError),
    #[error("没有测验「{0}」：请先创建这个测验")]
    UnknownQuiz(String),
    #[error("测验有问题：{}", .0.join("；"))]
    InvalidQuiz(Vec<String>),
    #[error("没有这个标签")]
    NoSuchTag,
    /// Deleting a sensitive tag and creating it again unmarked would be unmarking it.
    #[error("「{0}」是敏感标签，只有管理员可以删除（或先取消敏感）")]
    SensitiveTag(String),
    #[error("只有管理员可以把标签「{0}」标为敏感或取消敏感")]
    SensitivityAdminOnly(String),
    #[error("when 条件有误，{0}")]
    InvalidWhen(#[source] crate::domain::expr::ExprError),
    #[error("数据库暂时不可用，请稍后重试")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("数据库暂时不可用，请稍后重试")]
    Query(#[from] tokio_postgres::Error),
}

/// How many tags the account's WeChat has room for: 100 minus those made outside tagcast (seen
/// by `sync`).
pub async fn wechat_tag_capacity(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<i64, tokio_postgres::Error> {
    let unmanaged = store::tags::count_unmanaged_wechat_tags(client, account).await?;
    Ok(WECHAT_TAG_LIMIT - unmanaged)
}

/// What an operator asks for when creating a tag.
#[derive(Debug, Clone)]
pub struct TagRequest {
    pub path: TagPath,
    pub description: String,
    pub sensitive: bool,
    /// `false`: local-only. `true`: mirrored on WeChat (refused past WeChat's limit).
    pub wechat: bool,
    pub when_expr: Option<String>,
}

/// Creates a tag.
///
/// # Errors
/// [`TaggingError::TagExists`], the limits, or the database.
pub async fn create_tag(
    pool: &Pool,
    account: AccountId,
    request: &TagRequest,
    actor: &str,
) -> Result<TagRow, TaggingError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let row = create_tag_in(&txn, account, request, actor).await?;
    if row.sensitive {
        record_sensitivity(&txn, account, actor, &row, None).await?;
    }
    txn.commit().await?;
    Ok(row)
}

/// [`create_tag`] inside the caller's transaction (a playbook applies everything in one); the
/// caller audits a tag created sensitive ([`record_sensitivity`]).
///
/// # Errors
/// As [`create_tag`].
pub async fn create_tag_in(
    txn: &Transaction<'_>,
    account: AccountId,
    request: &TagRequest,
    actor: &str,
) -> Result<TagRow, TaggingError> {
    // One creator at a time, so two requests cannot both take WeChat's last slot.
    store::tags::lock_tags_for_create(txn).await?;
    let total = store::tags::count_tags(txn, account).await?;
    if total >= LOCAL_TAG_LIMIT {
        return Err(TaggingError::LocalTagLimit);
    }
    if request.wechat && store::tags::count_mirrored(txn, account).await? >= wechat_tag_capacity(txn, account).await? {
        return Err(match store::tags::tag_exists(txn, account, request.path.as_str()).await? {
            true => TaggingError::TagExists(request.path.to_string()),
            false => TaggingError::WeChatTagLimit,
        });
    }
    if let Some(when) = &request.when_expr {
        let expr = crate::domain::expr::parse(when).map_err(TaggingError::InvalidWhen)?;
        if expr.tag_paths().contains(&&request.path) {
            return Err(TaggingError::InvalidWhen(crate::domain::expr::ExprError {
                position: 1,
                kind: crate::domain::expr::ExprErrorKind::SelfReference { path: request.path.clone() },
            }));
        }
    }
    let tag = NewTag {
        path: &request.path,
        description: &request.description,
        sensitive: request.sensitive,
        mirrored: request.wechat,
        when_expr: request.when_expr.as_deref(),
        created_by: actor,
    };
    let row = store::tags::insert_tag(txn, account, &tag)
        .await?
        .ok_or_else(|| TaggingError::TagExists(request.path.to_string()))?;
    if row.when_expr.is_some() {
        queue_dynamic_fill(txn, account, row.id).await?;
    }
    Ok(row)
}

/// Writes the audit row every change of a tag's sensitivity gets: who, which tag, from → to
/// (`from` is null for a tag created sensitive).
///
/// # Errors
/// The database.
pub async fn record_sensitivity(
    client: &impl GenericClient,
    account: AccountId,
    actor: &str,
    tag: &TagRow,
    from: Option<bool>,
) -> Result<(), tokio_postgres::Error> {
    let detail = serde_json::json!({ "path": tag.path, "from": from, "to": tag.sensitive });
    store::audit::record(client, Some(account), actor, "sensitivity", "tag", &tag.id.to_string(), &detail).await
}

/// Marks a tag sensitive or not, audited; `None` when it already was. The caller checked that
/// the actor may (an admin, or the deployer's playbook).
///
/// # Errors
/// [`TaggingError::NoSuchTag`], or the database.
pub async fn set_sensitive(
    pool: &Pool,
    account: AccountId,
    id: i64,
    sensitive: bool,
    may_change: bool,
    actor: &str,
) -> Result<Option<TagRow>, TaggingError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let mut tag = store::tags::lock_tag(&txn, account, id).await?.ok_or(TaggingError::NoSuchTag)?;
    if tag.sensitive == sensitive {
        return Ok(None);
    }
    // Decided under the tag's lock: a request that was a no-op when the caller's role was
    // checked must not become a change because an admin changed the tag meanwhile.
    if !may_change {
        return Err(TaggingError::SensitivityAdminOnly(tag.path));
    }
    store::tags::update_tag_meta(&txn, account, id, &tag.description, sensitive, tag.when_expr.as_deref()).await?;
    tag.sensitive = sensitive;
    record_sensitivity(&txn, account, actor, &tag, Some(!sensitive)).await?;
    txn.commit().await?;
    tracing::info!(tag.id = id, sensitive, "tag sensitivity changed");
    Ok(Some(tag))
}

/// Queues the first computation of a dynamic tag's members (or a recomputation after its `when`
/// changed), in the caller's transaction.
///
/// # Errors
/// The database.
pub async fn queue_dynamic_fill(
    client: &impl GenericClient,
    account: AccountId,
    tag_id: i64,
) -> Result<(), tokio_postgres::Error> {
    store::jobs::enqueue(client, account, &Job::RefreshDynamicTags(RefreshDynamicTags { tag_id: Some(tag_id) }))
        .await?;
    Ok(())
}

/// Creates the tags a rule or quiz names that do not exist yet: mirrored while WeChat has room.
async fn ensure_tags<'p>(
    client: &impl GenericClient,
    account: AccountId,
    paths: impl IntoIterator<Item = &'p TagPath>,
    actor: &str,
) -> Result<(), TaggingError> {
    let paths: Vec<&TagPath> = paths.into_iter().collect();
    if paths.is_empty() {
        return Ok(());
    }
    store::tags::lock_tags_for_create(client).await?;
    let capacity = wechat_tag_capacity(client, account).await?;
    store::tags::ensure_tags(client, account, &paths, actor, capacity).await?;
    Ok(())
}

/// Validates and stores a rule, creating the tags it names; returns its id.
///
/// # Errors
/// An invalid rule, a quiz that does not exist, or the database.
pub async fn create_rule(pool: &Pool, account: AccountId, spec: &RuleSpec, actor: &str) -> Result<i64, TaggingError> {
    spec.validate().map_err(TaggingError::InvalidRule)?;
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let id = create_rule_in(&txn, account, spec, actor).await?;
    txn.commit().await?;
    Ok(id)
}

/// [`create_rule`] inside the caller's transaction.
///
/// # Errors
/// As [`create_rule`].
pub async fn create_rule_in(
    txn: &Transaction<'_>,
    account: AccountId,
    spec: &RuleSpec,
    actor: &str,
) -> Result<i64, TaggingError> {
    spec.validate().map_err(TaggingError::InvalidRule)?;
    if let Some(quiz) = &spec.start_quiz {
        if !store::quizzes::quiz_exists(txn, account, quiz).await? {
            return Err(TaggingError::UnknownQuiz(quiz.clone()));
        }
    }
    ensure_tags(txn, account, spec.add.iter().chain(&spec.remove), actor).await?;
    Ok(store::rules::insert_rule(txn, account, spec, actor).await?)
}

/// Validates and stores (or replaces) a quiz, creating the tags it can give; false when it was
/// stored identically already.
///
/// # Errors
/// Every problem of the quiz at once, or the database.
pub async fn save_quiz(pool: &Pool, account: AccountId, spec: &QuizSpec, actor: &str) -> Result<bool, TaggingError> {
    let problems = spec.problems();
    if !problems.is_empty() {
        return Err(TaggingError::InvalidQuiz(problems));
    }
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let changed = save_quiz_in(&txn, account, spec, actor).await?;
    txn.commit().await?;
    Ok(changed)
}

/// [`save_quiz`] inside the caller's transaction.
///
/// # Errors
/// As [`save_quiz`].
pub async fn save_quiz_in(
    txn: &Transaction<'_>,
    account: AccountId,
    spec: &QuizSpec,
    actor: &str,
) -> Result<bool, TaggingError> {
    let problems = spec.problems();
    if !problems.is_empty() {
        return Err(TaggingError::InvalidQuiz(problems));
    }
    ensure_tags(txn, account, spec.tag_paths(), actor).await?;
    Ok(store::quizzes::upsert_quiz(txn, account, spec).await?)
}

/// Deletes a tag locally and queues its deletion on WeChat; a sensitive one only when
/// `may_change_sensitivity` (an admin).
///
/// # Errors
/// [`TaggingError::NoSuchTag`], [`TaggingError::SensitiveTag`], or the database.
pub async fn delete_tag(
    pool: &Pool,
    account: AccountId,
    id: i64,
    may_change_sensitivity: bool,
) -> Result<TagRow, TaggingError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    // Not locked here: the delete below must be the statement that waits for batches adding
    // rows naming the tag (see `store::tags::delete_tag`).
    let current = store::tags::get_tag(&txn, account, id).await?.ok_or(TaggingError::NoSuchTag)?;
    if current.sensitive && !may_change_sensitivity {
        return Err(TaggingError::SensitiveTag(current.path));
    }
    // The intent it stood for goes with it, as if deleted on the 意图 page, and the model learns
    // without it.
    if let Some(intent) = store::intents::intent_of_tag(&txn, account, id).await? {
        store::intents::delete_intent(&txn, account, intent).await?;
        store::jobs::enqueue_unless_waiting(&txn, account, &train_intents()).await?;
    }
    let tag = store::tags::delete_tag(&txn, account, id).await?.ok_or(TaggingError::NoSuchTag)?;
    if let Some(wechat_tag_id) = tag.wechat_tag_id {
        store::jobs::enqueue(&txn, account, &Job::DeleteWechatTag(DeleteWechatTag { wechat_tag_id })).await?;
    }
    txn.commit().await?;
    Ok(tag)
}

/// A run of the intent model asked for by tagcast itself (after an erasure or a tag deletion).
fn train_intents() -> Job {
    Job::TrainIntents(crate::domain::job::TrainIntents { requested_by: "system".to_owned() })
}

/// What a rename changed besides the tag itself.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Renamed {
    pub from: String,
    pub to: String,
    pub rules: u64,
    pub quizzes: u64,
    pub segments: u64,
    pub dynamic_tags: u64,
    pub campaigns: u64,
    /// A `rename_wechat_tag` job was queued (the tag exists on WeChat).
    pub wechat: bool,
}

/// Renames a tag and everything that names it by path — rules, quizzes, segments, dynamic-tag
/// conditions and campaign audiences — in one transaction, so nothing is left pointing at a path
/// that no longer exists; members keep the tag (it is the same row). A tag already created on
/// WeChat is renamed there by the `rename_wechat_tag` job (`tags/update`); one not created yet
/// is created under its new name by the outbox.
///
/// # Errors
/// [`TaggingError::NoSuchTag`], [`TaggingError::TagExists`] for a path in use, or the database.
pub async fn rename_tag(
    pool: &Pool,
    account: AccountId,
    id: i64,
    to: &TagPath,
    actor: &str,
) -> Result<Renamed, TaggingError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    // Playbooks write the configuration under this lock; a rename must not interleave with one.
    store::tags::lock_config_writes(&txn).await?;
    let tag = store::tags::lock_tag(&txn, account, id).await?.ok_or(TaggingError::NoSuchTag)?;
    let from = tag.path.clone();
    let mut renamed = Renamed { from: from.clone(), to: to.as_str().to_owned(), ..Renamed::default() };
    if from == to.as_str() {
        return Ok(renamed);
    }
    if !store::tags::update_tag_path(&txn, account, id, to).await? {
        return Err(TaggingError::TagExists(to.as_str().to_owned()));
    }
    renamed.rules = store::rules::rename_tag_in_rules(&txn, account, &from, to.as_str()).await?;
    for (_, mut spec) in store::quizzes::list_quizzes(&txn, account).await? {
        if spec.rename_tag(&from, to) {
            store::quizzes::upsert_quiz(&txn, account, &spec).await?;
            renamed.quizzes += 1;
        }
    }
    // Another account's tag of the same path is another tag: its segments stay as they are.
    for (segment_id, text) in store::segments::list_segments_mentioning(&txn, account, &from).await? {
        // An expression that no longer parses is left as it is: it names nothing reliably.
        if let Ok(mut parsed) = crate::domain::expr::parse(&text) {
            if parsed.rename_tag(&from, to) {
                store::segments::update_segment_expr(&txn, segment_id, &parsed.to_string()).await?;
                renamed.segments += 1;
            }
        }
    }
    for (tag_id, text) in store::tags::list_dynamic_mentioning(&txn, account, &from).await? {
        if let Ok(mut parsed) = crate::domain::expr::parse(&text) {
            if parsed.rename_tag(&from, to) {
                store::tags::update_when_expr(&txn, account, tag_id, &parsed.to_string()).await?;
                renamed.dynamic_tags += 1;
            }
        }
    }
    renamed.campaigns = store::campaigns::rename_audience_tag(&txn, account, &from, to.as_str()).await?;
    if let (true, Some(wechat_tag_id)) = (tag.mirrored, tag.wechat_tag_id) {
        let job = Job::RenameWechatTag(RenameWechatTag { wechat_tag_id, name: to.as_str().to_owned() });
        store::jobs::enqueue(&txn, account, &job).await?;
        renamed.wechat = true;
    }
    let detail = serde_json::to_value(&renamed).unwrap_or_default();
    store::audit::record(&txn, Some(account), actor, "rename", "tag", &id.to_string(), &detail).await?;
    txn.commit().await?;
    tracing::info!(tag.id = id, rules = renamed.rules, segments = renamed.segments, "tag renamed");
    Ok(renamed)
}

/// Erases a follower of the account (PIPL): their WeChat tags are queued for removal, then every
/// row about them goes. The same openid in another account is someone else, left alone. Returns
/// false when tagcast knew nothing of them.
///
/// # Errors
/// The database.
pub async fn erase_follower(pool: &Pool, account: AccountId, openid: &str) -> Result<bool, TaggingError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let known = store::followers::follower_exists(&txn, account, openid).await?;
    let removals: Vec<TagChange> = store::tags::list_follower_tag_ids(&txn, account, openid)
        .await?
        .into_iter()
        .map(|tag_id| TagChange { openid: openid.to_owned(), tag_id, add: false, source: "erasure".to_owned() })
        .collect();
    store::tags::enqueue(&txn, &removals).await?;
    // A model that learned from their words is trained again without them.
    if store::intents::has_examples_from(&txn, account, openid).await? {
        store::jobs::enqueue_unless_waiting(&txn, account, &train_intents()).await?;
    }
    let erased = store::followers::erase_follower(&txn, account, openid).await?;
    txn.commit().await?;
    Ok(known || erased)
}
