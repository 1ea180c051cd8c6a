//! `refresh_dynamic_tags {tag_id?}`: recomputes dynamic tags over every follower, set-based, at
//! the clock's now. Without `tag_id` it does the tags that time alone can change (a window like
//! `30d`); the worker loop queues that every [`REFRESH_EVERY`]. With `tag_id` it fills one tag
//! whose `when` was just created or changed.

use std::time::Duration;

use serde::Deserialize;

use super::{JobCtx, JobError};
use crate::app::audience;
use crate::store;

/// The job kind.
pub const KIND: &str = "refresh_dynamic_tags";

/// How often the worker loop queues the scheduled pass. A window tag flips at most this late.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    #[serde(default)]
    tag_id: Option<i64>,
}

/// Runs the job.
///
/// # Errors
/// [`JobError::Retry`] when the database fails; a payload that does not parse is permanent.
pub async fn refresh(ctx: &JobCtx, payload: &serde_json::Value) -> Result<(), JobError> {
    let payload: Payload =
        serde_json::from_value(payload.clone()).map_err(|e| JobError::Permanent(format!("payload: {e}")))?;
    let (added, removed) = audience::refresh_dynamic_tags(&ctx.pool, &ctx.clock, payload.tag_id)
        .await
        .map_err(|e| JobError::Retry(format!("{e}: {:?}", std::error::Error::source(&e))))?;
    tracing::info!(added, removed, tag.id = payload.tag_id, "dynamic tags refreshed");
    Ok(())
}

/// Queues the scheduled pass unless one is already waiting (several processes may ask at once;
/// an extra pass is harmless).
///
/// # Errors
/// The database.
pub async fn enqueue_scheduled(client: &impl deadpool_postgres::GenericClient) -> Result<bool, tokio_postgres::Error> {
    let waiting = client
        .query_opt(
            "SELECT 1 FROM jobs WHERE kind = $1 AND state = 'pending' AND payload = '{}'::jsonb LIMIT 1",
            &[&KIND],
        )
        .await?
        .is_some();
    if !waiting {
        store::jobs::enqueue(client, KIND, &serde_json::json!({})).await?;
    }
    Ok(!waiting)
}
