//! `tagcast sync`: imports every follower (user/get, 10,000 a page) and who carries which WeChat
//! tag (tags/get, then user/tag/get per tag). Resumable: each page commits with its cursor, and a
//! new run picks up an unfinished one where it stopped. Each account imports on its own (its own
//! run, cursor and client). With each page of followers comes what `user/info/batchget` says of
//! them: the unionid, when the account is bound to an Open Platform account.

use deadpool_postgres::Pool;

use crate::app::accounts::LiveAccount;
use crate::domain::account::AccountId;
use crate::store::sync::{self as store, SyncPhase, SyncRun};
use crate::wechat::api::{ApiClient, MAX_USERS_PER_BATCHGET, WeChatError};

/// `user/info/batchget` calls in flight at once while importing a page (the client's pace applies).
const CONCURRENT_BATCHGETS: usize = 4;

/// Why an import stopped; running `sync` again resumes it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("WeChat API call failed")]
    WeChat(#[from] WeChatError),
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
    #[error("refreshing the drafts failed")]
    Drafts(#[from] crate::app::drafts::DraftError),
    #[error("the import run vanished from the database")]
    RunVanished,
    #[error("账号 `{0}` 未设置 AppID 和 AppSecret，无法导入粉丝；请先在控制台的账号设置中填写")]
    NoClient(String),
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
    /// Drafts in the account's draft box (the composer's list is refreshed last).
    pub drafts: usize,
}

/// Runs (or resumes) an import of the first account to the end, with `api` (its client).
///
/// # Errors
/// A WeChat or database failure; what was imported so far stays, and the next call resumes.
pub async fn run_sync(
    pool: &Pool,
    api: &ApiClient,
    progress: impl FnMut(&SyncProgress),
) -> Result<SyncReport, SyncError> {
    import(pool, AccountId::FIRST, api, progress).await
}

/// Runs (or resumes) an import of `account` to the end, with its own client.
///
/// # Errors
/// [`SyncError::NoClient`] when the account has no AppID and AppSecret; a WeChat or database
/// failure (what was imported so far stays, and the next call resumes).
pub async fn run(
    pool: &Pool,
    account: &LiveAccount,
    progress: impl FnMut(&SyncProgress),
) -> Result<SyncReport, SyncError> {
    let api = account.api.as_ref().ok_or_else(|| SyncError::NoClient(account.name.clone()))?;
    import(pool, account.id, api, progress).await
}

/// The unionids WeChat gives for `openids` (none when the account is bound to no Open Platform
/// account).
async fn unionids_of(api: &ApiClient, openids: &[String]) -> Result<Vec<(String, String)>, WeChatError> {
    let mut unionids = Vec::new();
    for group in openids.chunks(MAX_USERS_PER_BATCHGET * CONCURRENT_BATCHGETS) {
        let calls = group.chunks(MAX_USERS_PER_BATCHGET).map(|chunk| api.user_infos(chunk));
        for infos in futures_util::future::try_join_all(calls).await? {
            unionids.extend(infos.into_iter().filter_map(|i| Some((i.openid, i.unionid?))));
        }
    }
    Ok(unionids)
}

#[tracing::instrument(skip_all, fields(account = %account))]
async fn import(
    pool: &Pool,
    account: AccountId,
    api: &ApiClient,
    mut progress: impl FnMut(&SyncProgress),
) -> Result<SyncReport, SyncError> {
    let mut client = pool.get().await?;
    let (mut run, resumed) = match store::get_unfinished_run(&client, account).await? {
        Some(run) => (run, true),
        None => (store::insert_run(&client, account).await?, false),
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
                let unionids = unionids_of(api, page.openids()).await?;
                let unionids: Vec<(&str, &str)> = unionids.iter().map(|(o, u)| (o.as_str(), u.as_str())).collect();
                let txn = client.transaction().await?;
                if page.count == 0 || page.openids().is_empty() {
                    let tags = api.list_tags().await?;
                    tags_total = tags.len();
                    let tags: Vec<_> = tags.into_iter().map(|t| (t.id, t.name, t.count)).collect();
                    store::start_tags_phase(&txn, &run, &tags).await?;
                } else {
                    store::import_followers_page(&txn, &run, page.openids(), &unionids, &page.next_openid, page.total)
                        .await?;
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
    let drafts = crate::app::drafts::refresh_drafts(pool, account, api).await?.drafts;
    Ok(SyncReport { resumed, followers: run.imported, tags: tags_total, marked_unsubscribed, drafts })
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
