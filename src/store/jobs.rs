//! `jobs`: background work other than tag changes. Claimed with `FOR UPDATE SKIP LOCKED`, so any
//! number of processes can run workers; failures are retried on a schedule and never deleted.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

/// A claimed job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
}

/// Queues a job, in the caller's transaction.
pub async fn enqueue(
    client: &impl GenericClient,
    kind: &str,
    payload: &serde_json::Value,
) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one("INSERT INTO jobs (kind, payload) VALUES ($1, $2) RETURNING id", &[&kind, payload])
        .await?
        .get(0))
}

/// Takes the next due job, holding its row lock until the caller's transaction ends.
pub async fn claim_next(client: &impl GenericClient) -> Result<Option<Job>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT id, kind, payload, attempts FROM jobs WHERE state = 'pending' AND run_at <= now()
             ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED",
            &[],
        )
        .await?;
    Ok(row.map(|r| Job { id: r.get(0), kind: r.get(1), payload: r.get(2), attempts: r.get(3) }))
}

/// Marks a job done.
pub async fn complete(client: &impl GenericClient, id: i64) -> Result<(), tokio_postgres::Error> {
    client.execute("UPDATE jobs SET state = 'done', updated_at = now() WHERE id = $1", &[&id]).await?;
    Ok(())
}

/// Records a failure: retried at `retry_at`, or dead when `None`.
pub async fn fail(
    client: &impl GenericClient,
    id: i64,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE jobs SET attempts = attempts + 1, last_error = $2, updated_at = now(),
                 state = CASE WHEN $3::timestamptz IS NULL THEN 'dead' ELSE 'pending' END,
                 run_at = coalesce($3, run_at)
             WHERE id = $1",
            &[&id, &error, &retry_at],
        )
        .await?;
    Ok(())
}

/// Counts jobs by state (tests and metrics).
pub async fn count_by_state(client: &impl GenericClient, state: &str) -> Result<i64, tokio_postgres::Error> {
    Ok(client.query_one("SELECT count(*) FROM jobs WHERE state = $1", &[&state]).await?.get(0))
}
