//! The account's WeChat drafts as last listed (`drafts`), for the composer's picker and the API.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::domain::account::AccountId;

/// One draft as tagcast keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftRow {
    pub media_id: String,
    /// The first article's title.
    pub title: String,
    pub author: String,
    /// The first article's cover URL.
    pub cover_url: String,
    pub article_count: i32,
    /// Every article's title, in order.
    pub article_titles: Vec<String>,
    /// When it was last changed on WeChat.
    pub updated_at: DateTime<Utc>,
}

impl DraftRow {
    fn from_row(row: &Row) -> Self {
        Self {
            media_id: row.get("media_id"),
            title: row.get("title"),
            author: row.get("author"),
            cover_url: row.get("cover_url"),
            article_count: row.get("article_count"),
            article_titles: row.get("article_titles"),
            updated_at: row.get("updated_at"),
        }
    }
}

const COLUMNS: &str = "media_id, title, author, cover_url, article_count, article_titles, updated_at";

const UPSERT_DRAFT: &str = "INSERT INTO drafts (account_id, media_id, title, author, cover_url, article_count,
                                                article_titles, updated_at, refreshed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
     ON CONFLICT (account_id, media_id) DO UPDATE SET title = EXCLUDED.title, author = EXCLUDED.author,
         cover_url = EXCLUDED.cover_url, article_count = EXCLUDED.article_count,
         article_titles = EXCLUDED.article_titles, updated_at = EXCLUDED.updated_at, refreshed_at = now()";

/// Inserts or updates one draft.
///
/// # Errors
/// The database.
pub async fn upsert_draft(
    client: &impl GenericClient,
    account: AccountId,
    draft: &DraftRow,
) -> Result<(), tokio_postgres::Error> {
    let statement = client.prepare_cached(UPSERT_DRAFT).await?;
    client
        .execute(
            &statement,
            &[
                &account.get(),
                &draft.media_id,
                &draft.title,
                &draft.author,
                &draft.cover_url,
                &draft.article_count,
                &draft.article_titles,
                &draft.updated_at,
            ],
        )
        .await?;
    Ok(())
}

const DELETE_DRAFTS_EXCEPT: &str = "DELETE FROM drafts WHERE account_id = $1 AND NOT (media_id = ANY($2))";

/// Removes `account`'s drafts not in `keep` (gone from WeChat); returns how many.
///
/// # Errors
/// The database.
pub async fn delete_drafts_except(
    client: &impl GenericClient,
    account: AccountId,
    keep: &[String],
) -> Result<u64, tokio_postgres::Error> {
    let statement = client.prepare_cached(DELETE_DRAFTS_EXCEPT).await?;
    client.execute(&statement, &[&account.get(), &keep]).await
}

/// `account`'s drafts, most recently changed first.
///
/// # Errors
/// The database.
pub async fn list_drafts(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Vec<DraftRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM drafts WHERE account_id = $1 ORDER BY updated_at DESC, media_id");
    let statement = client.prepare_cached(&sql).await?;
    Ok(client.query(&statement, &[&account.get()]).await?.iter().map(DraftRow::from_row).collect())
}

/// One of `account`'s drafts.
///
/// # Errors
/// The database.
pub async fn get_draft(
    client: &impl GenericClient,
    account: AccountId,
    media_id: &str,
) -> Result<Option<DraftRow>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM drafts WHERE account_id = $1 AND media_id = $2");
    let statement = client.prepare_cached(&sql).await?;
    Ok(client.query_opt(&statement, &[&account.get(), &media_id]).await?.as_ref().map(DraftRow::from_row))
}
