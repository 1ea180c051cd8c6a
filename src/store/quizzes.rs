//! `quizzes`, `quiz_sessions`, `quiz_answers`: quiz definitions, followers in the middle of one,
//! and finished ones.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;
use crate::domain::quiz::{QuizProgress, QuizSpec};

/// Creates or replaces a quiz; returns false when it was stored identically already.
pub async fn upsert_quiz(
    client: &impl GenericClient,
    account: AccountId,
    spec: &QuizSpec,
) -> Result<bool, tokio_postgres::Error> {
    let json = serde_json::to_value(spec).unwrap_or_default();
    let changed = client
        .execute(
            "INSERT INTO quizzes (id, spec, account_id) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, id) DO UPDATE SET spec = EXCLUDED.spec, updated_at = now()
             WHERE quizzes.spec IS DISTINCT FROM EXCLUDED.spec",
            &[&spec.id, &json, &account.get()],
        )
        .await?
        > 0;
    if changed {
        super::tags::bump_config_version(client).await?;
    }
    Ok(changed)
}

const QUIZ_EXISTS: &str = "SELECT 1 FROM quizzes WHERE id = $1 AND account_id = $2";

/// Whether a quiz of the account has this id.
pub async fn quiz_exists(
    client: &impl GenericClient,
    account: AccountId,
    id: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client.query_opt(QUIZ_EXISTS, &[&id, &account.get()]).await?.is_some())
}

/// Every quiz of the account by id; rows that no longer parse are skipped.
pub async fn list_quizzes(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<HashMap<String, QuizSpec>, tokio_postgres::Error> {
    let rows = client.query("SELECT id, spec FROM quizzes WHERE account_id = $1", &[&account.get()]).await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.get(0), serde_json::from_value(r.get::<_, serde_json::Value>(1)).ok()?)))
        .collect())
}

/// A follower's place in a quiz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuizSession {
    pub openid: String,
    pub quiz_id: String,
    pub progress: QuizProgress,
    pub updated_at: DateTime<Utc>,
}

/// The sessions active after `fresh_after` of followers of one or several accounts, in one
/// statement: a batch of pushes spread over many accounts reads them in one round trip, not one
/// per account.
pub async fn list_sessions_across(
    client: &impl GenericClient,
    followers: &[(AccountId, &str)],
    fresh_after: DateTime<Utc>,
) -> Result<HashMap<(AccountId, String), QuizSession>, tokio_postgres::Error> {
    let accounts: Vec<i64> = followers.iter().map(|(a, _)| a.get()).collect();
    let openids: Vec<&str> = followers.iter().map(|(_, o)| *o).collect();
    let statement = client
        .prepare_cached(
            // One probe of the key per follower, whatever the plan: `OFFSET 0` keeps the lateral
            // subquery from being flattened into a join a cached plan could make a full scan
            // (see `store::events`).
            "SELECT s.account_id, s.openid, s.quiz_id, s.progress, s.updated_at
             FROM unnest($1::bigint[], $2::text[]) AS f (account_id, openid)
             CROSS JOIN LATERAL (SELECT * FROM quiz_sessions q
                                 WHERE q.account_id = f.account_id AND q.openid = f.openid OFFSET 0) s
             WHERE s.updated_at > $3",
        )
        .await?;
    let rows = client.query(&statement, &[&accounts, &openids, &fresh_after]).await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let progress = serde_json::from_value(r.get::<_, serde_json::Value>(3)).ok()?;
            let openid: String = r.get(1);
            Some((
                (AccountId(r.get(0)), openid.clone()),
                QuizSession { openid, quiz_id: r.get(2), progress, updated_at: r.get(4) },
            ))
        })
        .collect())
}

/// Stores where followers stand now.
pub async fn upsert_sessions(
    client: &impl GenericClient,
    account: AccountId,
    sessions: &[(&str, &str, &QuizProgress)],
) -> Result<(), tokio_postgres::Error> {
    if sessions.is_empty() {
        return Ok(());
    }
    let openids: Vec<&str> = sessions.iter().map(|s| s.0).collect();
    let quizzes: Vec<&str> = sessions.iter().map(|s| s.1).collect();
    let progress: Vec<serde_json::Value> =
        sessions.iter().map(|s| serde_json::to_value(s.2).unwrap_or_default()).collect();
    client
        .execute(
            "INSERT INTO quiz_sessions (openid, quiz_id, progress, account_id)
             SELECT o, q, p, $4 FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS s(o, q, p)
             ON CONFLICT (account_id, openid) DO UPDATE SET quiz_id = EXCLUDED.quiz_id, progress = EXCLUDED.progress,
                 started_at = CASE WHEN quiz_sessions.quiz_id = EXCLUDED.quiz_id AND EXCLUDED.progress->>'question' <> '0'
                                   THEN quiz_sessions.started_at ELSE now() END,
                 updated_at = now()",
            &[&openids, &quizzes, &progress, &account.get()],
        )
        .await?;
    Ok(())
}

/// Ends the sessions of these followers (finished, left, or erased).
pub async fn delete_sessions(
    client: &impl GenericClient,
    account: AccountId,
    openids: &[&str],
) -> Result<(), tokio_postgres::Error> {
    if !openids.is_empty() {
        client
            .execute(
                "DELETE FROM quiz_sessions WHERE account_id = $2 AND openid = ANY($1)",
                &[&openids, &account.get()],
            )
            .await?;
    }
    Ok(())
}

/// Ends the sessions of followers who left: each `(openid, left_at)` deletes that follower's
/// session unless it was written after `left_at` (a quiz started by a later subscribe, which the
/// consumer may see before it applies the unsubscribe).
pub async fn delete_sessions_left_before(
    client: &impl GenericClient,
    account: AccountId,
    left: &[(&str, DateTime<Utc>)],
) -> Result<(), tokio_postgres::Error> {
    if left.is_empty() {
        return Ok(());
    }
    let openids: Vec<&str> = left.iter().map(|(openid, _)| *openid).collect();
    let left_at: Vec<DateTime<Utc>> = left.iter().map(|(_, at)| *at).collect();
    client
        .execute(
            "DELETE FROM quiz_sessions s USING unnest($1::text[], $3::timestamptz[]) AS l (openid, left_at)
             WHERE s.account_id = $2 AND s.openid = l.openid AND s.updated_at <= l.left_at",
            &[&openids, &account.get(), &left_at],
        )
        .await?;
    Ok(())
}

/// Deletes sessions abandoned before `cutoff`; returns how many.
pub async fn delete_expired_sessions(
    client: &impl GenericClient,
    cutoff: DateTime<Utc>,
) -> Result<u64, tokio_postgres::Error> {
    client.execute("DELETE FROM quiz_sessions WHERE updated_at <= $1", &[&cutoff]).await
}

/// Records finished quizzes.
pub async fn insert_answers(
    client: &impl GenericClient,
    account: AccountId,
    answers: &[(&str, &str, Vec<&str>, &QuizProgress)],
) -> Result<(), tokio_postgres::Error> {
    for (openid, quiz_id, tags, progress) in answers {
        let scores = serde_json::to_value(&progress.scores).unwrap_or_default();
        client
            .execute(
                "INSERT INTO quiz_answers (openid, quiz_id, tags, scores, account_id) VALUES ($1, $2, $3, $4, $5)",
                &[openid, quiz_id, tags, &scores, &account.get()],
            )
            .await?;
    }
    Ok(())
}

const DELETE_QUIZ: &str = "DELETE FROM quizzes WHERE id = $1 AND account_id = $2";

/// Deletes a quiz of the account (followers in the middle of it leave it: their sessions
/// cascade); false when there was none.
pub async fn delete_quiz(
    client: &impl GenericClient,
    account: AccountId,
    id: &str,
) -> Result<bool, tokio_postgres::Error> {
    let deleted = client.execute(DELETE_QUIZ, &[&id, &account.get()]).await? > 0;
    if deleted {
        super::tags::bump_config_version(client).await?;
    }
    Ok(deleted)
}

const COUNT_SESSIONS_IN: &str = "SELECT count(*) FROM quiz_sessions WHERE quiz_id = $1 AND account_id = $2";

/// How many followers are in the middle of the quiz now.
pub async fn count_sessions_in(
    client: &impl GenericClient,
    account: AccountId,
    id: &str,
) -> Result<i64, tokio_postgres::Error> {
    Ok(client.query_one(COUNT_SESSIONS_IN, &[&id, &account.get()]).await?.get(0))
}
