//! Playbooks applied: read a file, check it (the database says which quizzes exist already), and
//! bring the database in line with it in one transaction, saying what changed. Parsing and
//! checking are pure, in [`crate::domain::playbook`]; the writes go through [`crate::app::tagging`]
//! and [`crate::store`]. Applying only adds and updates: what the file does not mention is left
//! alone, and applying the same file twice changes nothing.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use deadpool_postgres::{Pool, Transaction};
use secrecy::SecretString;

use crate::app::tagging::{self, TagRequest, TaggingError};
use crate::domain::account::AccountId;
use crate::domain::playbook::{self, Parsed, Playbook, Problem, Problems, TagSpec};
use crate::domain::quiz::QuizSpec;
use crate::domain::rule::RuleSpec;
use crate::domain::tag::TagPath;
use crate::store;

/// The sample playbook demo mode applies, built in so demo mode works from any directory.
pub const SAMPLE: &str = include_str!("../../playbooks/skin-quiz.toml");
/// How messages name the sample.
pub const SAMPLE_FILE: &str = "playbooks/skin-quiz.toml";
/// `created_by` of what a playbook creates.
pub const ACTOR: &str = crate::domain::admin::PLAYBOOK_ACTOR;

/// Who applies a playbook, as the audit log names them, to which account, and whether they may
/// change which tags are sensitive (an admin of the account, or the deployer).
#[derive(Debug, Clone, Copy)]
pub struct Applier<'a> {
    pub actor: &'a str,
    pub account: AccountId,
    pub may_change_sensitivity: bool,
}

impl Applier<'static> {
    /// `tagcast playbook apply --account`: whoever deploys may change anything.
    pub fn deployer(account: AccountId) -> Self {
        Self { actor: ACTOR, account, may_change_sensitivity: true }
    }
}

/// `TAGCAST_PLAYBOOK` and `tagcast playbook apply` without `--account`: the first account.
pub const DEPLOYER: Applier<'static> =
    Applier { actor: ACTOR, account: AccountId::FIRST, may_change_sensitivity: true };

/// A sensitivity the playbook would change: (path, from (`None`: a new tag), to).
pub type SensitivityChange = (String, Option<bool>, bool);

/// Why a playbook was not applied (or did not pass its check).
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has {}", .0.file, count(.0.problems.len(), "problem"))]
    Invalid(#[source] Problems),
    #[error(
        "{file} would change which tags are sensitive ({}); only an admin may mark or unmark a tag sensitive",
        .changes.iter().map(|(path, _, to)| format!("{path} → {}", if *to { "sensitive" } else { "not sensitive" })).collect::<Vec<_>>().join(", ")
    )]
    Sensitivity { file: String, changes: Vec<SensitivityChange> },
    #[error("applying {file} failed")]
    Apply {
        file: String,
        #[source]
        source: TaggingError,
    },
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// What applying did to one tag, rule or quiz.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
}

/// One line of what `apply` reports: `created tag 肤质/油性`, `unchanged rule click SKIN_TEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub outcome: Outcome,
    /// `tag 肤质/油性`, `rule click SKIN_TEST`, `quiz skin`.
    pub what: String,
    /// Which fields changed, or something the operator should know.
    pub note: Option<String>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match self.outcome {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
        };
        write!(f, "{outcome} {}", self.what)?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// Everything applying did, in the order it did it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub changes: Vec<Change>,
    /// The seed's naming advice for the file; never blocks anything.
    pub warnings: Vec<Problem>,
}

impl Applied {
    /// Whether anything in the database changed.
    pub fn changed(&self) -> bool {
        self.changes.iter().any(|c| c.outcome != Outcome::Unchanged)
    }

    /// `2 created, 1 updated, 9 unchanged`, or `no change: ...` when applying changed nothing.
    pub fn summary(&self) -> String {
        let n = |outcome| self.changes.iter().filter(|c| c.outcome == outcome).count();
        if self.changed() {
            format!(
                "{} created, {} updated, {} unchanged",
                n(Outcome::Created),
                n(Outcome::Updated),
                n(Outcome::Unchanged)
            )
        } else {
            format!("no change: all {} already as the playbook says", self.changes.len())
        }
    }
}

/// Reads a playbook file.
///
/// # Errors
/// [`PlaybookError::Read`].
pub fn read(path: &Path) -> Result<String, PlaybookError> {
    std::fs::read_to_string(path).map_err(|source| PlaybookError::Read { path: path.display().to_string(), source })
}

/// `tagcast playbook check`: checks without changing anything. The database is only asked when a
/// rule starts a quiz the file does not define, and is never created or migrated for it.
///
/// # Errors
/// [`PlaybookError::Invalid`] with every problem.
pub async fn check(
    database_url: &SecretString,
    account: AccountId,
    file: &str,
    source: &str,
) -> Result<Playbook, PlaybookError> {
    let parsed = playbook::parse(source);
    let finished = if parsed.outside_quizzes().is_empty() {
        parsed.finish(|_| false)
    } else {
        match existing_quizzes(database_url, account).await {
            Some(existing) => parsed.finish(|id| existing.contains(id)),
            None => parsed.finish_unable_to_look_up(),
        }
    };
    finished.map_err(|problems| PlaybookError::Invalid(Problems { file: file.to_owned(), problems }))
}

/// The ids of `account`'s stored quizzes, or `None` when the database cannot be read.
async fn existing_quizzes(database_url: &SecretString, account: AccountId) -> Option<BTreeSet<String>> {
    let pool = store::connect_pool(database_url, 1).await.ok()?;
    let client = pool.get().await.ok()?;
    Some(store::quizzes::list_quizzes(&client, account).await.ok()?.into_keys().collect())
}

/// Checks a playbook and applies it in one transaction: nothing changes unless all of it applies.
/// `file` names it in messages.
///
/// # Errors
/// [`PlaybookError::Invalid`] with every problem (quizzes are looked up in the same transaction),
/// or [`PlaybookError::Apply`] when a write is refused (WeChat's tag limit, say) or the database fails.
pub async fn apply(pool: &Pool, file: &str, source: &str) -> Result<Applied, PlaybookError> {
    apply_as(pool, file, source, DEPLOYER).await
}

/// [`apply`] to `account`. A playbook is a template: applied to several accounts, each gets its
/// own tags, rules and quizzes, which share nothing but their definitions.
///
/// # Errors
/// As [`apply`].
pub async fn apply_to(pool: &Pool, account: AccountId, file: &str, source: &str) -> Result<Applied, PlaybookError> {
    apply_as(pool, file, source, Applier::deployer(account)).await
}

/// [`apply`] by `applier`: a playbook that would mark or unmark a tag sensitive is refused as a
/// whole ([`PlaybookError::Sensitivity`], nothing applied) unless they may.
///
/// # Errors
/// As [`apply`], and [`PlaybookError::Sensitivity`].
pub async fn apply_as(pool: &Pool, file: &str, source: &str, applier: Applier<'_>) -> Result<Applied, PlaybookError> {
    run_as(pool, file, source, applier, true).await
}

/// What [`apply_as`] would do, found by applying in a transaction that is rolled back: the
/// console shows it before an import overwrites anything.
///
/// # Errors
/// As [`apply_as`].
pub async fn preview_as(pool: &Pool, file: &str, source: &str, applier: Applier<'_>) -> Result<Applied, PlaybookError> {
    run_as(pool, file, source, applier, false).await
}

async fn run_as(
    pool: &Pool,
    file: &str,
    source: &str,
    applier: Applier<'_>,
    commit: bool,
) -> Result<Applied, PlaybookError> {
    let parsed = playbook::parse(source);
    apply_parsed(pool, parsed, applier, commit).await.map_err(|failure| match failure {
        Failure::Invalid(problems) => PlaybookError::Invalid(Problems { file: file.to_owned(), problems }),
        Failure::Sensitivity(changes) => PlaybookError::Sensitivity { file: file.to_owned(), changes },
        Failure::Tagging(source) => PlaybookError::Apply { file: file.to_owned(), source },
    })
}

/// The demo's sample playbook, applied only while the account holds no tag, rule or quiz: after
/// that the console owns them, so a tag the operator deleted stays deleted across restarts (the
/// delete page promises 无法恢复).
///
/// # Errors
/// As [`apply`].
pub async fn apply_sample_on_first_start(pool: &Pool) -> Result<Option<Applied>, PlaybookError> {
    let configured =
        async { store::tags::is_configured(&pool.get().await?, AccountId::FIRST).await.map_err(TaggingError::from) }
            .await
            .map_err(|source| PlaybookError::Apply { file: SAMPLE_FILE.to_owned(), source })?;
    if configured {
        tracing::info!(
            playbook = SAMPLE_FILE,
            "the demo account already has tags, rules or quizzes: sample not re-applied"
        );
        return Ok(None);
    }
    apply_at_start(pool, SAMPLE_FILE, SAMPLE).await.map(Some)
}

/// [`apply`] at start-up, logging what changed.
///
/// # Errors
/// As [`apply`].
pub async fn apply_at_start(pool: &Pool, file: &str, source: &str) -> Result<Applied, PlaybookError> {
    let applied = apply(pool, file, source).await?;
    for change in applied.changes.iter().filter(|c| c.outcome != Outcome::Unchanged) {
        tracing::info!(playbook = %file, "playbook: {change}");
    }
    tracing::info!(playbook = %file, "playbook applied: {}", applied.summary());
    Ok(applied)
}

enum Failure {
    Invalid(Vec<Problem>),
    Sensitivity(Vec<SensitivityChange>),
    Tagging(TaggingError),
}

impl From<TaggingError> for Failure {
    fn from(error: TaggingError) -> Self {
        Self::Tagging(error)
    }
}

impl From<deadpool_postgres::PoolError> for Failure {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Self::Tagging(error.into())
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Tagging(error.into())
    }
}

#[tracing::instrument(skip_all, fields(account = applier.account.get()))]
async fn apply_parsed(pool: &Pool, parsed: Parsed, applier: Applier<'_>, commit: bool) -> Result<Applied, Failure> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    store::tags::lock_config_writes(&txn).await?;
    let account = applier.account;
    let quizzes = store::quizzes::list_quizzes(&txn, account).await?;
    let playbook = parsed.finish(|id| quizzes.contains_key(id)).map_err(Failure::Invalid)?;
    let mut applied = Applied { changes: Vec::new(), warnings: playbook.warnings.clone() };
    let mut sensitivity = Vec::new();
    for tag in &playbook.tags {
        applied.changes.push(apply_tag(&txn, &tag.item, applier, &mut sensitivity).await?);
    }
    if !applier.may_change_sensitivity && !sensitivity.is_empty() {
        // Dropping the transaction undoes what was written so far.
        return Err(Failure::Sensitivity(sensitivity));
    }
    // Quizzes before rules: a rule may start a quiz this playbook defines.
    for quiz in &playbook.quizzes {
        apply_quiz(&txn, account, &quiz.item, quizzes.contains_key(&quiz.item.id), &mut applied.changes).await?;
    }
    let rules = store::rules::list_rules(&txn, account).await?;
    for rule in &playbook.rules {
        apply_rule(&txn, account, &rule.item, &rules, &mut applied.changes).await?;
    }
    if commit {
        txn.commit().await?;
    } else {
        txn.rollback().await?;
    }
    Ok(applied)
}

/// Creates a tag, or updates what the playbook says about it; where it lives is never changed
/// (moving a tag on or off WeChat needs calls a playbook does not make).
/// Every sensitivity it would change is added to `sensitivity` (and audited, for the case the
/// applier may change it).
async fn apply_tag(
    txn: &Transaction<'_>,
    spec: &TagSpec,
    applier: Applier<'_>,
    sensitivity: &mut Vec<SensitivityChange>,
) -> Result<Change, TaggingError> {
    let what = format!("tag {}", spec.path);
    let Some(row) = store::tags::get_tag_by_path(txn, applier.account, &spec.path).await? else {
        let request = TagRequest {
            path: spec.path.clone(),
            description: spec.description.clone().unwrap_or_default(),
            sensitive: spec.sensitive.unwrap_or(false),
            wechat: spec.wechat.unwrap_or(true),
            when_expr: spec.when.clone(),
        };
        let created = tagging::create_tag_in(txn, applier.account, &request, ACTOR).await?;
        if created.sensitive {
            sensitivity.push((created.path.clone(), None, true));
            tagging::record_sensitivity(txn, applier.account, applier.actor, &created, None).await?;
        }
        let note = (!request.wechat).then(|| "local-only".to_owned());
        return Ok(Change { outcome: Outcome::Created, what, note });
    };
    let description = spec.description.as_deref().unwrap_or(&row.description);
    let sensitive = spec.sensitive.unwrap_or(row.sensitive);
    let when = spec.when.as_deref().or(row.when_expr.as_deref());
    let mut differ = Vec::new();
    if description != row.description {
        differ.push("description");
    }
    if sensitive != row.sensitive {
        differ.push("sensitive");
    }
    if when != row.when_expr.as_deref() {
        differ.push("when");
    }
    let moved = spec.wechat.filter(|&wechat| wechat != row.mirrored).map(|wechat| {
        let (wanted, is) = if wechat { ("on WeChat", "local-only") } else { ("local-only", "on WeChat") };
        format!("the playbook says {wanted}, it stays {is}: playbooks do not move existing tags")
    });
    if differ.is_empty() {
        return Ok(Change { outcome: Outcome::Unchanged, what, note: moved });
    }
    store::tags::update_tag_meta(txn, applier.account, row.id, description, sensitive, when).await?;
    if sensitive != row.sensitive {
        sensitivity.push((row.path.clone(), Some(row.sensitive), sensitive));
        let updated = store::tags::TagRow { sensitive, ..row.clone() };
        tagging::record_sensitivity(txn, applier.account, applier.actor, &updated, Some(row.sensitive)).await?;
    }
    if when.is_some() && when != row.when_expr.as_deref() {
        tagging::queue_dynamic_fill(txn, applier.account, row.id).await?;
    }
    let note = std::iter::once(differ.join(", ")).chain(moved).collect::<Vec<_>>().join("; ");
    Ok(Change { outcome: Outcome::Updated, what, note: Some(note) })
}

/// The paths that do not exist yet, in order, once each.
async fn missing_tags<'p>(
    txn: &Transaction<'_>,
    account: AccountId,
    paths: impl IntoIterator<Item = &'p TagPath>,
) -> Result<Vec<&'p TagPath>, TaggingError> {
    let mut missing = Vec::new();
    for path in paths {
        if !missing.contains(&path) && store::tags::get_tag_by_path(txn, account, path).await?.is_none() {
            missing.push(path);
        }
    }
    Ok(missing)
}

fn created_for(path: &TagPath, by: &str) -> Change {
    Change { outcome: Outcome::Created, what: format!("tag {path}"), note: Some(format!("named by {by}")) }
}

async fn apply_quiz(
    txn: &Transaction<'_>,
    account: AccountId,
    spec: &QuizSpec,
    existed: bool,
    changes: &mut Vec<Change>,
) -> Result<(), TaggingError> {
    let what = format!("quiz {}", spec.id);
    let new_tags = missing_tags(txn, account, spec.tag_paths()).await?;
    let changed = tagging::save_quiz_in(txn, account, spec, ACTOR).await?;
    changes.extend(new_tags.into_iter().map(|path| created_for(path, &what)));
    let outcome = match (existed, changed) {
        (false, _) => Outcome::Created,
        (true, true) => Outcome::Updated,
        (true, false) => Outcome::Unchanged,
    };
    changes.push(Change { outcome, what, note: None });
    Ok(())
}

/// Rules have no name: an identical rule is this one, anything else is a new rule. A different
/// rule on the same trigger and key is left in place, and the report says so.
async fn apply_rule(
    txn: &Transaction<'_>,
    account: AccountId,
    spec: &RuleSpec,
    stored: &[crate::domain::rule::Rule],
    changes: &mut Vec<Change>,
) -> Result<(), TaggingError> {
    let what = format!("rule {} {}", spec.on.as_str(), spec.normalized_key());
    if store::rules::find_rule(txn, account, spec).await?.is_some() {
        changes.push(Change { outcome: Outcome::Unchanged, what, note: None });
        return Ok(());
    }
    let new_tags = missing_tags(txn, account, spec.add.iter().chain(&spec.remove)).await?;
    tagging::create_rule_in(txn, account, spec, ACTOR).await?;
    changes.extend(new_tags.into_iter().map(|path| created_for(path, &what)));
    let same_key: Vec<String> = stored
        .iter()
        .filter(|r| r.spec.on == spec.on && r.spec.normalized_key() == spec.normalized_key())
        .map(|r| r.id.to_string())
        .collect();
    let note = (!same_key.is_empty()).then(|| {
        format!(
            "rule {} on the same key stays and acts too; delete what is outdated with DELETE /api/v1/rules/{{id}}",
            same_key.join(", ")
        )
    });
    changes.push(Change { outcome: Outcome::Created, what, note });
    Ok(())
}

#[derive(serde::Serialize)]
struct ExportedTag<'a> {
    path: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    sensitive: bool,
    wechat: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    when: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct Exported<'a> {
    tag: Vec<ExportedTag<'a>>,
    rule: Vec<crate::domain::rule::RuleSpec>,
    quiz: Vec<crate::domain::quiz::QuizSpec>,
}

/// Why the current configuration could not be written out as a playbook.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
    #[error("the configuration does not serialize as TOML")]
    Toml(#[from] toml::ser::Error),
}

/// The tags, rules and quizzes in the database as a playbook, so that applying the result to an
/// empty database recreates them (the admin page's export).
///
/// # Errors
/// See [`ExportError`].
pub async fn export(pool: &Pool, account: AccountId) -> Result<String, ExportError> {
    let client = pool.get().await?;
    let tags = crate::store::tags::list_tag_rows(&client, account).await?;
    let rules = crate::store::rules::list_rules(&client, account).await?;
    let mut quizzes: Vec<_> = crate::store::quizzes::list_quizzes(&client, account).await?.into_values().collect();
    quizzes.sort_by(|a, b| a.id.cmp(&b.id));
    let exported = Exported {
        tag: tags
            .iter()
            .map(|t| ExportedTag {
                path: &t.path,
                description: &t.description,
                sensitive: t.sensitive,
                wechat: t.mirrored,
                when: t.when_expr.as_deref(),
            })
            .collect(),
        rule: rules.into_iter().map(|r| r.spec).collect(),
        quiz: quizzes,
    };
    Ok(toml::to_string(&exported)?)
}
