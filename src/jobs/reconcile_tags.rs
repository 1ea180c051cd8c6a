//! `reconcile_tags`: compares WeChat's members of each mirrored tag with ours and queues whatever
//! repairs the drift.

use std::collections::HashSet;

use super::delete_wechat_tag::wechat_members;
use super::{JobCtx, JobError, classify, db};
use crate::store;
use crate::store::tags::TagChange;

/// What a reconciliation found and queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub tags_checked: usize,
    /// Followers WeChat lacked a tag for: queued to add.
    pub added: usize,
    /// Followers WeChat had a tag for that tagcast does not: queued to remove.
    pub removed: usize,
}

/// Runs the job.
///
/// # Errors
/// See [`reconcile`].
pub async fn run(ctx: &JobCtx) -> Result<(), JobError> {
    reconcile(ctx).await.map(|_| ())
}

/// Compares every mirrored tag of the job's account: its members on WeChat with ours and queues the repairs. Followers with
/// a change still pending for that tag are left to the outbox.
///
/// # Errors
/// WeChat or the database failed; the next run starts over.
pub async fn reconcile(ctx: &JobCtx) -> Result<ReconcileReport, JobError> {
    let client = ctx.pool.get().await.map_err(db)?;
    let tags = store::tags::list_mirrored_on_wechat(&client, ctx.account).await.map_err(db)?;
    drop(client);
    let mut report = ReconcileReport::default();
    for (tag_id, wechat_tag_id) in tags {
        let on_wechat: HashSet<String> =
            wechat_members(ctx, wechat_tag_id).await.map_err(classify)?.into_iter().collect();
        let mut client = ctx.pool.get().await.map_err(db)?;
        let txn = client.transaction().await.map_err(db)?;
        let ours: HashSet<String> =
            store::tags::list_members_wechat_should_have(&txn, tag_id).await.map_err(db)?.into_iter().collect();
        let pending: HashSet<String> =
            store::outbox::list_pending_openids(&txn, tag_id).await.map_err(db)?.into_iter().collect();
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
        store::tags::replace_wechat_tag_members(&txn, ctx.account, wechat_tag_id, &members).await.map_err(db)?;
        txn.commit().await.map_err(db)?;
        report.tags_checked += 1;
    }
    if report.added + report.removed > 0 {
        tracing::warn!(added = report.added, removed = report.removed, "WeChat's tags had drifted; repairs queued");
    }
    Ok(report)
}
