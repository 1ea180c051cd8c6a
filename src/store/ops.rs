//! What an operator watches of the queues: read by `/metrics` at scrape time, in one statement.

use deadpool_postgres::GenericClient;

/// Counts of queued work at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueSnapshot {
    /// Rows of `tag_outbox` by state (`pending`, `dead`).
    pub outbox: Vec<(String, i64)>,
    /// Age of the oldest pending outbox row, 0 when none is pending.
    pub outbox_oldest_pending_s: f64,
    /// Jobs not yet done, by kind and state (`pending`, `dead`).
    pub jobs: Vec<(String, String, i64)>,
    /// Planned WeChat mass-send calls by state (`pending`, `submitted`, `failed`, `skipped`).
    pub mass_sends: Vec<(String, i64)>,
    /// Stored events the event consumer has not applied yet, and the age of the oldest.
    pub events_unapplied: i64,
    pub events_oldest_unapplied_s: f64,
}

// The events past the consumer's mark are counted up to 10,000 (plus its holes), read in id order
// so the plan stays an index scan however large `events` grows, with or without statistics (an
// open `id > mark` is estimated at a third of the table, which invites a full scan); its holes are
// probed one by one (`OFFSET 0` keeps the probe from turning into a join that scans).
// Done jobs are kept for ever, so they are left out: the partial index on pending ones keeps
// this cheap however long the history grows.
const SNAPSHOT: &str = "
    SELECT 'outbox', state, '', count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
      FROM tag_outbox GROUP BY state
    UNION ALL
    SELECT 'jobs', kind, state, count(*), 0::float8 FROM jobs WHERE state <> 'done' GROUP BY kind, state
    UNION ALL
    SELECT 'mass', state, '', count(*), 0::float8 FROM campaign_chunks GROUP BY state
    UNION ALL
    SELECT 'events', '', '',
           (SELECT count(*) FROM (SELECT 1 FROM events WHERE id > c.mark ORDER BY id LIMIT 10000) newer)
             + (SELECT count(*) FROM unnest(c.holes) h (id)
                CROSS JOIN LATERAL (SELECT 1 FROM events e WHERE e.id = h.id OFFSET 0) found),
           coalesce(extract(epoch FROM now() - (SELECT received_at FROM events WHERE id > c.mark ORDER BY id LIMIT 1)),
                    0)::float8
      FROM event_cursors c WHERE c.name = 'tagging'";

/// Reads the queues' depth.
///
/// # Errors
/// The database failed.
pub async fn queue_snapshot(client: &impl GenericClient) -> Result<QueueSnapshot, tokio_postgres::Error> {
    let statement = client.prepare_cached(SNAPSHOT).await?;
    let mut snapshot = QueueSnapshot::default();
    for row in client.query(&statement, &[]).await? {
        let family: &str = row.get(0);
        let (a, b, count, age): (String, String, i64, f64) = (row.get(1), row.get(2), row.get(3), row.get(4));
        match family {
            "outbox" => {
                if a == "pending" {
                    snapshot.outbox_oldest_pending_s = age;
                }
                snapshot.outbox.push((a, count));
            }
            "jobs" => snapshot.jobs.push((a, b, count)),
            "events" => {
                snapshot.events_unapplied = count;
                snapshot.events_oldest_unapplied_s = age;
            }
            _ => snapshot.mass_sends.push((a, count)),
        }
    }
    Ok(snapshot)
}
