//! The tags page's 同步到微信: tag changes still on their way to WeChat, the ones WeChat refused
//! for good with its reason in Chinese, and 重新尝试 once the operator has fixed the cause.

use reqwest::StatusCode;
use serde_json::json;

use crate::admin_pages::{Browser, PASSWORD};
use crate::support::app::{event, now, spawn_app};

#[tokio::test]
async fn a_change_wechat_refused_is_explained_in_chinese_and_retried_once_the_cause_is_fixed() {
    let app = spawn_app().await;
    app.create_admin("olivia", PASSWORD, "operator").await;
    let fans = app.wechat.seed_followers(2);
    // Fan 0 already carries WeChat's 20 tags, made in WeChat's own console.
    let console_tags: Vec<i64> = (0..20).map(|i| app.wechat.create_tag(&format!("控制台{i}")).expect("tag")).collect();
    for &id in &console_tags {
        app.wechat.tag_followers(id, &fans[..1]);
    }
    let (status, body) = app.api_post("/rules", json!({"on": "click", "key": "A", "add": ["兴趣/甲"]})).await;
    assert_eq!(status, 201, "{body}");
    let t = now();
    for fan in &fans {
        assert_eq!(app.push(&event(fan, "CLICK", Some("A"), t)).await.status(), 200);
    }
    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = olivia.get("/admin/tags").await;
    assert!(page.body.contains("等待同步：2 条"), "{}", page.body);

    app.run_pending_jobs().await;
    let page = olivia.get("/admin/tags").await;
    assert!(page.body.contains("微信拒绝、已停止重试：1 条"), "{}", page.body);
    assert!(
        page.body.contains("该粉丝的标签已达上限（每人 20 个）") && page.body.contains("先移除该粉丝不再需要的标签"),
        "WeChat's reason and what to do, in Chinese: {}",
        page.body
    );
    for english in ["errcode", "WeChat answered", "45059:"] {
        assert!(!page.body.contains(english), "{english} reached the page");
    }

    // The operator frees a place in WeChat's console, then asks for another try.
    app.wechat.untag_followers(console_tags[0], &fans[..1]);
    let page = olivia.post("/admin/tags/sync/retry", &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    app.run_pending_jobs().await;
    let wechat_id: i64 = app.query("SELECT wechat_tag_id FROM tags WHERE path = '兴趣/甲'", &[]).await[0].get(0);
    assert!(app.wechat.user_tags(&fans[0]).contains(&wechat_id), "the refused change went through");
    let page = olivia.get("/admin/tags").await;
    assert!(page.body.contains("所有标签变更都已同步到微信"), "{}", page.body);
    assert!(page.body.contains("已重新尝试 1 条标签变更"), "the flash says what happened: {}", page.body);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'retry' AND object_kind = 'wechat_sync'").await,
        1
    );
    let log = olivia.get("/admin/audit").await;
    assert!(
        log.body.contains("重新尝试") && log.body.contains("微信拒绝过的 1 条标签变更重新开始尝试"),
        "{}",
        log.body
    );

    let page = olivia.post("/admin/tags/sync/retry", &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(olivia.get("/admin/tags").await.body.contains("没有需要重新尝试的标签变更"));
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'retry'").await,
        1,
        "nothing retried, nothing logged"
    );
}
