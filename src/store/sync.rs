//! `sync_runs`, `wechat_tags`, `follower_wechat_tags`: the resumable import of WeChat's followers
//! and tags. Each page is written with its cursor in one transaction, so a killed import resumes
//! from the last page it stored and never writes a row twice.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

/// Where an import stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRun {
    pub id: i64,
    /// The account imported: every row the run writes is its.
    pub account: AccountId,
    pub started_at: DateTime<Utc>,
    pub phase: SyncPhase,
    pub next_openid: String,
    pub current_tag: Option<i64>,
    pub pending_tags: Vec<i64>,
    pub total: Option<i64>,
    pub imported: i64,
}

/// The steps of an import, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPhase {
    Followers,
    Tags,
    Done,
}

impl SyncPhase {
    fn as_str(self) -> &'static str {
        match self {
            Self::Followers => "followers",
            Self::Tags => "tags",
            Self::Done => "done",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "followers" => Self::Followers,
            "tags" => Self::Tags,
            _ => Self::Done,
        }
    }
}

const COLUMNS: &str = "id, started_at, phase, next_openid, current_tag, pending_tags, total, imported, account_id";

fn run_from_row(row: &tokio_postgres::Row) -> SyncRun {
    SyncRun {
        id: row.get(0),
        started_at: row.get(1),
        phase: SyncPhase::parse(row.get(2)),
        next_openid: row.get(3),
        current_tag: row.get(4),
        pending_tags: row.get(5),
        total: row.get(6),
        imported: row.get(7),
        account: AccountId(row.get(8)),
    }
}

/// The account's newest import that did not finish, if any.
pub async fn get_unfinished_run(
    client: &impl GenericClient,
    account: AccountId,
) -> Result<Option<SyncRun>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sync_runs WHERE finished_at IS NULL AND account_id = $1 ORDER BY id DESC LIMIT 1"
    );
    Ok(client.query_opt(&sql, &[&account.get()]).await?.as_ref().map(run_from_row))
}

/// One import by id.
pub async fn get_run(client: &impl GenericClient, id: i64) -> Result<Option<SyncRun>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM sync_runs WHERE id = $1");
    Ok(client.query_opt(&sql, &[&id]).await?.as_ref().map(run_from_row))
}

/// Starts a new import of the account.
pub async fn insert_run(client: &impl GenericClient, account: AccountId) -> Result<SyncRun, tokio_postgres::Error> {
    let sql = format!("INSERT INTO sync_runs (account_id) VALUES ($1) RETURNING {COLUMNS}");
    Ok(run_from_row(&client.query_one(&sql, &[&account.get()]).await?))
}

const UPSERT_FOLLOWERS: &str = "
    INSERT INTO followers (account_id, openid, subscribed, first_seen_at, last_seen_at, last_synced_at)
    SELECT $3, o, true, now(), now(), $2 FROM unnest($1::text[]) AS o
    ON CONFLICT (account_id, openid) DO UPDATE SET last_synced_at = $2,
        -- An unsubscribe the callback stored after the import began is newer than WeChat's list.
        subscribed = CASE WHEN followers.state_changed_at >= $2 THEN followers.subscribed ELSE true END";

const ADVANCE_FOLLOWERS: &str = "
    UPDATE sync_runs SET next_openid = $2, total = $3, imported = imported + $4 WHERE id = $1";

/// Stores one page of followers (with the unionids WeChat gave for them) and moves the cursor
/// past it.
pub async fn import_followers_page(
    client: &impl GenericClient,
    run: &SyncRun,
    openids: &[String],
    unionids: &[(&str, &str)],
    next_openid: &str,
    total: Option<i64>,
) -> Result<(), tokio_postgres::Error> {
    client.execute(UPSERT_FOLLOWERS, &[&openids, &run.started_at, &run.account.get()]).await?;
    super::followers::set_unionids(client, run.account, unionids).await?;
    super::audience_feed::bump_epoch(client, run.account).await?;
    client.execute(ADVANCE_FOLLOWERS, &[&run.id, &next_openid, &total, &(openids.len() as i64)]).await?;
    Ok(())
}

/// Replaces the mirror of WeChat's tags and starts paging through their members.
pub async fn start_tags_phase(
    client: &impl GenericClient,
    run: &SyncRun,
    tags: &[(i64, String, i64)],
) -> Result<(), tokio_postgres::Error> {
    let ids: Vec<i64> = tags.iter().map(|t| t.0).collect();
    let names: Vec<&str> = tags.iter().map(|t| t.1.as_str()).collect();
    let counts: Vec<i64> = tags.iter().map(|t| t.2).collect();
    let account = run.account.get();
    client.execute("DELETE FROM wechat_tags WHERE account_id = $2 AND NOT (id = ANY($1))", &[&ids, &account]).await?;
    client
        .execute(
            "INSERT INTO wechat_tags (id, name, fan_count, synced_at, account_id)
             SELECT i, n, c, now(), $4 FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS t(i, n, c)
             ON CONFLICT (account_id, id) DO UPDATE SET name = EXCLUDED.name, fan_count = EXCLUDED.fan_count, synced_at = now()",
            &[&ids, &names, &counts, &account],
        )
        .await?;
    start_next_tag(client, run, &ids).await
}

/// Makes the first of `tags` the one being paged through (clearing what the mirror knew of its
/// members) and the rest pending; with none left, the tags phase is over.
async fn start_next_tag(client: &impl GenericClient, run: &SyncRun, tags: &[i64]) -> Result<(), tokio_postgres::Error> {
    let (current, pending) = match tags.split_first() {
        Some((first, rest)) => (Some(*first), rest.to_vec()),
        None => (None, Vec::new()),
    };
    if let Some(tag) = current {
        client
            .execute(
                "DELETE FROM follower_wechat_tags WHERE tag_id = $1 AND account_id = $2",
                &[&tag, &run.account.get()],
            )
            .await?;
    }
    client
        .execute(
            "UPDATE sync_runs SET phase = $2, current_tag = $3, pending_tags = $4, next_openid = '' WHERE id = $1",
            &[&run.id, &SyncPhase::Tags.as_str(), &current, &pending],
        )
        .await?;
    Ok(())
}

/// Stores one page of a tag's members and moves the cursor past it.
pub async fn import_tag_page(
    client: &impl GenericClient,
    run: &SyncRun,
    tag: i64,
    openids: &[String],
    next_openid: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO follower_wechat_tags (openid, tag_id, account_id) SELECT o, $2, $3 FROM unnest($1::text[]) AS o
             ON CONFLICT DO NOTHING",
            &[&openids, &tag, &run.account.get()],
        )
        .await?;
    client.execute("UPDATE sync_runs SET next_openid = $2 WHERE id = $1", &[&run.id, &next_openid]).await?;
    Ok(())
}

/// Moves on to the next tag, clearing what the mirror knew of its members.
pub async fn advance_tag(client: &impl GenericClient, run: &SyncRun) -> Result<(), tokio_postgres::Error> {
    start_next_tag(client, run, &run.pending_tags).await
}

/// Ends the import. Followers WeChat no longer lists are marked unsubscribed, unless they
/// (re)subscribed through the callback after the import began. Returns how many were marked.
pub async fn finish_run(client: &impl GenericClient, run: &SyncRun) -> Result<u64, tokio_postgres::Error> {
    let gone = client
        .execute(
            "UPDATE followers SET subscribed = false, unsubscribed_at = coalesce(unsubscribed_at, now())
             WHERE account_id = $2 AND subscribed AND (last_synced_at IS NULL OR last_synced_at < $1)
               AND coalesce(state_changed_at, first_seen_at) < $1",
            &[&run.started_at, &run.account.get()],
        )
        .await?;
    if gone > 0 {
        super::audience_feed::bump_epoch(client, run.account).await?;
    }
    client
        .execute(
            "UPDATE sync_runs SET phase = $2, finished_at = now(), current_tag = NULL WHERE id = $1",
            &[&run.id, &SyncPhase::Done.as_str()],
        )
        .await?;
    Ok(gone)
}
