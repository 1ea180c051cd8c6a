//! Issue 20, points 1 and 6 and the audit log: nothing destructive by accident (quiz edits start
//! from the live quiz and confirm an overwrite with its differences, every delete confirms, rules
//! on the same trigger warn, tag health notes are true), the approval flow (reach and sensitive
//! tags in the queue, the nav badge, 驳回 with a reason the creator sees, buttons by state), and an
//! audit log in Chinese with links and no JSON. Over HTTP without JavaScript, and in Chromium.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin_pages::{Browser, PASSWORD};
use crate::support::app::{TestApp, spawn_app, text_message};

const OLIVIA: (&str, &str) = ("olivia", PASSWORD);
const AMY: (&str, &str) = ("amy", PASSWORD);
const SENSITIVE: &str = "敏感/价格敏感";

/// An admin (root), an operator (olivia) and an approver (amy).
async fn app_with_staff() -> TestApp {
    let app = spawn_app().await;
    app.create_admin("root", PASSWORD, "admin").await;
    app.create_admin("olivia", PASSWORD, "operator").await;
    app.create_admin("amy", PASSWORD, "approver").await;
    app
}

/// [`app_with_staff`] with five synced followers, three of whom carry the sensitive tag.
async fn app_with_audience() -> TestApp {
    let app = app_with_staff().await;
    let fans = app.wechat.seed_followers(5);
    tagcast::app::sync::run_sync(&app.jobs.pool, &app.api, |_| {}).await.expect("sync");
    let (status, body) = app.api_post("/tags", json!({ "path": SENSITIVE, "sensitive": true })).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.api_post("/rules", json!({ "on": "keyword", "key": "便宜", "add": [SENSITIVE] })).await;
    assert_eq!(status, 201, "{body}");
    for (i, openid) in fans[..3].iter().enumerate() {
        assert_eq!(app.push(&text_message(openid, "便宜", 7_700 + i as u64)).await.status(), 200);
    }
    app.run_pending_jobs().await;
    app
}

/// A two-question quiz `skin`, created through the API.
async fn live_quiz(app: &TestApp) {
    let quiz = json!({
        "id": "skin",
        "intro": "回答 2 个问题，了解你的肤质",
        "question": [
            { "text": "洗脸一小时后，T 区的感觉？", "options": [
                { "label": "A", "text": "油光明显", "score": { "oily": 2 } },
                { "label": "B", "text": "紧绷", "score": { "dry": 2 } } ] },
            { "text": "换季时皮肤容易泛红吗？", "options": [
                { "label": "A", "text": "经常", "score": { "sensitive": 2 } },
                { "label": "B", "text": "很少", "score": { "oily": 1 } } ] }
        ],
        "result": [ { "tag": "肤质/油性", "score": "oily", "min": 2 } ]
    });
    let (status, body) = app.api_post("/quizzes", quiz).await;
    assert_eq!(status, 201, "{body}");
}

async fn stored_questions(app: &TestApp, id: &str) -> usize {
    let rows = app.query("SELECT spec FROM quizzes WHERE id = $1", &[&id]).await;
    let spec: Value = rows[0].get(0);
    spec["question"].as_array().or_else(|| spec["questions"].as_array()).map_or(0, Vec::len)
}

/// The value of the hidden field `name` on a page.
fn hidden_value(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker)? + marker.len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_owned())
}

/// A campaign created by `who` through the API, sent to `audience`; its id.
async fn create_campaign(app: &TestApp, who: (&str, &str), name: &str, audience: Value) -> i64 {
    let body = json!({ "name": name, "audience": audience, "message": { "type": "text", "content": "专属优惠" } });
    let (status, body) = app.api_call_as(who, Method::POST, "/campaigns", Some(body)).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().expect("id")
}

/// A campaign of olivia's on the sensitive tag, submitted: it waits for approval.
async fn waiting_campaign(app: &TestApp, name: &str) -> i64 {
    let id = create_campaign(app, OLIVIA, name, json!({ "tag": SENSITIVE })).await;
    let (status, body) = app.api_call_as(OLIVIA, Method::POST, &format!("/campaigns/{id}/send"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("needs_approval")), "{body}");
    assert_eq!(status_of(app, id).await, "pending_approval");
    id
}

async fn status_of(app: &TestApp, id: i64) -> String {
    app.query("SELECT status FROM campaigns WHERE id = $1", &[&id]).await[0].get(0)
}

// ---------------------------------------------------------------- 1. nothing destructive by accident

#[tokio::test]
async fn editing_a_quiz_starts_from_the_live_quiz_and_a_new_one_from_an_empty_form_with_a_fresh_id() {
    let app = app_with_staff().await;
    live_quiz(&app).await;
    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;

    let list = browser.get("/admin/quizzes").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.body.contains("<textarea name=\"source\""), "no editor holding a sample: {}", list.body);
    assert!(list.body.contains("href=\"/admin/quizzes?new=1\"") && list.body.contains("新建测验"), "{}", list.body);

    let edit = browser.get("/admin/quizzes?edit=skin").await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("编辑测验「skin」"), "{}", edit.body);
    assert!(edit.body.contains("换季时皮肤容易泛红吗？"), "the editor holds the live quiz: {}", edit.body);

    let new = browser.get("/admin/quizzes?new=1").await;
    assert!(new.body.contains("id = &#34;quiz-1&#34;") || new.body.contains("id = &quot;quiz-1&quot;"), "{}", new.body);
    let source = tagcast_source(&new.body);
    assert!(!source.contains("skin") && !source.contains("洗脸") && source.contains("text = \"\""), "empty: {source}");
    // Saved as it is, the skeleton is refused: it creates nothing.
    let page = browser.post("/admin/quizzes", &[("format", "toml"), ("action", "save"), ("source", &source)]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", page.body);
    assert_eq!(app.count("SELECT count(*) FROM quizzes").await, 1);

    let (status, body) = app
        .api_post(
            "/quizzes",
            json!({ "id": "quiz-1", "question": [{ "text": "?", "options": [
            { "label": "A", "text": "a" }, { "label": "B", "text": "b" } ] }] }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let new = browser.get("/admin/quizzes?new=1").await;
    assert!(new.body.contains("quiz-2"), "the next unused id: {}", new.body);
}

/// The editor's text as the browser would post it.
fn tagcast_source(body: &str) -> String {
    let start = body.find("<textarea name=\"source\"").expect("an editor");
    let start = start + body[start..].find('>').expect("tag end") + 1;
    let end = start + body[start..].find("</textarea>").expect("textarea end");
    body[start..end]
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn saving_over_a_live_quiz_shows_the_changes_and_saves_only_once_confirmed() {
    let app = app_with_staff().await;
    live_quiz(&app).await;
    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    browser.get("/admin/quizzes?edit=skin").await;
    let one_question = "id = \"skin\"\nintro = \"只有一题\"\n[[question]]\ntext = \"洗脸一小时后，T 区的感觉？\"\noptions = [ { label = \"A\", text = \"油光明显\", score = { oily = 2 } }, { label = \"B\", text = \"紧绷\", score = { dry = 2 } } ]\n[[result]]\ntag = \"肤质/油性\"\nscore = \"oily\"\nmin = 2\n";

    let page =
        browser.post("/admin/quizzes", &[("format", "toml"), ("action", "save"), ("source", one_question)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("覆盖测验「skin」？"), "{}", page.body);
    assert!(page.body.contains("现有 2 题") && page.body.contains("保存后 1 题"), "{}", page.body);
    assert!(page.body.contains("删除第 2 题：「换季时皮肤容易泛红吗？」"), "{}", page.body);
    assert!(page.body.contains("开场白：「回答 2 个问题，了解你的肤质」改为「只有一题」"), "{}", page.body);
    assert!(page.body.contains("确认覆盖"), "{}", page.body);
    assert_eq!(stored_questions(&app, "skin").await, 2, "nothing saved before the confirmation");
    let over = hidden_value(&page.body, "over").expect("the version the changes were shown against");

    // A confirmation for another version of the quiz does not overwrite: the changes are shown again.
    let stale = [("format", "toml"), ("action", "save"), ("source", one_question), ("confirmed", "1"), ("over", "0")];
    let page = browser.post("/admin/quizzes", &stale).await;
    assert!(page.body.contains("又被别人修改过"), "{}", page.body);
    assert_eq!(stored_questions(&app, "skin").await, 2);

    let confirmed =
        [("format", "toml"), ("action", "save"), ("source", one_question), ("confirmed", "1"), ("over", over.as_str())];
    let page = browser.post("/admin/quizzes", &confirmed).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(stored_questions(&app, "skin").await, 1);
    let list = browser.get("/admin/quizzes").await;
    assert!(list.body.contains("已保存测验「skin」"), "{}", list.body);
}

#[tokio::test]
async fn every_delete_asks_first_names_what_it_does_and_deletes_nothing_without_the_confirmation() {
    let app = app_with_audience().await;
    live_quiz(&app).await;
    let (status, body) = app.api_post("/tags", json!({ "path": "兴趣/新品" })).await;
    assert_eq!(status, 201, "{body}");
    let tag = body["id"].as_i64().expect("tag id");
    let (status, body) = app.api_post("/rules", json!({ "on": "click", "key": "NEW", "add": ["兴趣/新品"] })).await;
    assert_eq!(status, 201, "{body}");
    let rule: i64 = app.query("SELECT id FROM rules WHERE key = 'NEW'", &[]).await[0].get(0);
    let (status, body) = app.api_post("/segments", json!({ "name": "新品控", "expr": "\"兴趣/新品\"" })).await;
    assert_eq!(status, 201, "{body}");
    let segment = body["id"].as_i64().expect("segment id");
    let draft = create_campaign(&app, OLIVIA, "草稿一封", json!({ "all": true })).await;
    let mut root = Browser::log_in(&app, "root", PASSWORD).await;

    let cases: Vec<(String, String, &str, String)> = vec![
        (
            format!("/admin/tags/{tag}/delete"),
            "删除标签「兴趣/新品」？".to_owned(),
            "位粉丝身上的这个标签会被移除",
            format!("SELECT count(*) FROM tags WHERE id = {tag}"),
        ),
        (
            format!("/admin/rules/{rule}/delete"),
            format!("删除规则 #{rule}？"),
            "不再打上「兴趣/新品」",
            format!("SELECT count(*) FROM rules WHERE id = {rule}"),
        ),
        (
            format!("/admin/segments/{segment}/delete"),
            "删除人群「新品控」？".to_owned(),
            "粉丝和标签不受影响",
            format!("SELECT count(*) FROM segments WHERE id = {segment}"),
        ),
        (
            "/admin/quizzes/skin/delete".to_owned(),
            "删除测验「skin」？".to_owned(),
            "正在答题的 0 位粉丝会退出测验",
            "SELECT count(*) FROM quizzes WHERE id = 'skin'".to_owned(),
        ),
        (
            format!("/admin/campaigns/{draft}/delete"),
            "删除群发「草稿一封」？".to_owned(),
            "它还没有发给任何粉丝",
            format!("SELECT count(*) FROM campaigns WHERE id = {draft}"),
        ),
    ];
    for (path, title, consequence, still_there) in &cases {
        // The old one-step forms (a ticked box) no longer delete.
        for form in [&[][..], &[("confirm", "on")][..]] {
            let page = root.post(path, form).await;
            assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
            assert!(page.body.contains(title.as_str()) && page.body.contains(consequence), "{path}: {}", page.body);
            assert!(page.body.contains("name=\"confirmed\" value=\"1\"") && page.body.contains("确认删除"), "{path}");
            assert_eq!(app.count(still_there).await, 1, "{path} deleted nothing");
        }
    }
    for (path, _, _, still_there) in &cases {
        let page = root.post(path, &[("confirmed", "1")]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}: {}", page.body);
        assert_eq!(app.count(still_there).await, 0, "{path} deleted once confirmed");
    }
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn an_operator_deletes_only_their_own_campaigns_and_an_admin_any_that_never_went_out() {
    let app = app_with_staff().await;
    app.create_admin("oscar", PASSWORD, "operator").await;
    let (status, body) = app.api_post("/tags", json!({ "path": "兴趣/美妆" })).await;
    assert_eq!(status, 201, "{body}");
    let theirs = create_campaign(&app, OLIVIA, "奥利维亚的草稿", json!({ "tag": "兴趣/美妆" })).await;
    let mut oscar = Browser::log_in(&app, "oscar", PASSWORD).await;
    oscar.get(&format!("/admin/campaigns/{theirs}")).await;
    // Neither the first step nor a hand-made confirmed post deletes another operator's campaign.
    for form in [&[][..], &[("confirmed", "1")][..]] {
        let page = oscar.post(&format!("/admin/campaigns/{theirs}/delete"), form).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        let shown = oscar.get(&format!("/admin/campaigns/{theirs}")).await;
        assert!(shown.body.contains("它由「olivia」创建，运营只能删除自己创建的群发"), "{}", shown.body);
        assert_eq!(status_of(&app, theirs).await, "draft");
    }
    let mine = create_campaign(&app, ("oscar", PASSWORD), "奥斯卡的草稿", json!({ "tag": "兴趣/美妆" })).await;
    let page = oscar.post(&format!("/admin/campaigns/{mine}/delete"), &[("confirmed", "1")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(app.count(&format!("SELECT count(*) FROM campaigns WHERE id = {mine}")).await, 0);
    let mut root = Browser::log_in(&app, "root", PASSWORD).await;
    root.get(&format!("/admin/campaigns/{theirs}")).await;
    let page = root.post(&format!("/admin/campaigns/{theirs}/delete"), &[("confirmed", "1")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(app.count(&format!("SELECT count(*) FROM campaigns WHERE id = {theirs}")).await, 0);
}

#[tokio::test]
async fn a_quiz_a_rule_starts_a_segment_a_draft_is_addressed_to_and_a_sent_campaign_are_kept() {
    let app = app_with_audience().await;
    live_quiz(&app).await;
    let (status, body) =
        app.api_post("/rules", json!({ "on": "click", "key": "SKIN_TEST", "start_quiz": "skin" })).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        app.api_post("/segments", json!({ "name": "价格敏感", "expr": format!("\"{SENSITIVE}\"") })).await;
    assert_eq!(status, 201, "{body}");
    let segment = body["id"].as_i64().expect("segment id");
    create_campaign(&app, OLIVIA, "按人群", json!({ "segment": segment })).await;
    let sent = create_campaign(&app, OLIVIA, "已发出", json!({ "all": true })).await;
    let (status, body) = app.api_call_as(OLIVIA, Method::POST, &format!("/campaigns/{sent}/send"), None).await;
    assert_eq!(status, 202, "{body}");
    app.run_pending_jobs().await;
    assert_ne!(status_of(&app, sent).await, "draft");
    let mut root = Browser::log_in(&app, "root", PASSWORD).await;

    for confirmed in [&[][..], &[("confirmed", "1")][..]] {
        let page = root.post("/admin/quizzes/skin/delete", confirmed).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        let page = root.get("/admin/quizzes").await;
        assert!(page.body.contains("会开始测验「skin」"), "{}", page.body);
        assert_eq!(app.count("SELECT count(*) FROM quizzes WHERE id = 'skin'").await, 1);

        root.post(&format!("/admin/segments/{segment}/delete"), confirmed).await;
        let page = root.get("/admin/segments").await;
        assert!(page.body.contains("未删除人群「价格敏感」") && page.body.contains("「按人群」"), "{}", page.body);
        assert_eq!(app.count(&format!("SELECT count(*) FROM segments WHERE id = {segment}")).await, 1);

        let page = root.post(&format!("/admin/campaigns/{sent}/delete"), confirmed).await;
        assert_eq!(page.location.as_deref(), Some(format!("/admin/campaigns/{sent}").as_str()));
        let page = root.get(&format!("/admin/campaigns/{sent}")).await;
        assert!(
            page.body.contains("不能删除群发「已发出」") && page.body.contains("要保留送达记录和统计"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("id=\"delete-button\""), "a sent campaign offers no 删除: {}", page.body);
        assert_eq!(app.count(&format!("SELECT count(*) FROM campaigns WHERE id = {sent}")).await, 1);
    }
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn a_second_rule_on_the_same_trigger_is_saved_with_a_warning_shown_beside_both() {
    let app = app_with_staff().await;
    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    browser.get("/admin/rules").await;
    let form = |add: &'static str| [("on", "click"), ("key", "SKIN_TEST"), ("add", add)];
    let page = browser.post("/admin/rules", &form("肤质/测过")).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = browser.get("/admin/rules").await;
    assert!(!page.body.contains("触发条件相同"), "one rule alone warns of nothing: {}", page.body);
    let other = browser.post("/admin/rules", &[("on", "keyword"), ("key", "SKIN_TEST"), ("reply", "hi")]).await;
    assert_eq!(other.status, StatusCode::SEE_OTHER);
    let page = browser.get("/admin/rules").await;
    assert!(!page.body.contains("触发条件相同"), "a keyword is another trigger than a click: {}", page.body);

    let page = browser.post("/admin/rules", &[("on", "click"), ("key", " SKIN_TEST "), ("add", "兴趣/护肤")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "still allowed: {}", page.body);
    let ids: Vec<i64> = app
        .query("SELECT id FROM rules WHERE trigger = 'click' ORDER BY id", &[])
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids.len(), 2);
    let page = browser.get("/admin/rules").await;
    assert!(page.body.contains(&format!("注意：与规则 #{} 的触发条件相同", ids[0])), "{}", page.body);
    assert_eq!(page.body.matches("触发条件相同，都会执行").count(), 2, "beside both rules: {}", page.body);
    assert!(page.body.contains(&format!("与规则 #{} 触发条件相同", ids[1])), "{}", page.body);
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn a_tag_created_today_is_not_called_unused_but_one_untouched_for_a_month_is() {
    let app = app_with_staff().await;
    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    browser.get("/admin/tags").await;
    let page = browser.post("/admin/tags", &[("path", "兴趣/新品"), ("local_only", "on")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = browser.get("/admin/tags").await;
    assert!(page.body.contains("新品"), "{}", page.body);
    assert!(!page.body.contains("无人使用") && !page.body.contains("没有粉丝新打上"), "{}", page.body);

    app.clock.advance(chrono::Duration::days(31));
    let page = browser.get("/admin/tags").await;
    assert!(page.body.contains("创建 30 天以上，30 天内没有粉丝打上、目前无人使用"), "{}", page.body);
    app.run_pending_jobs().await;
}

// ---------------------------------------------------------------- 6. the approval flow

#[tokio::test]
async fn the_queue_shows_each_campaigns_reach_and_sensitive_tags_and_the_nav_counts_what_waits() {
    let app = app_with_audience().await;
    let mut amy = Browser::log_in(&app, "amy", PASSWORD).await;
    let board = amy.get("/admin").await;
    assert!(!board.body.contains("id=\"approval-badge\""), "nothing waits: {}", board.body);

    let first = waiting_campaign(&app, "价格敏感关怀").await;
    waiting_campaign(&app, "第二封").await;
    let board = amy.get("/admin").await;
    assert!(board.body.contains("id=\"approval-badge\" title=\"2 个群发等待审批\">2</span>"), "{}", board.body);
    let queue = amy.get("/admin/campaigns/approvals").await;
    assert!(queue.body.contains("<td class=\"num reach\">3 人</td>"), "reach counted now: {}", queue.body);
    assert!(queue.body.contains(&format!("<span class=\"badge warn\">{SENSITIVE}</span>")), "{}", queue.body);

    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = olivia.get("/admin").await;
    assert!(!page.body.contains("approval-badge"), "an operator may not approve: no badge");

    let (status, body) = app.api_call_as(AMY, Method::POST, &format!("/campaigns/{first}/approve"), None).await;
    assert_eq!(status, 200, "{body}");
    let board = amy.get("/admin/tags").await;
    assert!(board.body.contains(">1</span>"), "{}", board.body);
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn a_long_queue_shows_the_twenty_longest_waiting_and_says_how_many_more_wait() {
    let app = app_with_audience().await;
    let mut ids = Vec::new();
    for n in 0..22 {
        ids.push(waiting_campaign(&app, &format!("待审批{n}")).await);
    }
    let mut amy = Browser::log_in(&app, "amy", PASSWORD).await;
    let queue = amy.get("/admin/campaigns/approvals").await;
    assert!(queue.body.contains("另有 2 个群发在等待审批：这里先列出等待最久的 20 个"), "{}", queue.body);
    assert!(queue.body.contains(&format!("/admin/campaigns/{}\"", ids[19])), "the 20th longest waiting is listed");
    assert!(!queue.body.contains(&format!("/admin/campaigns/{}\"", ids[21])), "the newest waits its turn");
}

#[tokio::test]
async fn a_rejection_needs_a_reason_and_its_creator_reads_who_rejected_it_and_why() {
    let app = app_with_audience().await;
    let id = waiting_campaign(&app, "价格敏感关怀").await;
    let mut amy = Browser::log_in(&app, "amy", PASSWORD).await;
    amy.get("/admin/campaigns/approvals").await;
    let page = amy.post(&format!("/admin/campaigns/{id}/reject"), &[("reason", "  "), ("back", "queue")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let queue = amy.get("/admin/campaigns/approvals").await;
    assert!(queue.body.contains("驳回需填写原因"), "{}", queue.body);
    assert_eq!(status_of(&app, id).await, "pending_approval");

    amy.post(&format!("/admin/campaigns/{id}/reject"), &[("reason", "优惠力度写错了"), ("back", "queue")]).await;
    assert_eq!(status_of(&app, id).await, "draft");
    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = olivia.get(&format!("/admin/campaigns/{id}")).await;
    assert!(page.body.contains("id=\"rejection\">amy（"), "{}", page.body);
    assert!(page.body.contains("驳回，原因：优惠力度写错了"), "{}", page.body);
    assert!(page.body.contains("id=\"send-button\">提交审批"), "back to a draft the creator may submit again");
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn the_buttons_follow_the_state_no_second_submit_while_waiting_and_no_approve_once_approved() {
    let app = app_with_audience().await;
    let id = waiting_campaign(&app, "价格敏感关怀").await;
    let path = format!("/admin/campaigns/{id}");
    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = olivia.get(&path).await;
    assert!(!page.body.contains("id=\"send-button\""), "no 提交审批 while waiting: {}", page.body);
    assert!(page.body.contains("id=\"waiting-approval\""), "{}", page.body);
    let mut amy = Browser::log_in(&app, "amy", PASSWORD).await;
    let page = amy.get(&path).await;
    assert!(page.body.contains("id=\"approve-button\"") && page.body.contains("id=\"reject-button\""), "{}", page.body);

    let fingerprint = hidden_value(&page.body, "shown").expect("what the approver saw");
    let page = amy.post(&format!("{path}/approve"), &[("shown", fingerprint.as_str())]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&app, id).await, "approved");
    let page = amy.get(&path).await;
    assert!(!page.body.contains("id=\"approve-button\"") && !page.body.contains("审批通过</button>"), "{}", page.body);
    assert!(!page.body.contains("id=\"reject-button\""), "{}", page.body);
    let page = olivia.get(&path).await;
    assert!(
        page.body.contains("amy 于 ") && page.body.contains(" 审批通过"),
        "the creator sees the outcome: {}",
        page.body
    );
    assert!(page.body.contains("id=\"send-button\">发送"), "{}", page.body);
    app.run_pending_jobs().await;
}

// ---------------------------------------------------------------- 3. the audit log

#[tokio::test]
async fn the_audit_log_reads_as_chinese_sentences_with_links_and_never_json() {
    let app = app_with_audience().await;
    let id = waiting_campaign(&app, "价格敏感关怀").await;
    let mut root = Browser::log_in(&app, "root", PASSWORD).await;
    root.get("/admin/tags").await;
    root.post("/admin/tags", &[("path", "兴趣/新品"), ("local_only", "on")]).await;
    root.get("/admin/rules").await;
    root.post("/admin/rules", &[("on", "click"), ("key", "NEW"), ("add", "兴趣/新品"), ("reply", "欢迎")]).await;
    let tag: i64 = app.query("SELECT id FROM tags WHERE path = '兴趣/新品'", &[]).await[0].get(0);
    root.post(&format!("/admin/tags/{tag}/delete"), &[("confirmed", "1")]).await;
    let mut amy = Browser::log_in(&app, "amy", PASSWORD).await;
    amy.get("/admin/campaigns/approvals").await;
    amy.post(&format!("/admin/campaigns/{id}/reject"), &[("reason", "图片侵权")]).await;

    let page = root.get("/admin/audit").await;
    assert_eq!(page.status, StatusCode::OK);
    for words in [
        "<td>创建</td>",
        "<td>删除</td>",
        "<td>驳回</td>",
        "原因：图片侵权",
        "点击菜单「NEW」时：打上「兴趣/新品」，回复「欢迎」",
        "敏感标签：否",
        &format!("群发 <a href=\"/admin/campaigns/{id}\">#{id}</a>"),
        "标签 <a href=\"/admin/tags\">「兴趣/新品」</a>",
        "标签 「兴趣/新品」</td>",
        "受众：标签「敏感/价格敏感」",
    ] {
        assert!(page.body.contains(words), "{words}: {}", page.body);
    }
    for json in ["{\"", "{&#34;", "{&quot;", "<code class=\"small\">"] {
        assert!(!page.body.contains(json), "no JSON ({json}): {}", page.body);
    }
    for english in ["<td>create</td>", "<td>delete</td>", "<td>reject</td>", ">tag ", ">campaign "] {
        assert!(!page.body.contains(english), "{english}: {}", page.body);
    }
    app.run_pending_jobs().await;
}

// ---------------------------------------------------------------- in Chromium

#[tokio::test]
async fn a_quiz_overwrite_waits_for_its_confirmation_and_a_rejection_reaches_its_creator_in_chromium() {
    use crate::admin_browser::{
        browser, chromium_missing, click, log_in, phone_logged_in, screenshot, sideways_overflow, start_driver,
        text_of, wait_for_text,
    };
    use fantoccini::Locator;
    if chromium_missing() {
        return;
    }
    let app = app_with_audience().await;
    live_quiz(&app).await;
    let id = waiting_campaign(&app, "价格敏感关怀").await;
    let base = app.address.clone();
    let driver = start_driver().await;

    let client = browser(&driver).await;
    client.goto(&format!("{base}/admin/login")).await.expect("login page");
    log_in(&client, "amy").await;
    wait_for_text(&client, "#approval-badge", "1").await;

    client.goto(&format!("{base}/admin/quizzes?edit=skin")).await.expect("quiz editor");
    // The form editor holds the live quiz; emptying question 2 and the result removes them.
    let first = client.find(Locator::Css("input[name=q1_text]")).await.expect("the form editor");
    assert_eq!(first.prop("value").await.expect("value").as_deref(), Some("换季时皮肤容易泛红吗？"));
    for name in ["q1_text", "q1_o0_text", "q1_o0_score", "q1_o1_text", "q1_o1_score", "r0_tag", "r0_score", "r0_min"] {
        let field =
            client.find(Locator::Css(&format!("[name={name}]"))).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        field.clear().await.expect("cleared");
    }
    crate::admin_browser::fill(&client, "input[name=q0_text]", "洗脸后 T 区？").await;
    click(&client, "#quiz-form-save").await;
    wait_for_text(&client, "#confirm h1", "覆盖测验「skin」？").await;
    let confirm = text_of(&client, "#confirm").await;
    assert!(confirm.contains("删除第 2 题") && confirm.contains("删除结果"), "{confirm}");
    screenshot(&client, "console-safety-quiz-overwrite-confirm").await;
    assert_eq!(stored_questions(&app, "skin").await, 2, "nothing saved yet");
    click(&client, "#confirm-button").await;
    wait_for_text(&client, ".flash", "已保存测验「skin」").await;
    assert_eq!(stored_questions(&app, "skin").await, 1);
    screenshot(&client, "console-safety-quiz-saved").await;

    client.goto(&format!("{base}/admin/campaigns/approvals")).await.expect("queue");
    wait_for_text(&client, "table", "3 人").await;
    let reason = client.find(Locator::Css("form[action$='/reject'] input[name=reason]")).await.expect("reason field");
    reason.send_keys("优惠力度写错了").await.expect("typed");
    screenshot(&client, "console-safety-approval-queue").await;
    click(&client, "form[action$='/reject'] button[type=submit]").await;
    wait_for_text(&client, ".flash", "已驳回").await;
    assert_eq!(status_of(&app, id).await, "draft");
    client.close().await.expect("closed");

    let client = browser(&driver).await;
    client.goto(&format!("{base}/admin/login")).await.expect("login page");
    log_in(&client, "olivia").await;
    client.goto(&format!("{base}/admin/campaigns/{id}")).await.expect("campaign");
    wait_for_text(&client, "#rejection", "优惠力度写错了").await;
    assert!(text_of(&client, "#rejection").await.contains("amy"));
    screenshot(&client, "console-safety-rejected-campaign").await;
    client.close().await.expect("closed");

    // On a phone, a delete's confirmation page fits the screen and deletes nothing by itself.
    let tags = app.count("SELECT count(*) FROM tags").await;
    let (_phone_driver, phone) = phone_logged_in(&base, "root").await;
    phone.goto(&format!("{base}/admin/tags")).await.expect("tags");
    click(&phone, "form[action$='/delete'] button[type=submit]").await;
    wait_for_text(&phone, "#confirm h1", "删除标签").await;
    assert!(sideways_overflow(&phone).await <= 0, "the confirmation fits 390 px");
    screenshot(&phone, "console-safety-delete-confirm-phone").await;
    assert_eq!(app.count("SELECT count(*) FROM tags").await, tags, "nothing deleted before the confirmation");
    phone.close().await.expect("closed");
    app.run_pending_jobs().await;
}
