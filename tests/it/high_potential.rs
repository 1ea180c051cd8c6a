//! Issue 21, point 5: 高潜力客户, the built-in dynamic tag defined on the 预测 page from the purchase
//! score, recent interaction (`active(Nd)`) and intent tags; offered only while the model is
//! trusted, and emptied when its scores are dropped.

use reqwest::StatusCode;
use serde_json::json;

use crate::admin_pages::{Browser, PASSWORD};
use crate::predictions::seed_history;
use crate::support::app::{TestApp, spawn_app, text_message};

const MEMBERS: &str = "SELECT ft.openid FROM follower_tags ft JOIN tags t ON t.id = ft.tag_id WHERE t.path = '预测/高潜力客户' ORDER BY 1";

async fn members(app: &TestApp) -> Vec<String> {
    app.settle().await;
    app.query(MEMBERS, &[]).await.iter().map(|r| r.get(0)).collect()
}

/// Followers scored at least `p` with an interaction event in the last `days` days, by SQL.
async fn expected(app: &TestApp, p: f32, days: i32) -> Vec<String> {
    app.query(
        "SELECT s.openid FROM follower_scores s WHERE s.score >= $1 AND EXISTS (
            SELECT 1 FROM events e WHERE e.openid = s.openid
              AND e.kind IN ('click', 'view', 'text', 'subscribe', 'scan')
              AND e.occurred_at >= now() - make_interval(days => $2))
         ORDER BY 1",
        &[&p, &days],
    )
    .await
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Rows written behind the server's back: the audience index reloads.
async fn bump_epoch(app: &TestApp) {
    app.query("UPDATE account_audience_epochs SET epoch = epoch + 1 WHERE account_id = 1", &[]).await;
}

async fn when_of(app: &TestApp) -> Option<String> {
    app.query("SELECT when_expr FROM tags WHERE path = '预测/高潜力客户'", &[]).await.first().and_then(|r| r.get(0))
}

async fn staff() -> TestApp {
    let app = spawn_app().await;
    app.create_admin("root", PASSWORD, "admin").await;
    app.create_admin("olivia", PASSWORD, "operator").await;
    app
}

async fn save(browser: &mut Browser, form: &[(&str, &str)]) -> crate::admin_pages::Page {
    browser.get("/admin/predictions").await;
    browser.post("/admin/predictions/high-potential", form).await
}

#[tokio::test]
async fn high_potential_customers_follow_the_score_recent_interaction_and_chosen_intents() {
    let app = staff().await;
    seed_history(&app, 2_000, 21).await;
    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;

    // Before any trusted run the section explains and refuses.
    let page = olivia.get("/admin/predictions").await;
    assert!(page.body.contains("高潜力客户") && page.body.contains("暂不能启用"), "{}", page.body);
    assert!(!page.body.contains("id=\"hp-form\""));
    let page = save(&mut olivia, &[("probability", "0.3"), ("days", "14")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("不是「可信」"), "{}", page.body);
    assert_eq!(when_of(&app).await, None);

    let client = app.jobs.pool.get().await.expect("db");
    tagcast::app::predictions::queue_run(&client, tagcast::domain::account::AccountId::FIRST, "root")
        .await
        .expect("queued");
    app.run_pending_jobs().await;
    let verdict = app.query("SELECT verdict FROM prediction_runs", &[]).await;
    assert_eq!(verdict[0].get::<_, Option<String>>(0).as_deref(), Some("trusted"));

    // A likely buyer who has not interacted for a month, and one who has never been active:
    // their recent clicks are taken away (the scores stay).
    let high: Vec<String> = app
        .query("SELECT openid FROM follower_scores WHERE score >= 0.3 ORDER BY score DESC, openid LIMIT 3", &[])
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (quiet, talker) = (&high[0], &high[1]);
    app.query("DELETE FROM events WHERE openid = $1 AND occurred_at > now() - interval '30 days'", &[quiet]).await;
    bump_epoch(&app).await;

    // Operators may enable it; nonsense is refused in Chinese and changes nothing.
    let page = olivia.get("/admin/predictions").await;
    assert!(page.body.contains("id=\"hp-form\"") && page.body.contains("启用"), "{}", page.body);
    for (p, d, said) in
        [("1.5", "14", "概率阈值"), ("0", "14", "概率阈值"), ("0.3", "0", "1 到 365"), ("0.3", "366", "1 到 365")]
    {
        let page = save(&mut olivia, &[("probability", p), ("days", d)]).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{p} {d}");
        assert!(page.body.contains(said), "{p} {d}: {}", page.body);
        assert!(page.body.contains(&format!("value=\"{p}\"")), "what was typed is kept");
        crate::support::english::assert_no_english("the refused 高潜力客户 form", &page.body);
    }
    assert_eq!(when_of(&app).await, None);

    let page = save(&mut olivia, &[("probability", "0.3"), ("days", "14"), ("join", "either")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(when_of(&app).await.as_deref(), Some("score(purchase_7d) >= 0.3 AND active(14d)"));
    let local = app.query("SELECT mirrored FROM tags WHERE path = '预测/高潜力客户'", &[]).await;
    assert!(!local[0].get::<_, bool>(0), "local-only");
    app.run_pending_jobs().await;
    let now_members = members(&app).await;
    assert_eq!(now_members, expected(&app, 0.3, 14).await);
    assert!(now_members.len() > 100, "{}", now_members.len());
    assert!(!now_members.contains(quiet), "a high score without recent interaction is not enough");
    let low = app.count("SELECT count(*) FROM follower_scores WHERE score < 0.3").await;
    assert!(low > 1_000, "most followers score low and are left out");
    let page = olivia.get("/admin/predictions").await;
    assert!(page.body.contains(&format!("目前有 <strong>{}</strong> 位粉丝", now_members.len())), "{}", page.body);

    // A message today makes one of them the only follower active in the last day.
    assert!(now_members.contains(talker), "{talker}");
    app.push(&text_message(talker, "请问最近有优惠吗", 915_000)).await;
    let reply = app.push_for_reply(&text_message(talker, "我的标签", 915_001)).await;
    assert!(reply.contains("推测的标签") && reply.contains("预测/高潜力客户"), "a guess: {reply}");
    let page = save(&mut olivia, &[("probability", "0.3"), ("days", "1")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    app.run_pending_jobs().await;
    assert_eq!(members(&app).await, std::slice::from_ref(talker));

    // An intent tag counts as engagement, or is required on top of it.
    let (status, body) = app.api_post("/tags", json!({"path": "意图/咨询价格", "wechat": false})).await;
    assert_eq!(status, 201, "{body}");
    app.query(
        "INSERT INTO follower_tags (openid, tag_id, source) SELECT $1, id, 'test' FROM tags WHERE path = '意图/咨询价格'",
        &[quiet],
    )
    .await;
    bump_epoch(&app).await;
    let page = olivia.get("/admin/predictions").await;
    assert!(page.body.contains("value=\"意图/咨询价格\""), "the intent tag is offered: {}", page.body);
    let form = [("probability", "0.3"), ("days", "1"), ("intent", "意图/咨询价格"), ("join", "either")];
    assert_eq!(save(&mut olivia, &form).await.status, StatusCode::SEE_OTHER);
    app.run_pending_jobs().await;
    let mut both = vec![quiet.clone(), talker.clone()];
    both.sort();
    assert_eq!(members(&app).await, both);
    let form = [("probability", "0.3"), ("days", "1"), ("intent", "意图/咨询价格"), ("join", "required")];
    assert_eq!(save(&mut olivia, &form).await.status, StatusCode::SEE_OTHER);
    app.run_pending_jobs().await;
    assert!(members(&app).await.is_empty(), "nobody is both active today and asking about prices");
    let page = olivia.get("/admin/predictions").await;
    assert!(page.body.contains("而且带有意图标签（意图/咨询价格之一）"), "{}", page.body);

    // Every change is in the audit log, in words.
    let audited = app.count("SELECT count(*) FROM audit_log WHERE object_kind = 'tag' AND actor = 'olivia'").await;
    assert_eq!(audited, 4, "enabled once, changed three times");
    let mut root = Browser::log_in(&app, "root", PASSWORD).await;
    let log = root.get("/admin/audit").await;
    assert!(log.body.contains("动态条件由 score(purchase_7d) &#62;= 0.3 AND active(1d) 改为"), "{}", log.body);

    // The model stops being trusted (too little history) and its week-old scores are dropped:
    // the tag empties and the section refuses again.
    let form = [("probability", "0.3"), ("days", "14")];
    assert_eq!(save(&mut olivia, &form).await.status, StatusCode::SEE_OTHER);
    app.run_pending_jobs().await;
    assert!(!members(&app).await.is_empty());
    app.query("UPDATE follower_scores SET scored_at = now() - interval '8 days'", &[]).await;
    app.query("DELETE FROM orders", &[]).await;
    tagcast::app::predictions::queue_run(&client, tagcast::domain::account::AccountId::FIRST, "root")
        .await
        .expect("queued");
    app.run_pending_jobs().await;
    let verdict = app.query("SELECT verdict FROM prediction_runs ORDER BY id DESC LIMIT 1", &[]).await;
    assert_eq!(verdict[0].get::<_, Option<String>>(0).as_deref(), Some("too_little_history"));
    tagcast::jobs::refresh_dynamic_tags::enqueue_scheduled(&client).await.expect("queued");
    app.run_pending_jobs().await;
    assert!(members(&app).await.is_empty(), "no score, no 高潜力客户");
    let page = olivia.get("/admin/predictions").await;
    assert!(page.body.contains("暂不能启用") && !page.body.contains("id=\"hp-form\""), "{}", page.body);
    let before = when_of(&app).await;
    let page = save(&mut olivia, &[("probability", "0.5"), ("days", "14")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(when_of(&app).await, before, "a refused save changes nothing");
}

/// A trusted run as the page reads it, without training (the layout test needs no model).
async fn trusted_run(app: &TestApp) {
    app.query(
        "INSERT INTO prediction_runs (account_id, model, requested_by, status, finished_at, verdict, verdict_zh, figures, scored)
         VALUES (1, 'purchase_7d', 'root', 'done', now(), 'trusted', '模型明显胜过基线，可以放心使用。', '{}', 0)",
        &[],
    )
    .await;
}

#[tokio::test]
async fn a_hand_edited_condition_is_shown_and_saving_replaces_it() {
    let app = staff().await;
    trusted_run(&app).await;
    let (status, body) = app
        .api_post("/tags", json!({"path": "预测/高潜力客户", "when": "score(purchase_7d) >= 0.8", "wechat": false}))
        .await;
    assert_eq!(status, 201, "{body}");
    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = olivia.get("/admin/predictions").await;
    assert!(
        page.body.contains("id=\"hp-edited\"") && page.body.contains("score(purchase_7d) &#62;= 0.8"),
        "{}",
        page.body
    );
    assert_eq!(save(&mut olivia, &[("probability", "0.4"), ("days", "30")]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(when_of(&app).await.as_deref(), Some("score(purchase_7d) >= 0.4 AND active(30d)"));
    let page = olivia.get("/admin/predictions").await;
    assert!(!page.body.contains("id=\"hp-edited\"") && page.body.contains("value=\"0.4\""), "{}", page.body);
    // Saving the same again is no change and no audit row.
    let before = app.count("SELECT count(*) FROM audit_log").await;
    save(&mut olivia, &[("probability", "0.4"), ("days", "30")]).await;
    assert_eq!(app.count("SELECT count(*) FROM audit_log").await, before);
}

#[tokio::test]
async fn the_high_potential_section_reads_on_a_phone_and_a_desktop() {
    use crate::admin_browser::{browser, chromium_missing, fits_phone_and_desktop, log_in, start_driver};
    if chromium_missing() {
        return;
    }
    let app = staff().await;
    trusted_run(&app).await;
    for path in ["意图/咨询价格", "意图/想要优惠", "意图/询问物流进度"] {
        let (status, body) = app.api_post("/tags", json!({"path": path, "wechat": false})).await;
        assert_eq!(status, 201, "{body}");
    }
    let driver = start_driver().await;
    let page = browser(&driver).await;
    page.goto(&format!("{}/admin/login", app.address)).await.expect("login page");
    log_in(&page, "root").await;
    let shows = [("#hp", "近 14 天内和公众号有过互动"), ("#hp-form", "意图/询问物流进度")];
    fits_phone_and_desktop(&page, &app.address, "/admin/predictions#high-potential", &shows, "high-potential").await;
    page.close().await.expect("closed");
}
