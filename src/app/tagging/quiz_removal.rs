//! Deleting a quiz: refused while a rule starts it, since that rule would then start nothing.

use deadpool_postgres::Pool;

use super::TaggingError;
use crate::domain::account::AccountId;
use crate::store;

/// What [`delete_quiz`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuizRemoval {
    /// Gone; this many followers were in the middle of it and left it.
    Deleted { sessions_ended: i64 },
    /// Kept: these rules start it. Change or delete them first.
    StartedByRules(Vec<i64>),
    /// The account has no such quiz.
    Missing,
}

/// Deletes quiz `id` of `account` unless a rule starts it, audited in the same transaction.
///
/// # Errors
/// The database.
pub async fn delete_quiz(pool: &Pool, account: AccountId, id: &str, actor: &str) -> Result<QuizRemoval, TaggingError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let starters: Vec<i64> = store::rules::list_rules(&txn, account)
        .await?
        .into_iter()
        .filter(|r| r.spec.start_quiz.as_deref() == Some(id))
        .map(|r| r.id)
        .collect();
    if !starters.is_empty() {
        return Ok(QuizRemoval::StartedByRules(starters));
    }
    let sessions_ended = store::quizzes::count_sessions_in(&txn, account, id).await?;
    if !store::quizzes::delete_quiz(&txn, account, id).await? {
        return Ok(QuizRemoval::Missing);
    }
    let detail = serde_json::json!({ "sessions_ended": sessions_ended });
    store::audit::record(&txn, Some(account), actor, "delete", "quiz", id, &detail).await?;
    txn.commit().await?;
    Ok(QuizRemoval::Deleted { sessions_ended })
}
