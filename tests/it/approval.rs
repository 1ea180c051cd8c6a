//! Approval cannot be bypassed (issue 15, point 2), each test written as an operator's attempt:
//! reaching a sensitive tag through segments and dynamic tags, unmarking sensitivity, changing
//! what was approved after approval, sending someone else's approved campaign; and 驳回.

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin_pages::{Browser, PASSWORD};
use crate::support::app::{TestApp, spawn_app_with, text_message};

const OLGA: (&str, &str) = ("olga", PASSWORD);
const AMY: (&str, &str) = ("amy", PASSWORD);
const OSCAR: (&str, &str) = ("oscar", PASSWORD);
const SENSITIVE: &str = "健康/孕期";

/// Two operators (olga, oscar), an approver (amy) and an admin (root); four synced followers
/// who all carry the sensitive tag 健康/孕期, created by an admin.
async fn app() -> (TestApp, Vec<String>) {
    let app = spawn_app_with(|vars| {
        vars.insert(
            "TAGCAST_WECHAT_RATE_LIMITS".into(),
            "default=2000,/cgi-bin/message/mass/send=200,/cgi-bin/message/mass/sendall=200".into(),
        );
    })
    .await;
    app.create_admin("root", PASSWORD, "admin").await;
    app.create_admin("olga", PASSWORD, "operator").await;
    app.create_admin("oscar", PASSWORD, "operator").await;
    app.create_admin("amy", PASSWORD, "approver").await;
    let fans = app.wechat.seed_followers(4);
    tagcast::app::sync::run_sync(&app.jobs.pool, &app.api, |_| {}).await.expect("sync");
    let (status, body) = app.api_post("/tags", json!({ "path": SENSITIVE, "sensitive": true })).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.api_post("/rules", json!({ "on": "keyword", "key": "孕期", "add": [SENSITIVE] })).await;
    assert_eq!(status, 201, "{body}");
    for (i, openid) in fans.iter().enumerate() {
        assert_eq!(app.push(&text_message(openid, "孕期", 5_100 + i as u64)).await.status(), 200);
    }
    app.run_pending_jobs().await;
    (app, fans)
}

async fn call(app: &TestApp, who: (&str, &str), method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    app.api_call_as(who, method, path, body).await
}

/// A text campaign created by `who`; its id.
async fn create_campaign(app: &TestApp, who: (&str, &str), audience: Value, content: &str) -> i64 {
    let body = json!({ "name": content, "audience": audience, "message": { "type": "text", "content": content } });
    let (status, body) = call(app, who, Method::POST, "/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().expect("id")
}

async fn send(app: &TestApp, who: (&str, &str), id: i64) -> (u16, Value) {
    call(app, who, Method::POST, &format!("/campaigns/{id}/send"), None).await
}

async fn approve(app: &TestApp, id: i64) {
    let (status, body) = call(app, AMY, Method::POST, &format!("/campaigns/{id}/approve"), None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")), "{body}");
}

async fn campaign(app: &TestApp, id: i64) -> Value {
    let (status, body) = app.api_get(&format!("/campaigns/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn create_tag_as(app: &TestApp, who: (&str, &str), body: Value) -> Value {
    let (status, body) = call(app, who, Method::POST, "/tags", Some(body)).await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn tag_id(app: &TestApp, path: &str) -> i64 {
    app.query("SELECT id FROM tags WHERE path = $1", &[&path]).await[0].get(0)
}

async fn is_sensitive(app: &TestApp, path: &str) -> bool {
    app.query("SELECT sensitive FROM tags WHERE path = $1", &[&path]).await[0].get(0)
}

fn refused_for_approval(answer: &(u16, Value)) {
    assert_eq!((answer.0, answer.1["error"]["code"].as_str()), (409, Some("needs_approval")), "{}", answer.1);
}

#[tokio::test]
async fn a_segment_naming_a_sensitive_tag_needs_approval() {
    let (app, _) = app().await;
    let (status, segment) = call(
        &app,
        OLGA,
        Method::POST,
        "/segments",
        Some(json!({ "name": "准妈妈", "expr": format!("\"{SENSITIVE}\" AND orders(all) = 0") })),
    )
    .await;
    assert_eq!(status, 201, "{segment}");
    let id = create_campaign(&app, OLGA, json!({ "segment": segment["id"] }), "孕期好物").await;

    refused_for_approval(&send(&app, OLGA, id).await);
    let shown = campaign(&app, id).await;
    assert_eq!(shown["status"], "pending_approval");
    assert_eq!(shown["sensitive_tags"], json!([SENSITIVE]), "{shown}");
    assert!(app.wechat.mass_jobs().is_empty());
}

#[tokio::test]
async fn a_dynamic_tag_over_a_sensitive_tag_needs_approval_even_two_levels_down_and_through_a_cycle() {
    let (app, _) = app().await;
    // An operator defines tags over the sensitive one; none of them is marked sensitive.
    create_tag_as(&app, OLGA, json!({ "path": "人群/准妈妈", "wechat": false, "when": format!("\"{SENSITIVE}\"") }))
        .await;
    create_tag_as(
        &app,
        OLGA,
        json!({ "path": "人群/高意向", "wechat": false, "when": "\"人群/准妈妈\" OR orders(all) >= 3" }),
    )
    .await;
    // Two dynamic tags naming each other, one of them also over the sensitive tag.
    create_tag_as(
        &app,
        OLGA,
        json!({ "path": "人群/甲", "wechat": false, "when": format!("\"人群/乙\" OR \"{SENSITIVE}\"") }),
    )
    .await;
    create_tag_as(&app, OLGA, json!({ "path": "人群/乙", "wechat": false, "when": "\"人群/甲\"" })).await;
    app.run_pending_jobs().await;

    let one_level = create_campaign(&app, OLGA, json!({ "tag": "人群/准妈妈" }), "一层").await;
    refused_for_approval(&send(&app, OLGA, one_level).await);
    let (status, segment) =
        call(&app, OLGA, Method::POST, "/segments", Some(json!({ "name": "高意向", "expr": "\"人群/高意向\"" }))).await;
    assert_eq!(status, 201, "{segment}");
    let two_levels = create_campaign(&app, OLGA, json!({ "segment": segment["id"] }), "两层").await;
    refused_for_approval(&send(&app, OLGA, two_levels).await);
    let cycle = create_campaign(&app, OLGA, json!({ "tag": "人群/乙" }), "环").await;
    refused_for_approval(&send(&app, OLGA, cycle).await);

    for id in [one_level, two_levels, cycle] {
        let shown = campaign(&app, id).await;
        assert_eq!(
            (shown["status"].as_str(), &shown["sensitive_tags"]),
            (Some("pending_approval"), &json!([SENSITIVE]))
        );
    }
    let mut approver = Browser::log_in(&app, "amy", PASSWORD).await;
    let queue = approver.get("/admin/campaigns/approvals").await;
    for name in ["一层", "两层", "环"] {
        assert!(queue.body.contains(name), "{}", queue.body);
    }
    assert!(app.wechat.mass_jobs().is_empty());
}

#[tokio::test]
async fn operators_cannot_mark_or_unmark_a_tag_sensitive_anywhere_and_what_admins_change_is_audited() {
    let (app, _) = app().await;
    let id = tag_id(&app, SENSITIVE).await;

    // API: creating a sensitive tag, unmarking one.
    let (status, body) =
        call(&app, OLGA, Method::POST, "/tags", Some(json!({ "path": "健康/过敏", "sensitive": true }))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, body) =
        call(&app, OLGA, Method::PATCH, &format!("/tags/{id}"), Some(json!({ "sensitive": false }))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    // Deleting it and creating it again would unmark it too.
    let (status, body) = call(&app, OLGA, Method::DELETE, &format!("/tags/{id}"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");

    // The tag page: the create form's tick box, the mark/unmark button's form, deleting.
    let mut operator = Browser::log_in(&app, "olga", PASSWORD).await;
    let page = operator.get("/admin/tags").await;
    assert!(!page.body.contains("取消敏感"), "operators are not offered the button");
    let page = operator.post("/admin/tags", &[("path", "健康/过敏"), ("sensitive", "on")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", page.body);
    assert!(page.body.contains("只有管理员可以把标签标为敏感"), "{}", page.body);
    let page = operator.post(&format!("/admin/tags/{id}/sensitive"), &[("to", "0")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    operator.get("/admin/tags").await;
    operator.post(&format!("/admin/tags/{id}/delete"), &[("confirmed", "1")]).await;
    let page = operator.get("/admin/tags").await;
    assert!(page.body.contains("只有管理员可以删除"), "{}", page.body);
    assert!(is_sensitive(&app, SENSITIVE).await, "still there, still sensitive");

    // A playbook imported in the console.
    operator.get("/admin/playbook").await;
    let source = format!("[[tag]]\npath = \"{SENSITIVE}\"\nsensitive = false\n\n[[tag]]\npath = \"兴趣/美妆\"\n");
    let page = operator.post("/admin/playbook/import", &[("source", &source)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("只有管理员可以标记或取消敏感标签"), "{}", page.body);
    assert!(is_sensitive(&app, SENSITIVE).await);
    assert_eq!(
        app.count("SELECT count(*) FROM tags WHERE path IN ('健康/过敏', '兴趣/美妆')").await,
        0,
        "nothing applied"
    );

    // Admins can, each change audited with who, which tag, from and to.
    let root = ("root", PASSWORD);
    let (status, body) =
        call(&app, root, Method::PATCH, &format!("/tags/{id}"), Some(json!({ "sensitive": false }))).await;
    assert_eq!((status, body["sensitive"].as_bool()), (200, Some(false)), "{body}");
    let mut admin = Browser::log_in(&app, "root", PASSWORD).await;
    admin.get("/admin/tags").await;
    let page = admin.post(&format!("/admin/tags/{id}/sensitive"), &[("to", "1")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(is_sensitive(&app, SENSITIVE).await);
    admin.get("/admin/playbook").await;
    let page = admin.post("/admin/playbook/import", &[("source", &source)]).await;
    assert!(page.body.contains("导入会覆盖已有内容") && page.body.contains("敏感标记"), "{}", page.body);
    assert!(is_sensitive(&app, SENSITIVE).await, "nothing changes before the confirmation");
    let page = admin.post("/admin/playbook/import", &[("source", &source), ("confirmed", "1")]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!is_sensitive(&app, SENSITIVE).await);
    // The deployer's `tagcast playbook apply` stays allowed.
    let marked = format!("[[tag]]\npath = \"{SENSITIVE}\"\nsensitive = true\n");
    tagcast::app::playbook::apply(&app.jobs.pool, "playbook.toml", &marked).await.expect("the CLI may change it");
    assert!(is_sensitive(&app, SENSITIVE).await);

    let rows = app
        .query(
            "SELECT actor, detail->>'path', detail->>'from', detail->>'to' FROM audit_log
             WHERE action = 'sensitivity' ORDER BY id",
            &[],
        )
        .await;
    let log: Vec<(String, String, Option<String>, String)> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    let entry = |actor: &str, from: Option<&str>, to: &str| {
        (actor.to_owned(), SENSITIVE.to_owned(), from.map(str::to_owned), to.to_owned())
    };
    assert_eq!(
        log,
        vec![
            entry("api", None, "true"),
            entry("root", Some("true"), "false"),
            entry("root", Some("false"), "true"),
            entry("root", Some("true"), "false"),
            entry("playbook", Some("false"), "true"),
        ]
    );
}

#[tokio::test]
async fn an_approval_lapses_when_the_segment_the_dynamic_tag_or_the_content_changes_after_it() {
    let (app, _) = app().await;
    create_tag_as(&app, OLGA, json!({ "path": "状态/已购", "wechat": false })).await;
    create_tag_as(&app, OLGA, json!({ "path": "人群/准妈妈", "wechat": false, "when": format!("\"{SENSITIVE}\"") }))
        .await;
    app.run_pending_jobs().await;
    let (_, segment) = call(
        &app,
        OLGA,
        Method::POST,
        "/segments",
        Some(json!({ "name": "未购准妈妈", "expr": format!("\"{SENSITIVE}\" AND NOT \"状态/已购\"") })),
    )
    .await;
    let by_segment = create_campaign(&app, OLGA, json!({ "segment": segment["id"] }), "按人群").await;
    let by_dynamic = create_campaign(&app, OLGA, json!({ "tag": "人群/准妈妈" }), "按动态标签").await;
    let by_tag = create_campaign(&app, OLGA, json!({ "tag": SENSITIVE }), "按标签").await;
    for id in [by_segment, by_dynamic, by_tag] {
        refused_for_approval(&send(&app, OLGA, id).await);
        approve(&app, id).await;
    }

    // The segment's expression changes: renaming a tag it names rewrites it.
    let renamed = tag_id(&app, "状态/已购").await;
    let (status, body) =
        call(&app, OLGA, Method::PATCH, &format!("/tags/{renamed}"), Some(json!({ "path": "状态/已下单" }))).await;
    assert_eq!(status, 200, "{body}");
    // The dynamic tag's definition changes through a playbook (allowed: it changes no sensitivity).
    let mut operator = Browser::log_in(&app, "olga", PASSWORD).await;
    operator.get("/admin/playbook").await;
    let source = format!("[[tag]]\npath = \"人群/准妈妈\"\nwhen = '\"{SENSITIVE}\" OR orders(all) >= 1'\n");
    let page = operator.post("/admin/playbook/import", &[("source", &source), ("confirmed", "1")]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    // The content changes. No page or call edits a campaign today; this stands for any that
    // will, and for an edit in psql.
    app.query(
        "UPDATE campaigns SET message = '{\"type\": \"text\", \"content\": \"换了内容\"}' WHERE id = $1",
        &[&by_tag],
    )
    .await;

    for (id, why) in [
        (by_segment, "segment"),
        (by_dynamic, "the dynamic tag `人群/准妈妈`'s condition changed"),
        (by_tag, "the content changed"),
    ] {
        let answer = send(&app, OLGA, id).await;
        refused_for_approval(&answer);
        assert!(answer.1["error"]["lapsed"].to_string().contains(why), "{}", answer.1);
        let shown = campaign(&app, id).await;
        assert_eq!(shown["status"], "pending_approval", "back in the queue");
        assert_eq!(shown["approvals"], json!([]));
        assert!(shown["approval_lapsed"]["why"].as_str().is_some_and(|w| w.contains(why)), "{shown}");
    }
    let page = operator.get(&format!("/admin/campaigns/{by_dynamic}")).await;
    assert!(page.body.contains("审批已失效：动态标签「人群/准妈妈」的条件已修改"), "{}", page.body);
    let queue = operator.get("/admin/campaigns/approvals").await;
    assert!(queue.body.contains("审批已失效：内容已修改"), "{}", queue.body);
    assert_eq!(app.count("SELECT count(*) FROM audit_log WHERE action = 'approval_lapsed'").await, 3);
    assert!(app.wechat.mass_jobs().is_empty());

    // Approved again as it is now, it goes out.
    approve(&app, by_tag).await;
    assert_eq!(send(&app, OLGA, by_tag).await.0, 202);
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.mass_jobs().len(), 1);
}

#[tokio::test]
async fn a_scheduled_send_whose_audience_changed_after_approval_does_not_fire() {
    let (app, _) = app().await;
    let send_at = (app.clock.now() + chrono::Duration::hours(2)).to_rfc3339();
    let body = json!({
        "name": "定时", "audience": { "tag": SENSITIVE }, "send_at": send_at,
        "message": { "type": "text", "content": "x" },
    });
    let (_, created) = call(&app, OLGA, Method::POST, "/campaigns", Some(body)).await;
    let id = created["id"].as_i64().expect("id");
    refused_for_approval(&send(&app, OLGA, id).await);
    approve(&app, id).await;
    let (status, body) = send(&app, OLGA, id).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("scheduled")), "{body}");

    // While it waits, what the audience names changes: the tag is renamed (the audience follows).
    let tag = tag_id(&app, SENSITIVE).await;
    let (status, body) =
        call(&app, OLGA, Method::PATCH, &format!("/tags/{tag}"), Some(json!({ "path": "健康/备孕" }))).await;
    assert_eq!(status, 200, "{body}");
    app.clock.advance(chrono::Duration::hours(3));
    app.run_pending_jobs().await;

    assert!(app.wechat.mass_jobs().is_empty(), "nothing went out");
    let shown = campaign(&app, id).await;
    assert_eq!(shown["status"], "pending_approval", "{shown}");
    assert!(shown["approval_lapsed"]["why"].as_str().is_some_and(|w| w.contains("renamed")), "{shown}");
    assert_eq!(app.count("SELECT count(*) FROM campaign_tag_sends").await, 0, "its cap slot is given back");
}

#[tokio::test]
async fn only_the_creator_or_the_approver_may_send_an_approved_campaign() {
    let (app, _) = app().await;
    let id = create_campaign(&app, OLGA, json!({ "tag": SENSITIVE }), "别人的").await;
    refused_for_approval(&send(&app, OLGA, id).await);
    approve(&app, id).await;

    let (status, body) = send(&app, OSCAR, id).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("not_creator_or_approver")), "{body}");
    let mut third = Browser::log_in(&app, "oscar", PASSWORD).await;
    third.get(&format!("/admin/campaigns/{id}")).await;
    third.post(&format!("/admin/campaigns/{id}/send"), &[("shown_status", "approved"), ("confirmed", "1")]).await;
    let page = third.get(&format!("/admin/campaigns/{id}")).await;
    assert!(page.body.contains("只有创建人（olga）或审批人（amy）可以发送"), "{}", page.body);
    assert_eq!(campaign(&app, id).await["status"], "approved");
    assert!(app.wechat.mass_jobs().is_empty());

    let (status, body) = send(&app, AMY, id).await;
    assert_eq!(status, 202, "the approver may: {body}");
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.mass_jobs().len(), 1);
}

#[tokio::test]
async fn a_rejected_campaign_shows_its_creator_why_and_goes_back_to_the_queue_when_sent_again() {
    let (app, _) = app().await;
    let id = create_campaign(&app, OLGA, json!({ "tag": SENSITIVE }), "孕期折扣").await;
    refused_for_approval(&send(&app, OLGA, id).await);
    let path = format!("/campaigns/{id}/reject");
    let reject = |who, reason: &str| call(&app, who, Method::POST, &path, Some(json!({ "reason": reason })));
    let (status, body) = reject(OLGA, "我不想发了").await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "operators cannot: {body}");
    let (status, body) = reject(AMY, "  ").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");

    let (status, body) = reject(AMY, "折扣写错了，应为 8 折").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("draft")), "{body}");
    let shown = campaign(&app, id).await;
    assert_eq!(shown["rejection"]["by"], "amy");
    assert_eq!(shown["rejection"]["reason"], "折扣写错了，应为 8 折");
    assert!(shown["rejection"]["at"].is_string(), "{shown}");
    let mut creator = Browser::log_in(&app, "olga", PASSWORD).await;
    let page = creator.get(&format!("/admin/campaigns/{id}")).await;
    assert!(page.body.contains("amy（") && page.body.contains("驳回，原因：折扣写错了，应为 8 折"), "{}", page.body);

    // Sent again, it waits in the queue; an approver rejects it there, on the page.
    creator.post(&format!("/admin/campaigns/{id}/send"), &[("shown_status", "draft")]).await;
    assert_eq!(campaign(&app, id).await["status"], "pending_approval");
    let mut approver = Browser::log_in(&app, "amy", PASSWORD).await;
    let queue = approver.get("/admin/campaigns/approvals").await;
    assert!(queue.body.contains(&format!("/admin/campaigns/{id}/reject")), "{}", queue.body);
    let page = approver.post(&format!("/admin/campaigns/{id}/reject"), &[("reason", ""), ("back", "queue")]).await;
    assert_eq!(page.location.as_deref(), Some("/admin/campaigns/approvals"));
    assert_eq!(campaign(&app, id).await["status"], "pending_approval", "a reason is required");
    approver.get("/admin/campaigns/approvals").await;
    approver.post(&format!("/admin/campaigns/{id}/reject"), &[("reason", "图片侵权"), ("back", "queue")]).await;
    let page = creator.get(&format!("/admin/campaigns/{id}")).await;
    assert!(page.body.contains("驳回，原因：图片侵权"), "{}", page.body);
    assert_eq!(campaign(&app, id).await["status"], "draft");

    let rows =
        app.query("SELECT actor, detail->>'reason' FROM audit_log WHERE action = 'reject' ORDER BY id", &[]).await;
    let log: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        log,
        vec![("amy".to_owned(), "折扣写错了，应为 8 折".to_owned()), ("amy".to_owned(), "图片侵权".to_owned())]
    );
    assert!(app.wechat.mass_jobs().is_empty());
}

#[tokio::test]
async fn an_approval_on_the_page_is_for_what_the_page_showed_not_for_what_changed_since() {
    let (app, _) = app().await;
    create_tag_as(&app, OLGA, json!({ "path": "人群/准妈妈", "wechat": false, "when": format!("\"{SENSITIVE}\"") }))
        .await;
    app.run_pending_jobs().await;
    let id = create_campaign(&app, OLGA, json!({ "tag": "人群/准妈妈" }), "看过的").await;
    refused_for_approval(&send(&app, OLGA, id).await);
    let mut approver = Browser::log_in(&app, "amy", PASSWORD).await;
    let page = approver.get(&format!("/admin/campaigns/{id}")).await;
    let start = page.body.find("name=\"shown\" value=\"").expect("the approve form carries what it shows") + 20;
    let shown = page.body[start..start + 64].to_owned();

    // Between the look and the click, the operator widens the dynamic tag.
    let mut operator = Browser::log_in(&app, "olga", PASSWORD).await;
    operator.get("/admin/playbook").await;
    let source = format!("[[tag]]\npath = \"人群/准妈妈\"\nwhen = '\"{SENSITIVE}\" OR orders(all) >= 0'\n");
    let page = operator.post("/admin/playbook/import", &[("source", &source), ("confirmed", "1")]).await;
    assert_eq!(page.status, StatusCode::OK);

    approver.post(&format!("/admin/campaigns/{id}/approve"), &[("shown", &shown)]).await;
    let page = approver.get(&format!("/admin/campaigns/{id}")).await;
    assert!(page.body.contains("你查看之后，该群发或它涉及的标签、人群有了变化"), "{}", page.body);
    assert_eq!(campaign(&app, id).await["status"], "pending_approval");
}

/// A preview is a real message on a follower's phone: before approval, an operator cannot use
/// it to reach the sensitive tag's members ten at a time.
#[tokio::test]
async fn previews_of_an_unapproved_sensitive_campaign_cannot_reach_the_tags_members() {
    let (app, fans) = app().await;
    app.wechat.add_follower("test_phone");
    let id = create_campaign(&app, OLGA, json!({ "tag": SENSITIVE }), "孕期好物").await;
    let path = format!("/campaigns/{id}/preview");
    let preview = |openids: Value| call(&app, OLGA, Method::POST, &path, Some(openids));

    let (status, body) = preview(json!({ "openids": [fans[0], "test_phone"] })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("needs_approval")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains(&fans[0]), "{body}");
    assert!(app.wechat.previews().is_empty(), "nothing was previewed");

    let (status, body) = preview(json!({ "openids": ["test_phone"] })).await;
    assert_eq!(status, 200, "a follower without the tag may get the preview: {body}");
    assert_eq!(app.wechat.previews().len(), 1);
    let audited =
        app.count("SELECT count(*) FROM audit_log WHERE action = 'preview' AND detail::text LIKE '%test_phone%'").await;
    assert_eq!(audited, 1, "the audit log names who got the preview");

    refused_for_approval(&send(&app, OLGA, id).await);
    approve(&app, id).await;
    let (status, body) = preview(json!({ "openids": [fans[0]] })).await;
    assert_eq!(status, 200, "once approved, the audience may be previewed: {body}");
}

#[tokio::test]
async fn the_bearer_token_is_not_a_second_person_and_neither_approves_nor_rejects() {
    let (app, _) = app().await;
    let id = create_campaign(&app, OLGA, json!({ "tag": SENSITIVE }), "机器审批").await;
    refused_for_approval(&send(&app, OLGA, id).await);

    // The token acts as `api` with the admin role; it is not the creator, but not a person either.
    let (status, body) = app.api_call(Method::POST, &format!("/campaigns/{id}/approve"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("machine_reviewer")), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("`api`")), "{body}");
    let (status, body) = app.api_post(&format!("/campaigns/{id}/reject"), json!({ "reason": "机器说不行" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("machine_reviewer")), "{body}");
    assert_eq!(campaign(&app, id).await["status"], "pending_approval");
    assert_eq!(app.count("SELECT count(*) FROM campaign_approvals").await, 0);
    refused_for_approval(&send(&app, OLGA, id).await);
    assert!(app.wechat.mass_jobs().is_empty());

    // A person still can.
    approve(&app, id).await;
}
