//! Jobs that keep WeChat's tags in step: deleting a tag there, and the reconciler that compares
//! WeChat's members of each mirrored tag with ours and queues whatever repairs the drift.

use std::collections::HashSet;

use super::{JobCtx, JobError};
use crate::store;
use crate::store::tags::TagChange;
use crate::wechat::api::{ErrCode, MAX_OPENIDS_PER_BATCH, WeChatError};

fn classify(error: WeChatError) -> JobError {
    if error.is_transient() || matches!(error, WeChatError::Transport(_) | WeChatError::Http(_)) {
        JobError::Retry(error.to_string())
    } else {
        JobError::Permanent(error.to_string())
    }
}

fn db(error: impl std::fmt::Display) -> JobError {
    JobError::Retry(format!("database: {error}"))
}

/// Every member of a WeChat tag, page by page.
async fn wechat_members(ctx: &JobCtx, wechat_tag_id: i64) -> Result<Vec<String>, WeChatError> {
    let mut members = Vec::new();
    let mut next = String::new();
    loop {
        let page = ctx.api.tag_members(wechat_tag_id, &next).await?;
        if page.count == 0 || page.openids().is_empty() {
            return Ok(members);
        }
        members.extend(page.openids().iter().cloned());
        if page.next_openid.is_empty() || page.next_openid == next {
            return Ok(members);
        }
        next = page.next_openid;
    }
}

/// `rename_wechat_tag {wechat_tag_id, name}`: renames the tag on WeChat (`tags/update`) after
/// a local rename. A tag gone from WeChat has nothing to rename: the outbox creates it anew
/// under the new name the next time someone is tagged.
pub async fn rename_wechat_tag(ctx: &JobCtx, payload: &serde_json::Value) -> Result<(), JobError> {
    let id = payload
        .get("wechat_tag_id")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| JobError::Permanent("payload has no wechat_tag_id".to_owned()))?;
    let name = payload
        .get("name")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| JobError::Permanent("payload has no name".to_owned()))?;
    match ctx.api.update_tag(id, name).await {
        Ok(()) => {}
        Err(error) if error.code() == Some(ErrCode::InvalidTagId) => return Ok(()),
        Err(error) => return Err(classify(error)),
    }
    let client = ctx.pool.get().await.map_err(db)?;
    store::tags::rename_wechat_tag_mirror(&client, id, name).await.map_err(db)?;
    tracing::info!(wechat.tag_id = id, "renamed the tag on WeChat");
    Ok(())
}

/// `delete_wechat_tag {wechat_tag_id}`: deletes the tag on WeChat; a tag with more than 100,000
/// members (45057) is emptied first, 50 at a time.
pub async fn delete_wechat_tag(ctx: &JobCtx, payload: &serde_json::Value) -> Result<(), JobError> {
    let id = payload
        .get("wechat_tag_id")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| JobError::Permanent("payload has no wechat_tag_id".to_owned()))?;
    match ctx.api.delete_tag(id).await {
        Ok(()) => {}
        Err(error) if error.code() == Some(ErrCode::InvalidTagId) => {}
        Err(error) if error.code() == Some(ErrCode::TagTooLargeToDelete) => {
            let members = wechat_members(ctx, id).await.map_err(classify)?;
            for chunk in members.chunks(MAX_OPENIDS_PER_BATCH) {
                ctx.api.batch_untag(id, chunk).await.map_err(classify)?;
            }
            ctx.api.delete_tag(id).await.map_err(classify)?;
        }
        Err(error) => return Err(classify(error)),
    }
    let client = ctx.pool.get().await.map_err(db)?;
    client.execute("DELETE FROM wechat_tags WHERE id = $1", &[&id]).await.map_err(db)?;
    tracing::info!(wechat.tag_id = id, "deleted the tag on WeChat");
    Ok(())
}

/// What a reconciliation found and queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub tags_checked: usize,
    /// Followers WeChat lacked a tag for: queued to add.
    pub added: usize,
    /// Followers WeChat had a tag for that tagcast does not: queued to remove.
    pub removed: usize,
}

/// Compares every mirrored tag's members on WeChat with ours and queues the repairs. Followers with
/// a change still pending for that tag are left to the outbox.
///
/// # Errors
/// WeChat or the database failed; the next run starts over.
pub async fn reconcile(ctx: &JobCtx) -> Result<ReconcileReport, JobError> {
    let client = ctx.pool.get().await.map_err(db)?;
    let tags = client
        .query("SELECT id, wechat_tag_id FROM tags WHERE mirrored AND wechat_tag_id IS NOT NULL ORDER BY id", &[])
        .await
        .map_err(db)?;
    drop(client);
    let mut report = ReconcileReport::default();
    for row in tags {
        let (tag_id, wechat_tag_id): (i64, i64) = (row.get(0), row.get(1));
        let on_wechat: HashSet<String> =
            wechat_members(ctx, wechat_tag_id).await.map_err(classify)?.into_iter().collect();
        let mut client = ctx.pool.get().await.map_err(db)?;
        let txn = client.transaction().await.map_err(db)?;
        let ours: HashSet<String> = txn
            .query(
                // A simulated test follower is never on WeChat (the outbox discards their changes):
                // leaving them out keeps the reconciler from seeing drift on every run.
                "SELECT ft.openid FROM follower_tags ft JOIN followers f ON f.openid = ft.openid AND f.subscribed
                 WHERE ft.tag_id = $1 AND NOT starts_with(ft.openid, $2)",
                &[&tag_id, &crate::domain::follower::TEST_OPENID_PREFIX],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let pending: HashSet<String> = txn
            .query("SELECT openid FROM tag_outbox WHERE tag_id = $1", &[&tag_id])
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let change = |openid: &String, add: bool| TagChange {
            openid: openid.clone(),
            tag_id,
            add,
            source: "reconcile".to_owned(),
        };
        let mut repairs: Vec<TagChange> =
            ours.difference(&on_wechat).filter(|o| !pending.contains(*o)).map(|o| change(o, true)).collect();
        report.added += repairs.len();
        let removals: Vec<TagChange> =
            on_wechat.difference(&ours).filter(|o| !pending.contains(*o)).map(|o| change(o, false)).collect();
        report.removed += removals.len();
        repairs.extend(removals);
        store::tags::enqueue(&txn, &repairs).await.map_err(db)?;
        // What WeChat holds now, as the mirror of its state.
        let members: Vec<&str> = on_wechat.iter().map(String::as_str).collect();
        txn.execute("DELETE FROM follower_wechat_tags WHERE tag_id = $1", &[&wechat_tag_id]).await.map_err(db)?;
        txn.execute(
            "INSERT INTO follower_wechat_tags (openid, tag_id) SELECT o, $2 FROM unnest($1::text[]) AS o ON CONFLICT DO NOTHING",
            &[&members, &wechat_tag_id],
        )
        .await
        .map_err(db)?;
        txn.commit().await.map_err(db)?;
        report.tags_checked += 1;
    }
    if report.added + report.removed > 0 {
        tracing::warn!(added = report.added, removed = report.removed, "WeChat's tags had drifted; repairs queued");
    }
    Ok(report)
}
