//! tagcast under WeChat's quotas: a used-up daily quota (45009) stops the API until Beijing
//! midnight and the campaign waits for it; `clear_quota` is an audited admin action; an
//! over-long text is refused when composed; customer-service messages only inside the window.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tagcast::mock_wechat::Interaction;
use tagcast::wechat::api::{CustomMessage, ErrCode};

use crate::admin_pages::{Browser, PASSWORD};
use crate::support::app::{TestApp, spawn_app_with, text_message};

const SENDALL: &str = "/cgi-bin/message/mass/sendall";

/// Mass APIs paced far above WeChat's 60/min, so tests do not wait on the limiter.
async fn spawn() -> TestApp {
    spawn_app_with(|vars: &mut HashMap<String, String>| {
        vars.insert(
            "TAGCAST_WECHAT_RATE_LIMITS".into(),
            "default=2000,/cgi-bin/message/mass/send=200,/cgi-bin/message/mass/sendall=200".into(),
        );
    })
    .await
}

async fn sync_followers(app: &TestApp, n: usize) -> Vec<String> {
    let openids = app.wechat.seed_followers(n);
    tagcast::app::sync::run_sync(&app.jobs.pool, &app.api, |_| {}).await.expect("sync");
    openids
}

async fn campaign(app: &TestApp, id: i64) -> Value {
    let (status, body) = app.api_get(&format!("/campaigns/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn deliver(app: &TestApp) {
    app.run_pending_jobs().await;
    app.wechat.wait_for_callbacks().await;
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn a_campaign_meeting_45009_waits_for_beijing_midnight_shows_it_and_resumes_by_itself() {
    let app = spawn().await;
    app.create_admin("root", PASSWORD, "admin").await;
    sync_followers(&app, 5).await;
    app.wechat.set_daily_quota(SENDALL, 0);
    let (status, body) = app
        .api_post(
            "/campaigns",
            json!({"name": "周末活动", "audience": {"all": true}, "message": {"type": "text", "content": "周末见"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();
    let (status, body) = app.api_post(&format!("/campaigns/{id}/send"), json!({})).await;
    assert_eq!(status, 202, "{body}");
    deliver(&app).await;

    // One refusal, no retries: the API is stopped, the campaign still sending, its call pending.
    assert_eq!(app.wechat.call_count(SENDALL), 1);
    let shown = campaign(&app, id).await;
    assert_eq!(shown["status"], "sending", "{shown}");
    let note = shown["last_error"].as_str().unwrap_or_default().to_owned();
    assert_eq!(app.count("SELECT count(*) FROM campaign_chunks WHERE state = 'pending' AND attempts = 0").await, 1);
    let until: chrono::DateTime<chrono::Utc> =
        app.query("SELECT until FROM wechat_api_stops WHERE path = $1", &[&SENDALL]).await[0].get(0);
    assert_eq!(until, tagcast::wechat::api::quota::quota_resumes_at(app.clock.now()));
    let resumes = tagcast::domain::calendar::beijing_minute(until);
    let expected = format!(
        "今日接口额度已用完，将于 {}（北京时间）自动继续",
        tagcast::domain::calendar::beijing(until).format("%-m月%-d日 %H:%M")
    );
    assert!(note.starts_with(&expected), "{note}");
    let run_at: chrono::DateTime<chrono::Utc> =
        app.query("SELECT run_at FROM jobs WHERE kind = 'send_campaign' AND state = 'pending'", &[]).await[0].get(0);
    assert_eq!(run_at, until, "the job waits for the stop's end");

    // Shown on the campaign page, the board and /metrics.
    let mut browser = Browser::log_in(&app, "root", PASSWORD).await;
    let page = browser.get(&format!("/admin/campaigns/{id}")).await;
    assert!(page.body.contains(&expected), "{}", page.body);
    let board = browser.get("/admin").await;
    assert!(board.body.contains(SENDALL) && board.body.contains(&resumes), "{}", board.body);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let line = format!(
        "tagcast_wechat_api_stopped_until_seconds{{appid=\"{}\",path=\"{SENDALL}\"}} {}",
        app.api.appid(),
        until.timestamp()
    );
    assert!(metrics.contains(&line), "{metrics}");

    // Even if the job ran early, the stopped API is not called.
    app.query("UPDATE jobs SET run_at = now() WHERE state = 'pending'", &[]).await;
    deliver(&app).await;
    assert_eq!(app.wechat.call_count(SENDALL), 1, "a stopped API is not called before midnight");

    // Past Beijing midnight on both clocks, the send goes out and the note goes away.
    app.clock.advance(chrono::Duration::days(1));
    app.wechat.advance_time(Duration::from_secs(86_400));
    app.wechat.set_daily_quota(SENDALL, 100);
    app.query("UPDATE jobs SET run_at = now() WHERE state = 'pending'", &[]).await;
    deliver(&app).await;
    // (The day also expired the access token: one call may have been refused for it and repeated.)
    let answered: Vec<i64> = app.wechat.calls().iter().filter(|c| c.path == SENDALL).map(|c| c.errcode).collect();
    assert_eq!(answered.iter().filter(|c| **c == 0).count(), 1, "{answered:?}");
    assert_eq!(answered.iter().filter(|c| **c == 45009).count(), 1, "{answered:?}");
    let shown = campaign(&app, id).await;
    assert_eq!(shown["status"], "sent", "{shown}");
    assert!(!shown["last_error"].as_str().unwrap_or_default().contains("今日接口额度"), "{shown}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(!metrics.contains(&format!("path=\"{SENDALL}\"")), "{metrics}");
}

#[tokio::test]
async fn clear_quota_from_the_board_is_audited_counted_and_ends_the_stops() {
    let app = spawn().await;
    app.create_admin("root", PASSWORD, "admin").await;
    app.create_admin("olivia", PASSWORD, "operator").await;
    app.wechat.set_daily_quota("/cgi-bin/tags/get", 0);
    let error = app.api.list_tags().await.expect_err("quota used up");
    assert_eq!(error.code(), Some(ErrCode::DailyQuotaExceeded));
    assert_eq!(app.count("SELECT count(*) FROM wechat_api_stops").await, 1);

    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    assert!(!operator.get("/admin").await.body.contains("clear-quota-button"));
    let refused = operator.post("/admin/quota/clear", &[("confirm", "1")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let mut root = Browser::log_in(&app, "root", PASSWORD).await;
    let board = root.get("/admin").await;
    assert!(board.body.contains("本月已用 0/10") && board.body.contains("/cgi-bin/tags/get"), "{}", board.body);
    let unconfirmed = root.post("/admin/quota/clear", &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::SEE_OTHER);
    assert_eq!(app.wechat.quota_clears_this_month(), 0, "nothing without the confirmation");
    let cleared = root.post("/admin/quota/clear", &[("confirm", "1")]).await;
    assert_eq!(cleared.status, StatusCode::SEE_OTHER);
    let board = root.get("/admin").await;
    assert!(board.body.contains("本月已用 1/10"), "{}", board.body);
    assert!(board.body.contains("所有接口均可调用"), "{}", board.body);
    assert_eq!(app.wechat.quota_clears_this_month(), 1);
    assert_eq!(app.count("SELECT count(*) FROM wechat_api_stops").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM audit_log WHERE action = 'clear_quota' AND actor = 'root'").await, 1);

    // The API does the same for the bearer token, up to the month's ten.
    for n in 2..=10 {
        let (status, body) = app.api_post("/wechat/clear_quota", json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["clears_this_month"], n);
    }
    let (status, body) = app.api_post("/wechat/clear_quota", json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("本月的接口额度清零次数已用完"), "{body}");
    assert_eq!(app.wechat.quota_clears_this_month(), 10, "the eleventh was not asked of WeChat");
    let (_, quota) = app.api_get("/wechat/quota").await;
    assert_eq!(quota["clears_this_month"], 10, "{quota}");
}

#[tokio::test]
async fn an_over_long_campaign_text_is_refused_in_chinese_and_creates_nothing() {
    let app = spawn().await;
    let over = "字".repeat(683); // 2049 bytes, 683 characters
    let (status, body) = app
        .api_post(
            "/campaigns",
            json!({"name": "太长", "audience": {"all": true}, "message": {"type": "text", "content": over}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("文本超过 2048 字节") && message.contains("2049"), "{message}");
    assert_eq!(app.count("SELECT count(*) FROM campaigns").await, 0);
    let fits = "字".repeat(682);
    let (status, body) = app
        .api_post(
            "/campaigns",
            json!({"name": "正好", "audience": {"all": true}, "message": {"type": "text", "content": fits}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn customer_service_messages_go_only_inside_the_window_a_follower_opened() {
    let app = spawn().await;
    let fans = sync_followers(&app, 2).await;
    let hello = CustomMessage::Text { content: "您的测验结果已生成".to_owned() };
    let send = async |app: &TestApp, openid: &str| {
        let account = tagcast::domain::account::AccountId(1);
        tagcast::app::quota::send_custom(&app.jobs.pool, &app.api, account, openid, &hello, &app.clock).await
    };

    // No interaction recorded: refused before WeChat is asked, with the reason.
    let refused = send(&app, &fans[0]).await.expect_err("outside the window");
    assert!(refused.to_string().contains("48 小时内没有给公众号发过消息"), "{refused}");
    assert_eq!(app.wechat.call_count("/cgi-bin/message/custom/send"), 0);

    // The follower writes: tagcast sees the push, WeChat opens the window.
    assert_eq!(app.push(&text_message(&fans[0], "你好", 81_000_001)).await.status(), 200);
    app.wechat.open_interaction(&fans[0], Interaction::Message);
    send(&app, &fans[0]).await.expect("inside the window");
    assert_eq!(app.wechat.custom_messages().len(), 1);

    // 48 hours later the window is shut again on both sides.
    app.clock.advance(chrono::Duration::hours(49));
    let refused = send(&app, &fans[0]).await.expect_err("window over");
    assert!(refused.to_string().contains("微信不允许主动发送客服消息"), "{refused}");
    assert_eq!(app.wechat.call_count("/cgi-bin/message/custom/send"), 1);
}

#[tokio::test]
async fn tag_changes_meeting_45009_wait_for_midnight_without_dying_and_then_reach_wechat() {
    let app = spawn().await;
    let fans = sync_followers(&app, 1).await;
    app.wechat.set_daily_quota("/cgi-bin/tags/members/batchtagging", 0);
    let (status, body) = app.api_post("/rules", json!({"on": "keyword", "key": "油皮", "add": ["肤质/油性"]})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(app.push(&text_message(&fans[0], "油皮", 82_000_001)).await.status(), 200);
    app.run_pending_jobs().await;
    app.run_pending_jobs().await;

    assert_eq!(app.wechat.call_count("/cgi-bin/tags/members/batchtagging"), 1, "one 45009, no retries");
    let rows = app.query("SELECT state, run_at, attempts FROM tag_outbox", &[]).await;
    assert_eq!(rows.len(), 1);
    let (state, run_at): (String, chrono::DateTime<chrono::Utc>) = (rows[0].get(0), rows[0].get(1));
    assert_eq!(state, "pending");
    assert_eq!(run_at, tagcast::wechat::api::quota::quota_resumes_at(app.clock.now()));

    app.clock.advance(chrono::Duration::days(1));
    app.wechat.advance_time(Duration::from_secs(86_400));
    app.wechat.set_daily_quota("/cgi-bin/tags/members/batchtagging", 1_000_000);
    app.query("UPDATE tag_outbox SET run_at = now()", &[]).await;
    app.run_pending_jobs().await;
    let tag = app.wechat.tags().into_iter().find(|t| t.1 == "肤质/油性").expect("on WeChat").0;
    assert_eq!(app.wechat.user_tags(&fans[0]), vec![tag]);
    assert_eq!(app.count("SELECT count(*) FROM tag_outbox WHERE state = 'pending'").await, 0);
}

/// A reset is spent to get things out today: what waited for midnight goes at once, and the
/// waiting spent none of its attempts.
#[tokio::test]
async fn clear_quota_sends_the_tag_changes_that_waited_for_midnight_at_once() {
    let app = spawn().await;
    let fans = sync_followers(&app, 1).await;
    app.wechat.set_daily_quota("/cgi-bin/tags/members/batchtagging", 0);
    let (status, body) = app.api_post("/rules", json!({"on": "keyword", "key": "干皮", "add": ["肤质/干性"]})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(app.push(&text_message(&fans[0], "干皮", 82_000_002)).await.status(), 200);
    app.run_pending_jobs().await;
    app.run_pending_jobs().await;
    let rows = app.query("SELECT attempts, run_at > now() FROM tag_outbox", &[]).await;
    let (attempts, waiting): (i32, bool) = (rows[0].get(0), rows[0].get(1));
    assert_eq!((attempts, waiting), (0, true), "a quota wait spends no attempt");

    app.wechat.set_daily_quota("/cgi-bin/tags/members/batchtagging", 1_000_000);
    let (status, body) = app.api_post("/wechat/clear_quota", json!({})).await;
    assert_eq!(status, 200, "{body}");
    app.run_pending_jobs().await;
    let tag = app.wechat.tags().into_iter().find(|t| t.1 == "肤质/干性").expect("on WeChat").0;
    assert_eq!(app.wechat.user_tags(&fans[0]), vec![tag], "sent right after the reset, not at midnight");
    let detail: serde_json::Value =
        app.query("SELECT detail FROM audit_log WHERE action = 'clear_quota'", &[]).await[0].get(0);
    assert_eq!(detail["waits_resumed"], 1, "{detail}");
}

/// The month has 10 resets: one WeChat refused is not counted; one whose answer never came may
/// have been made, so it is.
#[tokio::test]
async fn a_reset_wechat_refused_is_not_counted_and_one_without_an_answer_is() {
    let app = spawn().await;
    let clears = "SELECT count(*) FROM wechat_quota_clears";
    app.wechat.fail_next("/cgi-bin/clear_quota", 1, 40013);
    let (status, body) = app.api_post("/wechat/clear_quota", json!({})).await;
    assert_ne!(status, 200, "{body}");
    assert_eq!(app.count(clears).await, 0, "WeChat refused it: not spent");

    app.wechat.fail_next_http("/cgi-bin/clear_quota", 10, 502);
    let (status, body) = app.api_post("/wechat/clear_quota", json!({})).await;
    assert_ne!(status, 200, "{body}");
    assert_eq!(app.count(clears).await, 1, "no answer: WeChat may have made it");
    app.wechat.clear_failures("/cgi-bin/clear_quota");

    let (status, body) = app.api_post("/wechat/clear_quota", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.count(clears).await, 2);
}
