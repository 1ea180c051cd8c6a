//! Operating tagcast: `/metrics`, `/readyz` next to `/healthz`, and `/api/v1/openapi.json`.

use serde_json::json;

use crate::support::app::{TestApp, event, now, spawn_app, spawn_app_with, text_message};

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    response.text().await.expect("body")
}

/// The value of the sample `name{labels}` (labels written as in the exposition), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn callbacks_are_counted_by_kind_and_result_with_their_latency() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    assert_eq!(sample(&before, r#"tagcast_callback_requests_total{kind="text"}"#), None);

    let message = text_message("o_metrics", "你好", 9001);
    assert_eq!(app.push(&message).await.status(), 200);
    assert_eq!(app.push(&message).await.status(), 200);
    assert_eq!(app.push(&event("o_metrics", "CLICK", Some("MENU_1"), now())).await.status(), 200);
    assert_eq!(app.post(&format!("signature=wrong&timestamp={}&nonce=2", now()), message.clone()).await.status(), 403);

    let after = scrape(&app).await;
    assert_eq!(sample(&after, r#"tagcast_callback_requests_total{kind="text"}"#), Some(2.0), "{after}");
    assert_eq!(sample(&after, r#"tagcast_callback_requests_total{kind="click"}"#), Some(1.0));
    assert_eq!(sample(&after, r#"tagcast_callback_requests_total{kind="none"}"#), Some(1.0));
    assert_eq!(sample(&after, r#"tagcast_callback_duration_seconds_count{kind="text"}"#), Some(2.0));
    // Every answer took less than WeChat's 5 s, so the last finite bucket holds them all.
    assert_eq!(sample(&after, r#"tagcast_callback_duration_seconds_bucket{le="5.0",kind="text"}"#), Some(2.0));
    assert_eq!(sample(&after, r#"tagcast_callback_replies_total{result="ok"}"#), Some(2.0));
    assert_eq!(sample(&after, r#"tagcast_callback_replies_total{result="dup"}"#), Some(1.0));
    assert_eq!(sample(&after, r#"tagcast_callback_replies_total{result="bad_signature"}"#), Some(1.0));
}

#[tokio::test]
async fn wechat_calls_are_counted_by_endpoint_and_errcode_and_the_outbox_is_visible() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(1);
    let (status, body) =
        app.api_post("/rules", json!({"on": "click", "key": "NEW_ARRIVALS", "add": ["兴趣/新品"]})).await;
    assert_eq!(status, 201, "{body}");
    app.push(&event(&fans[0], "CLICK", Some("NEW_ARRIVALS"), now())).await;
    app.settle().await;

    let queued = scrape(&app).await;
    assert_eq!(sample(&queued, r#"tagcast_outbox_depth{state="pending"}"#), Some(1.0), "{queued}");
    assert!(sample(&queued, "tagcast_outbox_oldest_pending_age_seconds").is_some_and(|age| age >= 0.0));
    assert_eq!(sample(&queued, "tagcast_db_up"), Some(1.0));

    // WeChat refuses the first tagging call with its minute limit; the worker retries it. (A used-up
    // daily quota, 45009, stops the API until midnight instead: tests/it/api_quota.rs.)
    app.wechat.fail_next("/cgi-bin/tags/members/batchtagging", 1, 45011);
    app.run_pending_jobs().await;
    app.run_pending_jobs().await;

    let drained = scrape(&app).await;
    let batch = r#"endpoint="/cgi-bin/tags/members/batchtagging""#;
    assert_eq!(
        sample(&drained, &format!("tagcast_wechat_api_calls_total{{{batch},errcode=\"45011\"}}")),
        Some(1.0),
        "{drained}"
    );
    assert!(sample(&drained, &format!("tagcast_wechat_api_calls_total{{{batch},errcode=\"0\"}}")) >= Some(1.0));
    assert!(sample(&drained, "tagcast_wechat_token_refreshes_total") >= Some(1.0));
    assert_eq!(sample(&drained, r#"tagcast_outbox_depth{state="pending"}"#), Some(0.0));
    assert_eq!(sample(&drained, "tagcast_outbox_oldest_pending_age_seconds"), Some(0.0));
    assert!(sample(&drained, r#"tagcast_db_pool_max_size{pool="shared"}"#) > Some(0.0));
    assert!(sample(&drained, r#"tagcast_db_pool_size{pool="inbox"}"#) >= Some(1.0), "{drained}");
}

#[tokio::test]
async fn metrics_want_the_bearer_token_when_one_is_configured() {
    let token = "metrics-token-0123456789";
    let app = spawn_app_with(|vars| {
        vars.insert("TAGCAST_METRICS_TOKEN".to_owned(), token.to_owned());
    })
    .await;
    assert_eq!(app.get("/metrics").await.status(), 401);
    let wrong = app.http.get(format!("{}/metrics", app.address)).bearer_auth("nope").send().await.expect("sent");
    assert_eq!(wrong.status(), 401);
    let right = app.http.get(format!("{}/metrics", app.address)).bearer_auth(token).send().await.expect("sent");
    assert_eq!(right.status(), 200);
    assert!(right.text().await.expect("body").contains("tagcast_db_pool_size"));
}

#[tokio::test]
async fn readyz_follows_the_database_while_healthz_only_says_the_process_lives() {
    let app = spawn_app().await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "ready");
    assert!(body["schema_version"].as_i64().is_some_and(|v| v >= 13), "{body}");

    // The database disappears under the running server.
    let name = app.db_url.rsplit('/').next().expect("database name").to_owned();
    let (admin, connection) =
        tokio_postgres::connect("postgres://postgres@127.0.0.1:5432/postgres", tokio_postgres::NoTls)
            .await
            .expect("admin connection");
    tokio::spawn(connection);
    admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.expect("drop the app's database");

    let started = std::time::Instant::now();
    let gone = app.get("/readyz").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(gone.status(), 503);
    let body: serde_json::Value = gone.json().await.expect("json");
    assert_eq!(body["reason"], "database_unavailable", "{body}");
    assert_eq!(app.get("/healthz").await.status(), 200);
    let metrics = scrape(&app).await;
    assert_eq!(sample(&metrics, "tagcast_db_up"), Some(0.0), "{metrics}");
    assert!(!metrics.contains("tagcast_outbox_depth"), "no stale queue figures: {metrics}");
}

#[tokio::test]
async fn readyz_refuses_a_database_behind_this_builds_migrations() {
    let app = spawn_app().await;
    app.query(
        "DELETE FROM refinery_schema_history WHERE version = (SELECT max(version) FROM refinery_schema_history)",
        &[],
    )
    .await;
    let behind = app.get("/readyz").await;
    assert_eq!(behind.status(), 503);
    let body: serde_json::Value = behind.json().await.expect("json");
    assert_eq!(body["reason"], "schema_behind", "{body}");
}

#[tokio::test]
async fn the_openapi_document_is_served_without_auth_and_describes_the_api() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    let document: serde_json::Value = response.json().await.expect("json");
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", document["openapi"]);
    for path in ["/api/v1/tags", "/api/v1/campaigns/{id}/send", "/api/v1/segments/{id}/members"] {
        assert!(document["paths"][path].is_object(), "{path}");
    }
    // The document's error shape is what the server answers.
    let (status, body) = app.api_get("/tags/999999").await;
    assert_eq!(status, 404);
    assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{body}");
    assert_eq!(
        document["paths"]["/api/v1/tags/{id}"]["get"]["responses"]["404"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
}

#[tokio::test]
async fn values_postgres_cannot_store_are_refused_as_bad_input_not_as_an_outage() {
    let app = spawn_app().await;
    // No tag in the expression: an unknown one would be refused first (issue 20).
    let (status, body) = app.api_post("/segments", json!({"name": "a\u{0}b", "expr": "orders(all) >= 1"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");
    let (status, body) = app.api_get("/users/o%00user").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.api_post("/rules", json!({"on": "keyword", "key": "k\u{0}", "reply": "hi"})).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_known_api_path_asked_with_another_method_answers_405_naming_the_allowed_ones() {
    let app = spawn_app().await;
    let response = app
        .http
        .put(format!("{}/api/v1/tags", app.address))
        .bearer_auth(crate::support::app::API_TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST, GET");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "method_not_allowed");
    // Unknown paths stay 404, and the calls themselves still work.
    assert_eq!(app.api_get("/nowhere").await.0, 404);
    assert_eq!(app.api_get("/tags").await.0, 200);
}
