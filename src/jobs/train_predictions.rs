//! `train_predictions {requested_by}`: one run of the purchase model (`app::predictions`). The
//! worker loop queues it once a day per account with a WeChat client ([`predictions::queue_daily`]);
//! the 预测 page queues one on demand.

use super::{JobCtx, JobError};
use crate::app::predictions;
use crate::domain::job::TrainPredictions;

/// Runs the job. A failed run is recorded on its row; the job is retried, as the database or
/// the solver may do better next time.
///
/// # Errors
/// [`JobError::Retry`] with the reason; [`JobError::Permanent`] when the solver failed.
pub async fn run(ctx: &JobCtx, job: &TrainPredictions) -> Result<(), JobError> {
    let now = ctx.clock.now();
    match predictions::run_purchase_model(&ctx.pool, ctx.account, now, &job.requested_by).await {
        Ok(_) => Ok(()),
        // The solver fails the same way on the same data: tomorrow's run has new data.
        Err(error @ predictions::PredictError::Train(_)) => {
            Err(JobError::Permanent(format!("{error}: {:?}", std::error::Error::source(&error))))
        }
        Err(error) => Err(JobError::Retry(format!("{error}: {:?}", std::error::Error::source(&error)))),
    }
}
