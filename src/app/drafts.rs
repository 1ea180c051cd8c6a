//! The account's WeChat drafts (草稿箱): keeping the local list true to `draft/batchget`.
//! (The check right before an mpnews send is `campaigns::check_draft`.)
//!
//! tagcast never writes drafts; an editor writes them in WeChat's console, and tagcast offers
//! them to pick when composing an mpnews campaign.

use chrono::DateTime;
use deadpool_postgres::Pool;

use crate::domain::account::AccountId;
use crate::store;
use crate::store::drafts::DraftRow;
use crate::wechat::api::{ApiClient, DraftItem, MAX_DRAFTS_PER_PAGE, WeChatError};

/// WeChat holds at most a few thousand drafts; a longer listing means its paging misbehaves.
const MAX_PAGES: u32 = 500;

/// Why the list could not be refreshed.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("WeChat API call failed")]
    WeChat(#[from] WeChatError),
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DraftRefresh {
    /// Drafts WeChat listed.
    pub drafts: usize,
    /// Local drafts removed because WeChat no longer has them.
    pub removed: u64,
}

fn row_of(item: &DraftItem) -> Option<DraftRow> {
    let first = item.content.news_item.first()?;
    let updated = if item.update_time > 0 { item.update_time } else { item.content.update_time };
    Some(DraftRow {
        media_id: item.media_id.clone(),
        title: first.title.clone(),
        author: first.author.clone(),
        cover_url: first.thumb_url.clone(),
        article_count: i32::try_from(item.content.news_item.len()).unwrap_or(i32::MAX),
        article_titles: item.content.news_item.iter().map(|a| a.title.clone()).collect(),
        updated_at: DateTime::from_timestamp(updated, 0).unwrap_or_default(),
    })
}

/// Lists every draft of the account (`draft/batchget`, 20 a page) and makes the local list
/// match: new and changed drafts written, those gone removed. The listing is read in full
/// before anything is written, so a failure halfway changes nothing.
///
/// # Errors
/// WeChat or the database.
#[tracing::instrument(skip_all, fields(account = account.get()))]
pub async fn refresh_drafts(pool: &Pool, account: AccountId, api: &ApiClient) -> Result<DraftRefresh, DraftError> {
    let mut rows = Vec::new();
    let mut offset = 0;
    for _ in 0..MAX_PAGES {
        let page = api.list_drafts(offset, MAX_DRAFTS_PER_PAGE).await?;
        let listed = u32::try_from(page.item.len()).unwrap_or(u32::MAX);
        rows.extend(page.item.iter().filter_map(row_of));
        offset += listed;
        if listed == 0 || offset >= page.total_count {
            break;
        }
    }
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    for row in &rows {
        store::drafts::upsert_draft(&txn, account, row).await?;
    }
    let keep: Vec<String> = rows.iter().map(|r| r.media_id.clone()).collect();
    let removed = store::drafts::delete_drafts_except(&txn, account, &keep).await?;
    txn.commit().await?;
    tracing::info!(drafts = rows.len(), removed, "drafts refreshed");
    Ok(DraftRefresh { drafts: rows.len(), removed })
}
