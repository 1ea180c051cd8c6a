//! The callback's statements keep to their indexes on a database as a new install meets it: big
//! tables, never analysed (this machine's Postgres runs with autovacuum off, so nothing gathers
//! statistics by itself). Postgres counts full scans and rows read per table, and a server's counts
//! are complete once its connections have closed.
//!
//! - A start and stop with every kind of push in between must scan the big tables exactly as often
//!   as a start and stop without them (start-up has work of its own, such as sizing the board), and
//!   the pushes and the consumer applying them read a few rows each.
//! - Plans cached while the tables were empty (every statement forced to its cached, generic plan)
//!   must still read a few rows each once the tables are big.

use std::time::{Duration, Instant};

use crate::support::app::{TestApp, event, now, spawn_app, spawn_app_with, text_message};

/// Rows in each big table: enough that a full scan costs far more than an index probe, so a
/// planner without statistics that picks one has planned wrongly.
/// (Below the size at which start-up computes the board in full, which would blur the baseline.)
const ROWS: i64 = 90_000;

const BIG_TABLES: [&str; 5] = ["events", "followers", "follower_tags", "callback_signatures", "quiz_sessions"];

/// Fills the big tables with generated rows only (a fill that read a big table would count).
async fn fill(app: &TestApp) {
    app.query(
        "INSERT INTO followers (account_id, openid, subscribed, subscribed_at, first_seen_at, last_seen_at)
         SELECT 1, 'o_fill_' || g, true, now(), now(), now() FROM generate_series(1, $1::bigint) g
         ON CONFLICT DO NOTHING",
        &[&ROWS],
    )
    .await;
    let tag: i64 = app
        .query("INSERT INTO tags (path, mirrored, created_by) VALUES ('填充/老客', false, 'test') RETURNING id", &[])
        .await[0]
        .get(0);
    app.query(
        "INSERT INTO follower_tags (openid, tag_id, source) SELECT 'o_fill_' || g, $2, 'test'
         FROM generate_series(1, $1::bigint) g ON CONFLICT DO NOTHING",
        &[&ROWS, &tag],
    )
    .await;
    // Applied long ago, as on an install that has been running: the cursor is held while they go
    // in and moves past them in the same statement, so the consumer never reads them (nor a table
    // full of rows it cannot see yet).
    app.query(
        "WITH held AS (SELECT 1 FROM event_cursors WHERE name = 'tagging' FOR UPDATE),
         filled AS (
             INSERT INTO events (dedupe_key, openid, kind, event_key, occurred_at, payload, account_id, reply)
             SELECT '1:fill:' || g, 'o_fill_' || g, 'click', 'OLD_MENU', now() - interval '1 day', '{}', 1, ''
             FROM held, generate_series(1, $1::bigint) g
             RETURNING id)
         UPDATE event_cursors SET mark = (SELECT max(id) FROM filled) WHERE name = 'tagging'",
        &[&ROWS],
    )
    .await;
    app.query(
        "INSERT INTO callback_signatures (signature) SELECT sha256(g::text::bytea) FROM generate_series(1, $1::bigint) g",
        &[&ROWS],
    )
    .await;
    app.query(
        "INSERT INTO quiz_sessions (account_id, openid, quiz_id, progress)
         SELECT 1, 'o_fill_' || g, 'skin', '{\"question\": 0, \"scores\": {}, \"tags\": []}'
         FROM generate_series(1, $1::bigint) g
         ON CONFLICT DO NOTHING",
        &[&ROWS],
    )
    .await;
}

/// Per big table: full scans, and rows read (by full scans and through any index).
async fn reads(app: &TestApp) -> Vec<(String, i64, i64)> {
    app.query("SELECT pg_stat_clear_snapshot()", &[]).await;
    app.query(
        "SELECT t.relname::text, t.seq_scan,
                t.seq_tup_read + coalesce((SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i
                                           WHERE i.relid = t.relid), 0)::bigint
         FROM pg_stat_user_tables t WHERE t.relname = ANY($1) ORDER BY t.relname",
        &[&BIG_TABLES.to_vec()],
    )
    .await
    .iter()
    .map(|row| (row.get(0), row.get(1), row.get(2)))
    .collect()
}

/// Waits until no other session is connected to the test's database: a backend reports its
/// pending counts when it exits.
async fn wait_for_other_sessions_to_end(app: &TestApp) {
    let started = Instant::now();
    loop {
        let others = app
            .count(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .await;
        if others == 0 {
            return;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let left = app
                .query(
                    "SELECT state || ': ' || query FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    &[],
                )
                .await;
            let left: Vec<String> = left.iter().map(|r| r.get(0)).collect();
            panic!("{others} sessions still connected: {left:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The skin quiz, a menu rule with a tag, a keyword auto-reply and a QR-scene rule.
async fn configure(app: &TestApp) {
    let pool = tagcast::store::connect_pool(&app.settings.database_url, 1).await.expect("pool");
    tagcast::app::playbook::apply(&pool, tagcast::app::playbook::SAMPLE_FILE, tagcast::app::playbook::SAMPLE)
        .await
        .expect("the sample applies");
    drop(pool);
    for rule in [
        serde_json::json!({"on": "click", "key": "NEW_ARRIVALS", "add": ["兴趣/新品"]}),
        serde_json::json!({"on": "keyword", "key": "价格", "reply": "今日特价：面霜 99 元"}),
        serde_json::json!({"on": "subscribe", "key": "poster", "add": ["渠道/海报"]}),
    ] {
        let (status, body) = app.api_post("/rules", rule).await;
        assert_eq!(status, 201, "{body}");
    }
}

/// Every kind of push, from new followers and from the filled ones; `n` keeps sets apart.
fn pushes(n: u64) -> Vec<String> {
    let t = now() + n as i64;
    let new = |i: u64| format!("o_new_{n}_{i}");
    vec![
        text_message(&new(1), "随便看看", n * 100 + 1),
        text_message(&new(2), "价格", n * 100 + 2),
        event(&new(3), "CLICK", Some("NEW_ARRIVALS"), t),
        event(&new(4), "subscribe", Some("qrscene_poster"), t),
        event(&format!("o_fill_{}", n * 10 + 7), "CLICK", Some("NEW_ARRIVALS"), t),
        text_message(&new(5), "我要测肤质", n * 100 + 3),
        text_message(&new(5), "A", n * 100 + 4),
        text_message(&new(5), "B", n * 100 + 5),
        text_message(&format!("o_fill_{}", n * 10 + 9), "C", n * 100 + 6),
        event(&format!("o_fill_{}", n * 10 + 1), "unsubscribe", None, t),
        text_message(&new(2), "价格", n * 100 + 2),
    ]
}

async fn assert_never_analysed(app: &TestApp) {
    let statistics =
        app.count("SELECT count(*) FROM pg_stats WHERE tablename = ANY(ARRAY['events', 'followers'])").await;
    assert_eq!(statistics, 0, "the tables must be as a new install has them: never analysed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_push_kind_keeps_to_indexes_on_big_tables_that_were_never_analysed() {
    let mut app = spawn_app().await;
    configure(&app).await;
    fill(&app).await;
    assert_never_analysed(&app).await;

    let start_up = scans_of_a_run(&mut app, &[]).await;
    let with_pushes = scans_of_a_run(&mut app, &pushes(1)).await;
    assert_eq!(with_pushes.len(), BIG_TABLES.len(), "{with_pushes:?}");
    for ((table, scans, rows), (_, start_up_scans, start_up_rows)) in with_pushes.iter().zip(&start_up) {
        assert_eq!(scans, start_up_scans, "{table}: full scans with the pushes, and of start-up alone");
        // A few rows per push; a plan that walks a whole index would read the 90,000.
        let by_pushes = rows - start_up_rows;
        assert!(by_pushes < 2_000, "{table}: the pushes read {by_pushes} rows ({with_pushes:?} vs {start_up:?})");
    }
    let tagged = "SELECT count(*) FROM follower_tags ft JOIN tags t ON t.id = ft.tag_id WHERE t.path = '兴趣/新品'";
    assert_eq!(app.count(tagged).await, 2, "the pushes were applied");
}

/// A server started on an empty database caches its statements' plans in its first minutes; the
/// tables then grow under them. Forced to use cached plans everywhere they are allowed (the
/// consumer plans each statement anew by its own setting), the same server, on the same
/// connections, must still read a few rows per push once the tables are big.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_cached_on_an_empty_database_keep_to_indexes_once_its_tables_are_big() {
    let app = spawn_app_with(|vars| {
        let url = vars["DATABASE_URL"].clone();
        let debug = if std::env::var_os("PLANS_DEBUG").is_some() {
            // Plans of every statement into the server's log, to find a scan this test reports.
            "%20-c%20session_preload_libraries%3Dauto_explain%20-c%20auto_explain.log_min_duration%3D0%20-c%20auto_explain.log_analyze%3Don"
        } else {
            ""
        };
        // The audience index would read the filled rows as news (a tail of the events added since
        // it looked): its reads are its own, and not this test's subject.
        vars.insert("TAGCAST_AUDIENCE_INDEX".to_owned(), "off".to_owned());
        vars.insert(
            "DATABASE_URL".to_owned(),
            format!("{url}?options=-c%20plan_cache_mode%3Dforce_generic_plan{debug}"),
        );
    })
    .await;
    configure(&app).await;
    let before = reads(&app).await;
    for push in pushes(1) {
        assert_eq!(app.push(&push).await.status(), 200);
    }
    app.settle().await;
    fill(&app).await;
    assert_never_analysed(&app).await;
    for push in pushes(2) {
        assert_eq!(app.push(&push).await.status(), 200);
    }
    app.settle().await;
    app.stop_server().await;
    wait_for_other_sessions_to_end(&app).await;
    let after = reads(&app).await;
    for ((table, _, rows), (_, _, rows_now)) in before.iter().zip(&after) {
        let read = rows_now - rows;
        assert!(read < 2_000, "{table}: {read} rows read ({before:?} vs {after:?})");
    }
    let tagged = "SELECT count(*) FROM follower_tags ft JOIN tags t ON t.id = ft.tag_id WHERE t.path = '兴趣/新品'";
    assert_eq!(app.count(tagged).await, 4, "the pushes were applied");
}

/// Full scans and rows read of each big table over a start of the server, `pushes` (each
/// answered 200 and applied), and its stop.
async fn scans_of_a_run(app: &mut TestApp, pushes: &[String]) -> Vec<(String, i64, i64)> {
    app.stop_server().await;
    wait_for_other_sessions_to_end(app).await;
    let before = reads(app).await;
    if std::env::var_os("PLANS_DEBUG").is_some() {
        // Plans of every statement into the server's log, to find a scan this test reports.
        app.query(
            "DO $$ BEGIN
               EXECUTE format('ALTER DATABASE %I SET session_preload_libraries = ''auto_explain''', current_database());
               EXECUTE format('ALTER DATABASE %I SET auto_explain.log_min_duration = 0', current_database());
             END $$",
            &[],
        )
        .await;
    }
    app.restart().await;
    for push in pushes {
        assert_eq!(app.push(push).await.status(), 200);
    }
    app.settle().await;
    // Start-up's own reads run in the background: let them finish in both runs alike.
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.stop_server().await;
    wait_for_other_sessions_to_end(app).await;
    let after = reads(app).await;
    before
        .iter()
        .zip(after)
        .map(|((table, scans, rows), (_, scans_now, rows_now))| (table.clone(), scans_now - scans, rows_now - rows))
        .collect()
}
