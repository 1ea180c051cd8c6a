//! Jobs queued before they were typed: rows of `jobs (kind, payload)` written as a kind string and
//! JSON by hand, as every earlier release did, are read by the typed `Job` unchanged and run; a
//! row that holds no job this release knows fails for good with the reason kept.

use crate::support::app::spawn_app;

const INSERT: &str = "INSERT INTO jobs (kind, payload) VALUES ($1, $2::text::jsonb)";

#[tokio::test]
async fn rows_queued_the_old_way_run() {
    let app = spawn_app().await;
    let doomed = app.wechat.create_tag("旧/删除").expect("created");
    let renamed = app.wechat.create_tag("旧/改名").expect("created");
    let rows = [
        ("delete_wechat_tag", format!(r#"{{"wechat_tag_id": {doomed}}}"#)),
        ("rename_wechat_tag", format!(r#"{{"wechat_tag_id": {renamed}, "name": "旧/新名"}}"#)),
        ("reconcile_tags", "{}".to_owned()),
        ("refresh_dynamic_tags", "{}".to_owned()),
        ("fetch_article_reads", "{}".to_owned()),
        ("check_mass_results", "{}".to_owned()),
        // Decoded and run: the campaign is missing, which only the job itself can tell.
        ("send_campaign", r#"{"campaign_id": 424242}"#.to_owned()),
    ];
    for (kind, payload) in &rows {
        app.query(INSERT, &[kind, payload]).await;
    }
    app.run_pending_jobs().await;

    let tags = app.wechat.tags();
    assert!(!tags.iter().any(|t| t.0 == doomed), "deleted on WeChat: {tags:?}");
    assert!(tags.iter().any(|t| t.0 == renamed && t.1 == "旧/新名"), "renamed on WeChat: {tags:?}");
    let states = app.query("SELECT kind, state, coalesce(last_error, '') FROM jobs ORDER BY id", &[]).await;
    let states: Vec<(String, String, String)> = states.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(states.len(), rows.len(), "{states:?}");
    for (kind, state, error) in &states[..rows.len() - 1] {
        assert_eq!((state.as_str(), error.as_str()), ("done", ""), "{kind}");
    }
    let (_, state, error) = &states[rows.len() - 1];
    assert_eq!((state.as_str(), error.as_str()), ("dead", "no campaign 424242"));
}

#[tokio::test]
async fn a_row_holding_no_known_job_fails_for_good_with_the_reason() {
    let app = spawn_app().await;
    for (kind, payload) in [
        ("frobnicate", "{}"),
        ("send_campaign", "{}"),
        ("delete_wechat_tag", r#"{"wechat_tag_id": "104"}"#),
        ("refresh_dynamic_tags", r#"{"tag": 1}"#),
    ] {
        app.query(INSERT, &[&kind, &payload]).await;
    }
    app.run_pending_jobs().await;
    let rows = app.query("SELECT state, attempts, last_error FROM jobs ORDER BY id", &[]).await;
    let rows: Vec<(String, i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert!(rows.iter().all(|(state, attempts, _)| state == "dead" && *attempts == 1), "{rows:?}");
    assert_eq!(rows[0].2, "unknown job kind `frobnicate`");
    assert!(rows[1].2.starts_with("payload of a `send_campaign` job: missing field `campaign_id`"), "{rows:?}");
    assert!(rows[2].2.starts_with("payload of a `delete_wechat_tag` job: invalid type"), "{rows:?}");
    assert!(rows[3].2.starts_with("payload of a `refresh_dynamic_tags` job: unknown field `tag`"), "{rows:?}");
}
