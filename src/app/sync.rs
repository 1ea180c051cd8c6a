//! `tagcast sync`: imports every follower (user/get, 10,000 a page) and who carries which WeChat
//! tag (tags/get, then user/tag/get per tag). Resumable: each page commits with its cursor, and a
//! new run picks up an unfinished one where it stopped.

use deadpool_postgres::Pool;

use crate::store::sync::{self as store, SyncPhase, SyncRun};
use crate::wechat::api::{ApiClient, WeChatError};

/// Why an import stopped; running `sync` again resumes it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("WeChat API call failed")]
    WeChat(#[from] WeChatError),
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
    #[error("the import run vanished from the database")]
    RunVanished,
}

/// How far an import has come, for the progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncProgress {
    pub phase: SyncPhase,
    pub followers_imported: i64,
    pub followers_total: Option<i64>,
    /// Tags whose members are imported so far, of how many.
    pub tags_done: usize,
    pub tags_total: usize,
}

/// What a finished import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub resumed: bool,
    pub followers: i64,
    pub tags: usize,
    /// Followers tagcast knew that WeChat no longer lists.
    pub marked_unsubscribed: u64,
}

/// Runs (or resumes) an import to the end.
///
/// # Errors
/// A WeChat or database failure; what was imported so far stays, and the next call resumes.
#[tracing::instrument(skip_all)]
pub async fn run_sync(
    pool: &Pool,
    api: &ApiClient,
    mut progress: impl FnMut(&SyncProgress),
) -> Result<SyncReport, SyncError> {
    let mut client = pool.get().await?;
    let (mut run, resumed) = match store::get_unfinished_run(&client).await? {
        Some(run) => (run, true),
        None => (store::insert_run(&client).await?, false),
    };
    if resumed {
        tracing::info!(sync.run = run.id, imported = run.imported, "resuming an unfinished import");
    }
    let mut tags_total = run.pending_tags.len() + usize::from(run.current_tag.is_some());
    let mut marked_unsubscribed = 0;
    loop {
        match run.phase {
            SyncPhase::Followers => {
                let page = api.list_followers(&run.next_openid).await?;
                let txn = client.transaction().await?;
                if page.count == 0 || page.openids().is_empty() {
                    let tags = api.list_tags().await?;
                    tags_total = tags.len();
                    let tags: Vec<_> = tags.into_iter().map(|t| (t.id, t.name, t.count)).collect();
                    store::start_tags_phase(&txn, &run, &tags).await?;
                } else {
                    store::import_followers_page(&txn, &run, page.openids(), &page.next_openid, page.total).await?;
                }
                txn.commit().await?;
            }
            SyncPhase::Tags => {
                let txn = client.transaction().await?;
                match run.current_tag {
                    None => marked_unsubscribed = store::finish_run(&txn, &run).await?,
                    Some(tag) => {
                        let page = api.tag_members(tag, &run.next_openid).await?;
                        if page.count == 0 || page.openids().is_empty() {
                            store::advance_tag(&txn, &run).await?;
                        } else {
                            store::import_tag_page(&txn, &run, tag, page.openids(), &page.next_openid).await?;
                        }
                    }
                }
                txn.commit().await?;
            }
            SyncPhase::Done => break,
        }
        run = store::get_run(&client, run.id).await?.ok_or(SyncError::RunVanished)?;
        progress(&progress_of(&run, tags_total));
    }
    tracing::info!(followers = run.imported, tags = tags_total, marked_unsubscribed, "import finished");
    Ok(SyncReport { resumed, followers: run.imported, tags: tags_total, marked_unsubscribed })
}

fn progress_of(run: &SyncRun, tags_total: usize) -> SyncProgress {
    let tags_left = run.pending_tags.len() + usize::from(run.current_tag.is_some());
    SyncProgress {
        phase: run.phase,
        followers_imported: run.imported,
        followers_total: run.total,
        tags_done: match run.phase {
            SyncPhase::Followers => 0,
            SyncPhase::Tags => tags_total.saturating_sub(tags_left),
            SyncPhase::Done => tags_total,
        },
        tags_total,
    }
}
