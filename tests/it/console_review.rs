//! Outside review of issue 20 (console, second edition): reproductions of what the review found
//! broken. Each test states what the console should do; they fail on the merged code.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin_pages::{Browser, PASSWORD};
use crate::support::app::{TestApp, event, now, spawn_app, text_message};

const SENSITIVE: &str = "敏感/价格敏感";

async fn app_with_staff() -> TestApp {
    let app = spawn_app().await;
    app.create_admin("root", PASSWORD, "admin").await;
    app.create_admin("olivia", PASSWORD, "operator").await;
    app.create_admin("amy", PASSWORD, "approver").await;
    app
}

async fn stored_questions(app: &TestApp, id: &str) -> usize {
    let rows = app.query("SELECT spec FROM quizzes WHERE id = $1", &[&id]).await;
    let spec: Value = rows[0].get(0);
    spec["question"].as_array().or_else(|| spec["questions"].as_array()).map_or(0, Vec::len)
}

/// Point 1: "nothing destructive by accident". The quiz editor confirms an overwrite, but the
/// 配置文件 page's 导入 replaces the live quiz in one click, for an operator too.
#[tokio::test]
async fn importing_a_playbook_does_not_overwrite_a_live_quiz_without_a_confirmation() {
    let app = app_with_staff().await;
    let quiz = json!({
        "id": "skin",
        "intro": "回答 2 个问题",
        "question": [
            { "text": "一", "options": [ { "label": "A", "text": "油", "score": { "oily": 2 } }, { "label": "B", "text": "干" } ] },
            { "text": "二", "options": [ { "label": "A", "text": "是", "score": { "oily": 1 } }, { "label": "B", "text": "否" } ] }
        ],
        "result": [ { "tag": "肤质/油性", "score": "oily", "min": 2 } ]
    });
    let (status, body) = app.api_post("/quizzes", quiz).await;
    assert_eq!(status, 201, "{body}");
    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;
    olivia.get("/admin/playbook").await;
    let one = "[[quiz]]\nid = \"skin\"\nintro = \"一题\"\n  [[quiz.question]]\n  text = \"只有一题\"\n  options = [ { label = \"A\", text = \"是\" }, { label = \"B\", text = \"否\" } ]\n";
    let page = olivia.post("/admin/playbook/import", &[("source", one)]).await;
    assert_eq!(stored_questions(&app, "skin").await, 2, "one click replaced the live quiz: {}", page.body);
}

/// Point 3: playbook import results are shown in English ("2 created, 0 updated", "created rule").
#[tokio::test]
async fn the_playbook_import_result_is_chinese() {
    let app = app_with_staff().await;
    let mut root = Browser::log_in(&app, "root", PASSWORD).await;
    root.get("/admin/playbook").await;
    let source = "[[rule]]\non = \"click\"\nkey = \"K\"\nadd = [\"兴趣/新品\"]\n";
    let page = root.post("/admin/playbook/import", &[("source", source)]).await;
    for english in ["created", "updated", "unchanged", "named by rule"] {
        assert!(!page.body.contains(english), "English `{english}` on the page: {}", page.body);
    }
}

/// Three followers carrying a sensitive tag and an operator's campaign to them, sent and so
/// waiting for approval (the API answers 409): its id and the followers.
async fn sensitive_campaign_waiting(app: &TestApp, first_msg_id: u64) -> (i64, Vec<String>) {
    let fans = app.wechat.seed_followers(3);
    tagcast::app::sync::run_sync(&app.jobs.pool, &app.api, |_| {}).await.expect("sync");
    let (status, body) = app.api_post("/tags", json!({ "path": SENSITIVE, "sensitive": true })).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.api_post("/rules", json!({ "on": "keyword", "key": "便宜", "add": [SENSITIVE] })).await;
    assert_eq!(status, 201, "{body}");
    for (i, openid) in fans.iter().enumerate() {
        assert_eq!(app.push(&text_message(openid, "便宜", first_msg_id + i as u64)).await.status(), 200);
    }
    app.run_pending_jobs().await;
    let body = json!({ "name": "n", "audience": { "tag": SENSITIVE }, "message": { "type": "text", "content": "x" } });
    let (status, body) = app.api_call_as(("olivia", PASSWORD), Method::POST, "/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    let (status, body) =
        app.api_call_as(("olivia", PASSWORD), Method::POST, &format!("/campaigns/{id}/send"), None).await;
    assert_eq!(status, 409, "{body}");
    (id, fans)
}

/// Hostile bytes: a NUL in the 驳回 reason (and in other new fields) is refused with a message, never a 500.
#[tokio::test]
async fn a_nul_in_new_form_fields_is_refused_with_a_message_not_a_server_error() {
    let app = app_with_staff().await;
    let (id, _) = sensitive_campaign_waiting(&app, 9_100).await;

    let mut amy = Browser::log_in(&app, "amy", PASSWORD).await;
    amy.get("/admin/campaigns/approvals").await;
    let page = amy.post(&format!("/admin/campaigns/{id}/reject"), &[("reason", "原因\0")]).await;
    assert_ne!(page.status, StatusCode::INTERNAL_SERVER_ERROR, "驳回 reason with NUL");
    amy.get("/admin/campaigns/approvals").await;
    let mut page = amy.post(&format!("/admin/campaigns/{id}/reject"), &[("reason", "改一下\u{202E}文案")]).await;
    if let Some(location) = page.location.clone() {
        page = amy.get(&location).await;
    }
    assert!(page.body.contains("驳回原因里有看不见的控制字符或排版字符"), "{}", page.body);
    let status: String = app.query("SELECT status FROM campaigns WHERE id = $1", &[&id]).await[0].get(0);
    assert_eq!(status, "pending_approval", "a refused reason rejects nothing");

    let mut root = Browser::log_in(&app, "root", PASSWORD).await;
    root.get("/admin/testers").await;
    let page = root.post("/admin/testers", &[("openid", "o\0x"), ("note", "n")]).await;
    assert_ne!(page.status, StatusCode::INTERNAL_SERVER_ERROR, "tester openid with NUL");
    root.get(&format!("/admin/campaigns/{id}")).await;
    let page = root.post(&format!("/admin/campaigns/{id}/preview"), &[("tester", "o\0x")]).await;
    assert_ne!(page.status, StatusCode::INTERNAL_SERVER_ERROR, "preview tester with NUL");
}

/// Point 7: the export is a CSV an operator opens in Excel/WPS; a cell starting with = + - @
/// must not be a formula, and a comma or quote must not split the cell.
#[tokio::test]
async fn the_follower_export_escapes_cells_a_spreadsheet_would_run() {
    let app = app_with_staff().await;
    let hostile = "=HYPERLINK(\"http://evil.example/\",\"x\")";
    assert_eq!(app.push(&event(hostile, "subscribe", None, now())).await.status(), 200);
    let (status, body) = app.api_post("/tags", json!({ "path": "兴趣/导出" })).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.api_post("/rules", json!({ "on": "keyword", "key": "导出", "add": ["兴趣/导出"] })).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(app.push(&text_message(hostile, "导出", 9_200)).await.status(), 200);
    app.run_pending_jobs().await;
    let mut root = Browser::log_in(&app, "root", PASSWORD).await;
    let page = root.get("/admin/followers/export?tag=%E5%85%B4%E8%B6%A3/%E5%AF%BC%E5%87%BA").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.lines().any(|l| l.contains("HYPERLINK")), "the follower is exported: {}", page.body);
    assert!(!page.body.lines().any(|l| l.starts_with('=')), "a formula cell in the export: {}", page.body);
}

/// The audit log in Chinese: every action the console records reads as a Chinese verb, and a
/// send refused for needing approval is not described as a send by the wrong person.
#[tokio::test]
async fn the_audit_log_names_new_actions_in_chinese_and_says_why_a_send_was_refused() {
    let app = app_with_staff().await;
    let (_, fans) = sensitive_campaign_waiting(&app, 9_300).await;

    let mut root = Browser::log_in(&app, "root", PASSWORD).await;
    root.get("/admin/testers").await;
    let page = root.post("/admin/testers", &[("openid", fans[0].as_str()), ("note", "小王的手机")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let audit = root.get("/admin/audit").await;
    assert!(!audit.body.contains("mark_tester"), "English verb in the audit log: {}", audit.body);
    assert!(!audit.body.contains("note："), "English key in the audit log: {}", audit.body);
    assert!(
        !audit.body.contains("已审批的群发只能由创建人或审批人（）发送"),
        "a send refused for needing approval is described as a send by the wrong person: {}",
        audit.body
    );
}

/// Deleting a tag names the rules, quizzes, segments and dynamic tags that write it, before
/// anything is deleted.
#[tokio::test]
async fn a_tag_delete_names_every_rule_quiz_segment_and_dynamic_tag_that_uses_it() {
    let app = app_with_staff().await;
    let (status, body) = app.api_post("/rules", json!({ "on": "click", "key": "OILY", "add": ["肤质/油性"] })).await;
    assert_eq!(status, 201, "{body}");
    let quiz = json!({
        "id": "skin",
        "question": [ { "text": "一", "options": [ { "label": "A", "text": "油", "score": { "oily": 2 } }, { "label": "B", "text": "干" } ] } ],
        "result": [ { "tag": "肤质/油性", "score": "oily", "min": 2 } ]
    });
    assert_eq!(app.api_post("/quizzes", quiz).await.0, 201);
    let (status, body) = app.api_post("/segments", json!({ "name": "油皮", "expr": "\"肤质/油性\"" })).await;
    assert_eq!(status, 201, "{body}");
    let segment = body["id"].as_i64().expect("segment id");
    let tag: i64 = app.query("SELECT id FROM tags WHERE path = '肤质/油性'", &[]).await[0].get(0);
    let mut root = Browser::log_in(&app, "root", PASSWORD).await;
    root.get("/admin/tags").await;
    let page = root.post(&format!("/admin/tags/{tag}/delete"), &[]).await;
    assert!(page.body.contains("点击菜单 OILY") && page.body.contains("测验「skin」"), "{}", page.body);
    assert!(page.body.contains(&format!("人群 #{segment}")), "{}", page.body);
    assert_eq!(app.count("SELECT count(*) FROM tags WHERE path = '肤质/油性'").await, 1, "nothing deleted yet");
}
