//! `train_intents {requested_by}`: trains the intent classifier on the operator's labels and
//! keeps its cross-validated figures (`app::intents::train`). Queued after labelling, after an
//! intent is added or deleted, after an erasure of someone whose message was labelled, and by
//! 重新训练 in the console; one waits at most per account.

use super::{JobCtx, JobError};
use crate::app::intents;
use crate::domain::job::TrainIntents;

/// Runs the job.
///
/// # Errors
/// [`JobError::Retry`] when the database failed: the labels are still there next time.
pub async fn run(ctx: &JobCtx, job: &TrainIntents) -> Result<(), JobError> {
    match intents::train(&ctx.pool, ctx.account, &job.requested_by).await {
        Ok(trained) => {
            tracing::info!(account = %ctx.account, examples = trained.examples, has_model = trained.has_model, "intent model trained");
            Ok(())
        }
        Err(error) => Err(JobError::Retry(error.to_string())),
    }
}
