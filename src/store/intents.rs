//! Intent tags (issue 21, point 4): the operator's intents, their labelled messages, the messages
//! passed over in the 待标注 queue, and each account's current classifier with its figures.
//! The text messages themselves are `events` rows of kind `text`.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

/// One operator-defined intent and the tag it gives.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentRow {
    pub id: i64,
    pub name: String,
    pub tag_id: i64,
    pub tag_path: String,
    pub threshold: f64,
    pub keywords: Vec<String>,
}

/// The account's intents, by name.
pub async fn list_intents(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Vec<IntentRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT i.id, i.name, i.tag_id, t.path, i.threshold::float8, i.keywords
             FROM intents i JOIN tags t ON t.id = i.tag_id
             WHERE i.account_id = $1 ORDER BY i.name",
            &[&account.get()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| IntentRow {
            id: r.get(0),
            name: r.get(1),
            tag_id: r.get(2),
            tag_path: r.get(3),
            threshold: r.get(4),
            keywords: r.get(5),
        })
        .collect())
}

/// Adds an intent; `None` when the account already has one of that name.
pub async fn insert_intent(
    client: &impl GenericClient,
    account: AccountId,
    name: &str,
    tag_id: i64,
    threshold: f64,
    keywords: &[String],
    created_by: &str,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "INSERT INTO intents (account_id, name, tag_id, threshold, keywords, created_by)
             VALUES ($1, $2, $3, $4::float8, $5, $6)
             ON CONFLICT (account_id, name) DO NOTHING RETURNING id",
            &[&account.get(), &name, &tag_id, &threshold, &keywords, &created_by],
        )
        .await?;
    if row.is_some() {
        super::tags::bump_config_version(client).await?;
    }
    Ok(row.map(|r| r.get(0)))
}

/// Changes an intent's threshold and keywords; false when the account has no such intent.
pub async fn update_intent(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
    threshold: f64,
    keywords: &[String],
) -> Result<bool, tokio_postgres::Error> {
    let changed = client
        .execute(
            "UPDATE intents SET threshold = $3::float8, keywords = $4 WHERE account_id = $1 AND id = $2",
            &[&account.get(), &id, &threshold, &keywords],
        )
        .await?;
    if changed > 0 {
        super::tags::bump_config_version(client).await?;
    }
    Ok(changed > 0)
}

/// Deletes an intent; its labelled messages become 其他 for the next model. Returns its name.
pub async fn delete_intent(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
) -> Result<Option<String>, tokio_postgres::Error> {
    let Some(row) = client
        .query_opt("DELETE FROM intents WHERE account_id = $1 AND id = $2 RETURNING name", &[&account.get(), &id])
        .await?
    else {
        return Ok(None);
    };
    let name: String = row.get(0);
    // A keyword guess for an intent that no longer exists teaches nothing; an operator's label
    // still says "not any of the others".
    client
        .execute(
            "DELETE FROM intent_examples WHERE account_id = $1 AND intent = $2 AND source = 'keyword'",
            &[&account.get(), &name],
        )
        .await?;
    client
        .execute(
            "UPDATE intent_examples SET intent = NULL WHERE account_id = $1 AND intent = $2",
            &[&account.get(), &name],
        )
        .await?;
    super::tags::bump_config_version(client).await?;
    Ok(Some(name))
}

/// A labelled message as training reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleRow {
    pub text: String,
    pub intent: Option<String>,
    /// `operator` or `keyword`.
    pub source: String,
}

/// Every labelled message of the account, oldest first.
pub async fn list_examples(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Vec<ExampleRow>, tokio_postgres::Error> {
    let rows = client
        .query("SELECT text, intent, source FROM intent_examples WHERE account_id = $1 ORDER BY id", &[&account.get()])
        .await?;
    Ok(rows.iter().map(|r| ExampleRow { text: r.get(0), intent: r.get(1), source: r.get(2) }).collect())
}

/// What an example is: the message, its normalised form (one label per form), the intent
/// (`None`: 其他) and the sender.
pub struct NewExample<'a> {
    pub text: &'a str,
    pub normalized: &'a str,
    pub intent: Option<&'a str>,
    pub openid: Option<&'a str>,
    pub by: &'a str,
}

/// An operator's label: replaces any earlier label of the same text (a keyword guess included).
pub async fn label(
    client: &impl GenericClient,
    account: AccountId,
    example: &NewExample<'_>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO intent_examples (account_id, text, normalized, intent, source, openid, labelled_by)
             VALUES ($1, $2, $3, $4, 'operator', $5, $6)
             ON CONFLICT (account_id, normalized) DO UPDATE
             SET text = excluded.text, intent = excluded.intent, source = 'operator',
                 openid = coalesce(excluded.openid, intent_examples.openid),
                 labelled_by = excluded.labelled_by, labelled_at = now()",
            &[&account.get(), &example.text, &example.normalized, &example.intent, &example.openid, &example.by],
        )
        .await?;
    Ok(())
}

/// Keyword guesses, each kept only where no label of the same text exists. Returns how many
/// were new.
pub async fn seed(
    client: &impl GenericClient,
    account: AccountId,
    examples: &[NewExample<'_>],
) -> Result<u64, tokio_postgres::Error> {
    let mut added = 0;
    for example in examples {
        added += client
            .execute(
                "INSERT INTO intent_examples (account_id, text, normalized, intent, source, openid, labelled_by)
                 VALUES ($1, $2, $3, $4, 'keyword', $5, $6)
                 ON CONFLICT (account_id, normalized) DO NOTHING",
                &[&account.get(), &example.text, &example.normalized, &example.intent, &example.openid, &example.by],
            )
            .await?;
    }
    Ok(added)
}

/// Passes over a message in the queue, so it is not asked again.
pub async fn skip(
    client: &impl GenericClient,
    account: AccountId,
    normalized: &str,
    openid: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO intent_skipped (account_id, normalized, openid) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&account.get(), &normalized, &openid],
        )
        .await?;
    Ok(())
}

/// The normalised texts an operator labelled or passed over: the queue leaves them out (a keyword
/// guess stays in it, for an operator to confirm or correct).
pub async fn settled_texts(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT normalized FROM intent_examples WHERE account_id = $1 AND source = 'operator'
             UNION SELECT normalized FROM intent_skipped WHERE account_id = $1",
            &[&account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A follower's text message.
#[derive(Debug, Clone, PartialEq)]
pub struct TextMessage {
    /// The `events` row.
    pub id: i64,
    pub openid: String,
    pub content: String,
    pub occurred_at: DateTime<Utc>,
}

/// The account's latest `limit` text messages, newest first (simulated test followers left out).
pub async fn recent_texts(
    client: &impl GenericClient,
    account: AccountId,
    limit: i64,
) -> Result<Vec<TextMessage>, tokio_postgres::Error> {
    let rows = client
        .query(
            concat!(
                "SELECT id, openid, payload #>> '{body,content}', occurred_at FROM events
                 WHERE kind = 'text' AND account_id = $1 AND ",
                not_test_follower!("openid"),
                " ORDER BY occurred_at DESC, id DESC LIMIT $2::bigint"
            ),
            &[&account.get(), &limit],
        )
        .await?;
    Ok(rows.iter().filter_map(text_message).collect())
}

fn text_message(r: &tokio_postgres::Row) -> Option<TextMessage> {
    let content: Option<String> = r.get(2);
    Some(TextMessage { id: r.get(0), openid: r.get(1), content: content?, occurred_at: r.get(3) })
}

/// One of the account's text messages by its `events` id.
pub async fn text_event(
    client: &impl GenericClient,
    account: AccountId,
    id: i64,
) -> Result<Option<TextMessage>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT id, openid, payload #>> '{body,content}', occurred_at FROM events
             WHERE id = $1 AND account_id = $2 AND kind = 'text'",
            &[&id, &account.get()],
        )
        .await?;
    Ok(row.as_ref().and_then(text_message))
}

/// The intent whose tag is `tag_id`, if any.
pub async fn intent_of_tag(
    client: &impl GenericClient,
    account: AccountId,
    tag_id: i64,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let row = client
        .query_opt("SELECT id FROM intents WHERE account_id = $1 AND tag_id = $2", &[&account.get(), &tag_id])
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Serialises training runs of one account for the rest of the transaction: two runs at once
/// would each save the model of the labels they read, the older last.
pub async fn lock_training(client: &impl GenericClient, account: AccountId) -> Result<(), tokio_postgres::Error> {
    client
        .execute("SELECT pg_advisory_xact_lock(hashtextextended('tagcast:train_intents', $1))", &[&account.get()])
        .await?;
    Ok(())
}

/// The account's stored classifier row.
#[derive(Debug, Clone)]
pub struct ModelRow {
    pub model: Option<serde_json::Value>,
    pub figures: serde_json::Value,
    pub examples: i32,
    pub trained_by: String,
    pub trained_at: DateTime<Utc>,
}

/// The account's current classifier, if one was ever trained.
pub async fn model(client: &impl GenericClient, account: AccountId) -> Result<Option<ModelRow>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT model, figures, examples, trained_by, trained_at FROM intent_models WHERE account_id = $1",
            &[&account.get()],
        )
        .await?;
    Ok(row.map(|r| ModelRow {
        model: r.get(0),
        figures: r.get(1),
        examples: r.get(2),
        trained_by: r.get(3),
        trained_at: r.get(4),
    }))
}

/// When the account's current classifier was trained; `None` without one. A copy held in memory
/// from the same instant is the same model.
pub async fn model_trained_at(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Option<DateTime<Utc>>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT trained_at FROM intent_models WHERE account_id = $1 AND model IS NOT NULL",
            &[&account.get()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Replaces the account's classifier; the tagging engine reloads it with the configuration.
pub async fn save_model(
    client: &impl GenericClient,
    account: AccountId,
    model: Option<&serde_json::Value>,
    figures: &serde_json::Value,
    examples: i32,
    trained_by: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO intent_models (account_id, model, figures, examples, trained_by, trained_at)
             VALUES ($1, $2, $3, $4, $5, now())
             ON CONFLICT (account_id) DO UPDATE
             SET model = excluded.model, figures = excluded.figures, examples = excluded.examples,
                 trained_by = excluded.trained_by, trained_at = excluded.trained_at",
            &[&account.get(), &model, &figures, &examples, &trained_by],
        )
        .await?;
    super::tags::bump_config_version(client).await
}

/// Counts of labelled messages per intent (`None`: 其他) and source.
pub async fn example_counts(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Vec<(Option<String>, String, i64)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT intent, source, count(*) FROM intent_examples WHERE account_id = $1 GROUP BY 1, 2 ORDER BY 1, 2",
            &[&account.get()],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// Whether the follower wrote any labelled message: erasing them changes what the model learns
/// from, so it is trained again.
pub async fn has_examples_from(
    client: &impl GenericClient,
    account: AccountId,
    openid: &str,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM intent_examples WHERE account_id = $1 AND openid = $2)",
            &[&account.get(), &openid],
        )
        .await?;
    Ok(row.get(0))
}
