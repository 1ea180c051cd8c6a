//! Long jobs run in a lane of their own: a training run that takes minutes (here: stuck behind
//! a lock another session holds on `prediction_runs`, as a busy database would keep it) delays
//! no tag delivery and no campaign send queued after it, holds no transaction open while it
//! waits, runs one at a time per account across workers, and is handed back when its worker
//! stops.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::app::{TestApp, spawn_app_with, text_message};

const QUEUE_TRAINING: &str =
    "INSERT INTO jobs (account_id, kind, payload) VALUES (1, 'train_predictions', '{\"requested_by\": \"测试\"}')";

/// Training sessions waiting for the lock on `prediction_runs`.
const TRAINING_BLOCKED: &str = "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
     WHERE d.datname = current_database() AND l.relation = 'prediction_runs'::regclass AND NOT l.granted";

fn fast(vars: &mut HashMap<String, String>) {
    vars.insert("TAGCAST_WECHAT_RATE_LIMITS".into(), "default=2000,/cgi-bin/message/mass/sendall=200".into());
}

/// A session that keeps every run from being recorded until it commits; and its backend's pid.
async fn hold_prediction_runs(app: &TestApp) -> (tokio_postgres::Client, i32) {
    let (client, connection) = tokio_postgres::connect(&app.db_url, tokio_postgres::NoTls).await.expect("db");
    tokio::spawn(connection);
    client.batch_execute("BEGIN; LOCK TABLE prediction_runs IN SHARE MODE").await.expect("lock");
    let pid = client.query_one("SELECT pg_backend_pid()", &[]).await.expect("pid").get(0);
    (client, pid)
}

async fn wait_until(app: &TestApp, what: &str, sql: &str, want: i64) {
    let started = Instant::now();
    while app.count(sql).await != want {
        assert!(started.elapsed() < Duration::from_secs(30), "{what}: `{sql}` never reached {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_stuck_training_run_delays_no_tag_delivery_and_no_campaign_send() {
    let app = spawn_app_with(fast).await;
    let fans = app.wechat.seed_followers(3);
    tagcast::app::sync::run_sync(&app.jobs.pool, &app.api, |_| {}).await.expect("sync");
    let (status, body) = app.api_post("/rules", json!({"on": "keyword", "key": "训练", "add": ["兴趣/训练"]})).await;
    assert_eq!(status, 201, "{body}");
    let (lock, lock_pid) = hold_prediction_runs(&app).await;
    app.query(QUEUE_TRAINING, &[]).await;
    let cancel = CancellationToken::new();
    let workers = tagcast::jobs::spawn_workers(app.jobs.clone(), cancel.clone());
    wait_until(&app, "the training run starts and waits", TRAINING_BLOCKED, 1).await;

    // Queued after the training run, while it is stuck.
    assert_eq!(app.push(&text_message(&fans[0], "训练", 91_000_001)).await.status(), 200);
    let (status, body) = app
        .api_post(
            "/campaigns",
            json!({"name": "训练中", "audience": {"all": true}, "message": {"type": "text", "content": "你好"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    let (status, body) = app.api_post(&format!("/campaigns/{id}/send"), json!({})).await;
    assert_eq!(status, 202, "{body}");

    let started = Instant::now();
    while app.wechat.user_tags(&fans[0]).is_empty() || app.wechat.mass_jobs().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20), "the tag or the send waited for the training run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.count(TRAINING_BLOCKED).await, 1, "the training run is still waiting");
    // Short transactions of other work pass through "idle in transaction" between statements;
    // one held for the run stays in it as long as the run waits.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let idle_in_transaction = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
           AND state LIKE 'idle in transaction%' AND state_change < now() - interval '1 second'
           AND pid <> {lock_pid}"
    );
    assert_eq!(app.count(&idle_in_transaction).await, 0, "no transaction is held open for the run");
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE kind = 'train_predictions' AND locked_until > now()").await,
        1
    );

    lock.batch_execute("COMMIT").await.expect("unlock");
    wait_until(
        &app,
        "the training run finishes",
        "SELECT count(*) FROM jobs WHERE kind = 'train_predictions' AND state = 'done'",
        1,
    )
    .await;
    let runs = app.query("SELECT status FROM prediction_runs", &[]).await;
    assert_eq!(runs.len(), 1);
    assert_ne!(runs[0].get::<_, String>(0), "running", "the run was recorded to its end");
    cancel.cancel();
    workers.await.expect("workers stop");
}

#[tokio::test]
async fn training_runs_one_at_a_time_per_account_across_workers_and_a_stopping_worker_hands_its_run_back() {
    let app = spawn_app_with(fast).await;
    let (lock, _) = hold_prediction_runs(&app).await;
    app.query(QUEUE_TRAINING, &[]).await;
    app.query(QUEUE_TRAINING, &[]).await;
    let cancel = CancellationToken::new();
    let one = tagcast::jobs::spawn_workers(app.jobs.clone(), cancel.clone());
    let two = tagcast::jobs::spawn_workers(app.jobs.clone(), cancel.clone());
    wait_until(&app, "one run starts and waits", TRAINING_BLOCKED, 1).await;
    // Both lanes poll every second: two more seconds give the idle one two chances to claim.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.count("SELECT count(*) FROM jobs WHERE locked_until > now()").await, 1, "one run per account");
    assert_eq!(app.count("SELECT sum(attempts) FROM jobs").await, 1);

    cancel.cancel();
    one.await.expect("stops");
    two.await.expect("stops");
    let rows = app.query("SELECT state, attempts, locked_until IS NULL FROM jobs ORDER BY id", &[]).await;
    let rows: Vec<(String, i32, bool)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(rows, vec![("pending".to_owned(), 0, true); 2], "handed back, the attempt not counted");
    drop(lock);
}
