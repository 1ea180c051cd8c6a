//! Deleting a campaign that never went out, and the size of a campaign's audience now (for the
//! approval queue: what an approver lets out).

use deadpool_postgres::Pool;

use super::{CampaignError, audience_of};
use crate::app::audience::index::AudienceIndex;
use crate::domain::account::AccountId;
use crate::domain::campaign::{Audience, Status};
use crate::domain::expr::{self, CmpOp, Expr, Window};
use crate::domain::tag::TagPath;
use crate::store;
use crate::store::campaigns::CampaignRow;

/// Deletes a campaign of `account` whose status allows it ([`Status::may_delete`]), audited in
/// the same transaction.
///
/// # Errors
/// [`CampaignError::NotFound`], [`CampaignError::WrongStatus`] once a send was requested, or the
/// database.
pub async fn delete(pool: &Pool, account: AccountId, id: i64, actor: &str) -> Result<CampaignRow, CampaignError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let row = store::campaigns::lock_campaign(&txn, account, id).await?.ok_or(CampaignError::NotFound)?;
    if !Status::parse(&row.status).is_some_and(Status::may_delete) {
        return Err(CampaignError::WrongStatus { status: row.status, action: "deleted" });
    }
    store::campaigns::delete_campaign(&txn, account, id).await?;
    let detail = serde_json::json!({ "name": row.name, "was": row.status });
    store::audit::record(&txn, Some(account), actor, "delete", "campaign", &id.to_string(), &detail).await?;
    txn.commit().await?;
    Ok(row)
}

/// How many subscribed followers the campaign's audience reaches at `now` (unix seconds),
/// counted as the segment page counts (the in-memory index, else SQL); `None` when the audience
/// names a tag path or segment that no longer resolves.
///
/// # Errors
/// The database.
pub async fn audience_size(
    pool: &Pool,
    index: &AudienceIndex,
    row: &CampaignRow,
    now: i64,
) -> Result<Option<i64>, CampaignError> {
    let expr = match audience_of(row)? {
        Audience::Tag(path) => match TagPath::parse(&path) {
            Ok(path) => Expr::Tag(path),
            Err(_) => return Ok(None),
        },
        Audience::Segment(id) => {
            let client = pool.get().await?;
            let Some(segment) = store::segments::get_segment(&client, row.account, id).await? else {
                return Ok(None);
            };
            match expr::parse(&segment.expr) {
                Ok(parsed) => parsed,
                Err(_) => return Ok(None),
            }
        }
        // Every follower has made at least zero orders: the expression language's "everyone".
        Audience::All(_) => Expr::Orders { window: Window::All, op: CmpOp::Ge, count: 0 },
    };
    crate::app::audience::count_members(pool, index, row.account, &expr, now).await.map(Some).map_err(|error| {
        match error {
            crate::app::audience::AudienceError::Pool(e) => CampaignError::Pool(e),
            crate::app::audience::AudienceError::Query(e) => CampaignError::Query(e),
        }
    })
}
