//! How a mass job ended, as the operator reads it (issue 18 point 6): the mock finishes jobs
//! with `err(n)` statuses, under mass-send protection, with ErrorCount > 0 and with
//! CopyrightCheckResult items; the campaign's API and page say each outcome in Chinese with
//! what to do, and the counts add up.

use std::collections::HashMap;

use serde_json::{Value, json};
use tagcast::mock_wechat::{MassOutcome, MassProtection};
use tagcast::wechat::api::{MassMessage, SendAllAudience};
use tagcast::wechat::message::CopyrightCheckItem;

use crate::admin_pages::{Browser, PASSWORD};
use crate::support::app::{TestApp, spawn_app_with};

async fn spawn() -> TestApp {
    spawn_app_with(|vars: &mut HashMap<String, String>| {
        vars.insert("TAGCAST_WECHAT_RATE_LIMITS".into(), "default=2000,/cgi-bin/message/mass/sendall=200".into());
    })
    .await
}

async fn followers(app: &TestApp, n: usize) {
    app.wechat.seed_followers(n);
    tagcast::app::sync::run_sync(&app.jobs.pool, &app.api, |_| {}).await.expect("sync");
}

/// Creates a campaign to every follower, sends it, and waits for WeChat's result.
async fn send_to_all(app: &TestApp, content: &str) -> i64 {
    let body = json!({"name": content, "audience": {"all": true}, "message": {"type": "text", "content": content}});
    let (status, created) = app.api_post("/campaigns", body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    let (status, sent) = app.api_post(&format!("/campaigns/{id}/send"), json!({})).await;
    assert_eq!(status, 202, "{sent}");
    app.run_pending_jobs().await;
    app.wechat.wait_for_callbacks().await;
    app.run_pending_jobs().await;
    id
}

async fn campaign(app: &TestApp, id: i64) -> Value {
    let (status, body) = app.api_get(&format!("/campaigns/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn page(app: &TestApp, id: i64) -> String {
    app.create_admin("root", PASSWORD, "admin").await;
    let mut browser = Browser::log_in(app, "root", PASSWORD).await;
    let page = browser.get(&format!("/admin/campaigns/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.body
}

#[tokio::test]
async fn a_send_to_all_the_admin_rejects_under_protection_reads_as_admin_rejected() {
    let app = spawn().await;
    followers(&app, 6).await;
    app.wechat.set_mass_protection(MassProtection::Reject);
    let id = send_to_all(&app, "全员通知").await;

    let jobs = app.wechat.mass_jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].result, "err(40001)");
    assert!(app.wechat.mass_recipients(jobs[0].msg_id).is_empty(), "nothing went out");
    let shown = campaign(&app, id).await;
    assert_eq!(shown["status"], "failed", "{shown}");
    assert_eq!(shown["counts"]["sent"], 0);
    let result = &shown["results"][0];
    assert_eq!(result["status"], "err(40001)");
    assert_eq!(result["outcome"]["state"], "failed");
    assert_eq!(result["outcome"]["label"], "管理员拒绝群发");
    let failures = shown["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let failure = failures[0].as_str().unwrap();
    assert!(failure.starts_with("管理员拒绝群发（1 次）："), "{failure}");
    assert!(failure.contains("群发保护") && failure.contains("请与管理员确认后重新发送"), "{failure}");
    assert_eq!(shown["last_error"], failure, "the campaign says why it failed");

    let body = page(&app, id).await;
    assert!(body.contains("管理员拒绝群发"), "the page says it");
    assert!(body.contains("id=\"campaign-failures\""));
    assert!(body.contains("data-state=\"failed\""));
}

#[tokio::test]
async fn protection_without_an_answer_ends_at_forty_thousand_two_and_spares_tag_sends() {
    let app = spawn().await;
    followers(&app, 4).await;
    app.wechat.set_mass_protection(MassProtection::NoAnswer);
    let id = send_to_all(&app, "无人确认").await;
    let shown = campaign(&app, id).await;
    assert_eq!(shown["results"][0]["outcome"]["label"], "管理员未在30分钟内确认", "{shown}");
    assert!(shown["failures"][0].as_str().unwrap().contains("30 分钟"));
    // Only sends to everyone need the admin: a sendall to a tag goes out as usual.
    let tag = app.wechat.create_tag("会员").unwrap();
    let message = MassMessage::Text { content: "会员日".into() };
    let accepted = app.api.mass_send_all(SendAllAudience::Tag(tag), &message, "member-day").await.expect("accepted");
    app.wechat.wait_for_callbacks().await;
    let job = app.wechat.mass_jobs().pop().unwrap();
    assert_eq!((job.msg_id as i64, job.result.as_str()), (accepted.msg_id, "send success"));
}

#[tokio::test]
async fn a_reprint_stops_the_send_and_the_page_names_the_original() {
    let app = spawn().await;
    followers(&app, 3).await;
    app.wechat.set_next_mass_outcome(MassOutcome {
        status: Some("err(30003)".into()),
        copyright_items: vec![CopyrightCheckItem {
            article_idx: Some(1),
            user_declare_state: Some(0),
            audit_state: Some(2),
            original_article_url: Some("http://mp.weixin.qq.com/s/the-original".into()),
            original_article_type: Some(1),
            can_reprint: Some(0),
            need_replace_content: Some(0),
            need_show_reprint_source: Some(1),
        }],
        check_state: Some(3),
        ..MassOutcome::default()
    });
    let id = send_to_all(&app, "转载的文章").await;

    let shown = campaign(&app, id).await;
    assert_eq!(shown["status"], "failed", "{shown}");
    let result = &shown["results"][0];
    assert_eq!(result["outcome"]["label"], "原创校验未通过（判定为转载）");
    assert!(result["outcome"]["advice"].as_str().unwrap().contains("请改用原创内容"));
    assert_eq!(
        result["copyright"],
        json!(["第 1 篇与原文 http://mp.weixin.qq.com/s/the-original 相符，原文不允许转载。"])
    );
    let stored: Value = app
        .query("SELECT copyright FROM mass_job_results", &[])
        .await
        .first()
        .map(|r| r.get(0))
        .expect("the result is stored");
    assert_eq!(stored["check_state"], 3);

    let body = page(&app, id).await;
    assert!(body.contains("原创校验未通过（判定为转载）"));
    assert!(body.contains("http://mp.weixin.qq.com/s/the-original"));
}

#[tokio::test]
async fn followers_wechat_could_not_reach_are_counted_as_failed_and_the_rest_as_sent() {
    let app = spawn().await;
    followers(&app, 10).await;
    app.wechat.set_next_mass_outcome(MassOutcome { error_count: 3, ..MassOutcome::default() });
    let id = send_to_all(&app, "部分失败").await;

    let job = app.wechat.mass_jobs().pop().unwrap();
    assert_eq!((job.total, job.filter, job.sent, job.error), (10, 10, 7, 3));
    assert_eq!(app.wechat.mass_recipients(job.msg_id).len(), 7);
    let shown = campaign(&app, id).await;
    assert_eq!(shown["status"], "sent", "{shown}");
    assert_eq!(shown["counts"], json!({"total": 10, "filter": 10, "sent": 7, "error": 3}));
    let result = &shown["results"][0];
    assert_eq!((result["sent"].as_i64(), result["error"].as_i64()), (Some(7), Some(3)));
    assert_eq!(result["outcome"]["state"], "sent");
    assert_eq!(result["outcome"]["label"], "群发成功，部分未送达");
    assert!(shown["failures"].as_array().unwrap().is_empty(), "nothing to redo");

    let body = page(&app, id).await;
    assert!(body.contains("id=\"count-sent\">7<"), "送达 7");
    assert!(body.contains("id=\"count-failed\">3<"), "失败 3");
    assert!(body.contains("目标人数 10 = 送达 7 + 被过滤 0 + 失败 3"), "the counts add up");
    assert!(body.contains("3 人发送失败"));
}

/// On a phone: the campaign page with WeChat's verdict and the board with a stopped API (the
/// sections this issue added) fit 390 px and read in Chinese.
#[tokio::test]
async fn the_outcome_and_the_stopped_api_fit_a_390_px_phone_in_chromium() {
    if crate::admin_browser::chromium_missing() {
        return;
    }
    let app = spawn().await;
    followers(&app, 4).await;
    app.wechat.set_mass_protection(MassProtection::Reject);
    let id = send_to_all(&app, "全员通知：本周会员日，全场满 199 减 30，点击菜单「会员中心」领取").await;
    app.wechat.set_daily_quota("/cgi-bin/tags/get", 0);
    app.api.list_tags().await.expect_err("the day's quota is used up");
    app.create_admin("root", PASSWORD, "admin").await;

    let base = &app.address;
    let (_driver, client) = crate::admin_browser::phone_logged_in(base, "root").await;
    for (path, expected) in [(format!("/admin/campaigns/{id}"), "管理员拒绝群发"), ("/admin".to_owned(), "清零")]
    {
        client.goto(&format!("{base}{path}")).await.expect("page");
        let body = crate::admin_browser::text_of(&client, "main").await;
        assert!(body.contains(expected), "{path}: {body}");
        let overflow = crate::admin_browser::sideways_overflow(&client).await;
        crate::admin_browser::screenshot(&client, &format!("issue18-390{}", path.replace('/', "-"))).await;
        assert!(overflow <= 0, "{path} scrolls sideways by {overflow}");
    }
}
