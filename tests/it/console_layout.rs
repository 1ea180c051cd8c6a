//! Issue 20, points 4, 7 and 8: every admin page at phone width (390 px) with the nav folded,
//! and at 1366 px; the segment builder in Chromium and without JavaScript; unknown tags refused
//! with a suggestion (console and JSON API); the 粉丝 page's tag and segment filters with their
//! total; and the CSV export (its content, its audit row, and the operator's refusal).

use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::json;

use crate::admin_browser::{
    browser, chromium_missing, click, log_in, screenshot, sideways_overflow, start_driver, text_of, wait_for_text,
};
use crate::admin_pages::{Browser, PASSWORD};
use crate::support::app::{TestApp, event, now, spawn_app, text_message};

const OILY: &str = "肤质/油性";
const DRY: &str = "肤质/干性";

/// Tags, rules, a quiz, followers (four oily, one dry, one who left), clicks on SKIN_TEST, a saved
/// segment and a draft campaign: something on every page.
pub(crate) async fn seeded() -> (TestApp, i64, i64) {
    let app = spawn_app().await;
    app.create_admin("root", PASSWORD, "admin").await;
    app.create_admin("olivia", PASSWORD, "operator").await;
    app.create_admin("amy", PASSWORD, "approver").await;
    for path in [OILY, DRY, "状态/已购"] {
        let (status, body) = app.api_post("/tags", json!({ "path": path, "wechat": false })).await;
        assert_eq!(status, 201, "{body}");
    }
    for (key, tag) in [("油", OILY), ("干", DRY)] {
        let (status, body) = app.api_post("/rules", json!({ "on": "keyword", "key": key, "add": [tag] })).await;
        assert_eq!(status, 201, "{body}");
    }
    let quiz = json!({
        "id": "skin", "intro": "回答 1 个问题，了解你的肤质",
        "question": [{ "text": "洗脸一小时后，T 区的感觉？",
                       "options": [{ "label": "A", "text": "油光明显", "score": { "oily": 2 } },
                                   { "label": "B", "text": "紧绷", "score": { "dry": 2 } }] }],
        "result": [{ "tag": OILY, "score": "oily", "min": 2 }, { "tag": DRY, "score": "dry", "min": 2 }]
    });
    let (status, body) = app.api_post("/quizzes", quiz).await;
    assert_eq!(status, 201, "{body}");
    let t = now() - 3_600;
    for (i, (openid, word)) in [
        ("o_oily_1", "油"),
        ("o_oily_2", "油"),
        ("o_oily_3", "油"),
        ("o_oily_4", "油"),
        ("o_dry_1", "干"),
        ("o_gone", "油"),
    ]
    .into_iter()
    .enumerate()
    {
        let i = i as i64;
        assert_eq!(app.push(&event(openid, "subscribe", None, t + i)).await.status(), 200);
        assert_eq!(app.push(&text_message(openid, word, 8_100_000 + i as u64)).await.status(), 200);
    }
    for (i, openid) in ["o_oily_1", "o_oily_2", "o_dry_1"].into_iter().enumerate() {
        assert_eq!(app.push(&event(openid, "CLICK", Some("SKIN_TEST"), t + 100 + i as i64)).await.status(), 200);
    }
    assert_eq!(app.push(&event("o_gone", "unsubscribe", None, t + 200)).await.status(), 200);
    app.run_pending_jobs().await;
    let (status, segment) = app
        .api_post(
            "/segments",
            json!({ "name": "油皮点过测试", "expr": "\"肤质/油性\" AND clicked(\"SKIN_TEST\", 7d)" }),
        )
        .await;
    assert_eq!(status, 201, "{segment}");
    let (status, campaign) = app
        .api_post(
            "/campaigns",
            json!({ "name": "控油新品", "audience": { "tag": OILY }, "message": { "type": "text", "content": "控油系列上新" } }),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    (app, segment["id"].as_i64().expect("segment id"), campaign["id"].as_i64().expect("campaign id"))
}

/// Every page of the console, as (path, screenshot name).
fn pages(campaign: i64) -> Vec<(String, String)> {
    [
        ("/admin", "board"),
        ("/admin/tags", "tags"),
        ("/admin/rules", "rules"),
        ("/admin/quizzes", "quizzes"),
        ("/admin/quizzes?new=1", "quiz-new"),
        ("/admin/segments", "segments"),
        ("/admin/campaigns", "campaigns"),
        ("/admin/campaigns/new", "campaign-new"),
        ("/admin/campaigns/approvals", "approvals"),
        ("/admin/followers", "followers"),
        ("/admin/followers/o_oily_1", "follower"),
        ("/admin/simulator", "simulator"),
        ("/admin/testers", "testers"),
        ("/admin/predictions", "predictions"),
        ("/admin/intents", "intents"),
        ("/admin/playbook", "playbook"),
        ("/admin/audit", "audit"),
        ("/admin/accounts", "accounts"),
        ("/admin/users", "users"),
    ]
    .into_iter()
    .map(|(p, n)| (p.to_owned(), n.to_owned()))
    .chain([(format!("/admin/campaigns/{campaign}"), "campaign".to_owned())])
    .collect()
}

async fn displayed(client: &Client, css: &str) -> bool {
    client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).is_displayed().await.expect("shown?")
}

#[tokio::test]
async fn every_admin_page_fits_a_390px_phone_with_a_folded_nav_that_opens_and_shows_the_nav_at_1366px() {
    if chromium_missing() {
        return;
    }
    let (app, _, campaign) = seeded().await;
    let base = &app.address;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    client.set_window_size(390, 844).await.expect("phone width");
    client.goto(&format!("{base}/admin/login")).await.expect("login page");
    log_in(&client, "root").await;
    for (path, name) in pages(campaign) {
        client.goto(&format!("{base}{path}")).await.expect("page");
        wait_for_text(&client, ".top .me", "root").await;
        let overflow = sideways_overflow(&client).await;
        screenshot(&client, &format!("layout-390-{name}")).await;
        assert!(overflow <= 0, "{path} scrolls sideways by {overflow} px at 390 px");
        assert!(!displayed(&client, "#menu nav a[href='/admin/tags']").await, "{path}: the nav is folded on a phone");
        assert!(text_of(&client, "#menu > summary").await.contains("菜单"), "{path}: 菜单 opens it");
        click(&client, "#menu > summary").await;
        assert!(displayed(&client, "#menu nav a[href='/admin/tags']").await, "{path}: 菜单 opens the nav");
        assert!(sideways_overflow(&client).await <= 0, "{path}: the open nav fits too");
        screenshot(&client, &format!("layout-390-{name}-menu")).await;
    }
    client.set_window_size(1366, 900).await.expect("desktop width");
    for (path, name) in pages(campaign) {
        client.goto(&format!("{base}{path}")).await.expect("page");
        wait_for_text(&client, ".top .me", "root").await;
        assert!(displayed(&client, "#menu nav a[href='/admin/followers']").await, "{path}: the nav shows at 1366 px");
        assert!(!displayed(&client, "#menu > summary").await, "{path}: no 菜单 button on a wide screen");
        assert!(sideways_overflow(&client).await <= 0, "{path} fits 1366 px");
        screenshot(&client, &format!("layout-1366-{name}")).await;
    }
    client.close().await.expect("closed");
}

#[tokio::test]
async fn the_segment_builder_picks_a_tag_and_a_click_and_shows_the_expression_and_count_in_chromium() {
    if chromium_missing() {
        return;
    }
    let (app, _, _) = seeded().await;
    let base = &app.address;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    client.set_window_size(390, 844).await.expect("phone width");
    client.goto(&format!("{base}/admin/login")).await.expect("login page");
    log_in(&client, "olivia").await;
    client.goto(&format!("{base}/admin/segments")).await.expect("segments");
    // The first row is a tag condition; its field searches the account's tags.
    let tag = client.find(Locator::Css("input[name=g0r0_tag]")).await.expect("tag field");
    assert!(tag.is_displayed().await.expect("shown"), "a tag row shows the tag field");
    assert!(
        !displayed(&client, "input[name=g0r0_key]").await,
        "a tag row hides the fields it does not need (no script: :has)"
    );
    tag.send_keys(OILY).await.expect("typed");
    client
        .find(Locator::Css("select[name=g0r1_kind] option[value=clicked]"))
        .await
        .expect("clicked option")
        .click()
        .await
        .expect("chosen");
    assert!(displayed(&client, "input[name=g0r1_key]").await, "a click row shows the key field");
    let key = client.find(Locator::Css("input[name=g0r1_key]")).await.expect("key");
    key.send_keys("SKIN_TEST").await.expect("typed");
    let days = client.find(Locator::Css("input[name=g0r1_days]")).await.expect("days");
    days.clear().await.expect("cleared");
    days.send_keys("7").await.expect("typed");
    // The script recounts as the rows change; the button does the same without it.
    let wanted = r#""肤质/油性" AND clicked("SKIN_TEST", 7d)"#;
    let mut last = None;
    for _ in 0..100 {
        let box_ = client.find(Locator::Css("#segment-expr")).await.expect("box");
        last = box_.prop("value").await.expect("value");
        if last.as_deref() == Some(wanted) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last.as_deref(), Some(wanted), "the builder writes the expression into the box");
    wait_for_text(&client, "#segment-result", "2 人").await;
    screenshot(&client, "builder-live-390").await;
    // 再加一个条件 asks the server for a row, numbered after the others, the rows kept.
    click(&client, "#group-0 .add-row").await;
    crate::segment_groups::wait_for(&client, "select[name=g0r2_kind]").await;
    assert_eq!(client.find_all(Locator::Css("fieldset.cond")).await.expect("rows").len(), 3);
    assert!(client.find(Locator::Css("select[name=g0r2_kind]")).await.is_ok(), "the new row is g0r2");
    click(&client, "#builder-submit").await;
    wait_for_text(&client, "#segment-count", "2").await;
    assert_eq!(text_of(&client, "#segment-built").await, r#""肤质/油性" AND clicked("SKIN_TEST", 7d)"#);
    assert!(sideways_overflow(&client).await <= 0, "the builder fits a phone");
    screenshot(&client, "builder-submitted-390").await;
    // Tall enough for the rows and the count (the README shows it).
    client.set_window_size(390, 1500).await.expect("tall phone");
    let png = screenshot(&client, "builder-phone-tall").await;
    if std::env::var_os("TAGCAST_UPDATE_README_SCREENSHOT").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::write(docs.join("segments-phone.png"), png).expect("README screenshot written");
    }
    client.set_window_size(1366, 900).await.expect("desktop width");
    screenshot(&client, "builder-submitted-1366").await;
    client.close().await.expect("closed");
}

#[tokio::test]
async fn the_segment_builder_composes_groups_and_counts_without_javascript() {
    let (app, _, _) = seeded().await;
    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    let query = [
        ("groups_join", "or"),
        ("g0r0_kind", "tag"),
        ("g0r0_tag", OILY),
        ("g0_join", "and"),
        ("g0r1_kind", "clicked"),
        ("g0r1_key", "SKIN_TEST"),
        ("g0r1_days", "7"),
        ("g1r0_kind", "tag"),
        ("g1r0_tag", DRY),
        ("g1_join", "and"),
        ("g1r1_not", "1"),
        ("g1r1_kind", "orders"),
        ("g1r1_n", "1"),
        ("build", "1"),
    ];
    let encoded = serde_urlencoded::to_string(query).expect("query");
    let page = browser.get(&format!("/admin/segments?{encoded}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    // (oily AND clicked) OR (dry AND NOT ordered): o_oily_1, o_oily_2, o_dry_1.
    assert!(page.body.contains("id=\"segment-count\">3<"), "{}", page.body);
    let expected = r#""肤质/油性" AND clicked("SKIN_TEST", 7d) OR "肤质/干性" AND NOT orders(all) >= 1"#;
    let escaped = expected.replace('"', "&#34;").replace('>', "&#62;");
    assert!(
        page.body.contains(&format!("id=\"segment-expr\" spellcheck=\"false\">{escaped}<"))
            && page.body.contains(&format!("id=\"segment-built\">{escaped}<")),
        "the expression is written into the box and beside the count: {}",
        page.body
    );
    assert!(page.body.contains("由条件生成"));
    // The save form carries the composed expression; saving it works as typed ones do.
    let saved = browser.post("/admin/segments", &[("name", "油皮或干皮新客"), ("expr", expected)]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let (_, listed) = app.api_get("/segments/2").await;
    assert_eq!(listed["members"], 3, "{listed}");

    // One more row on request, rows kept as they were.
    let more =
        serde_urlencoded::to_string([("g0r0_kind", "tag"), ("g0r0_tag", OILY), ("add_row", "0")]).expect("query");
    let page = browser.get(&format!("/admin/segments?{more}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("name=\"g0r1_kind\""), "a second row was added: {}", page.body);
    assert!(!page.body.contains("name=\"g0r2_kind\""));
    assert!(page.body.contains(&format!("value=\"{OILY}\"")), "the first row is kept");

    // A row that cannot be a condition is named, in Chinese.
    let bad =
        serde_urlencoded::to_string([("g0r0_kind", "spent"), ("g0r0_yuan", "很多"), ("build", "1")]).expect("query");
    let page = browser.get(&format!("/admin/segments?{bad}")).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("第 1 组第 1 个条件：金额请填不小于 0 的数字"), "{}", page.body);

    // The live count the script asks for answers the same composition.
    let live = browser.get(&format!("/admin/segments/count?{encoded}")).await;
    let live: serde_json::Value = serde_json::from_str(&live.body).expect("json");
    assert_eq!(live, json!({ "members": 3, "expr": expected }));
}

#[tokio::test]
async fn an_unknown_tag_is_refused_with_the_nearest_existing_one_in_the_console_and_the_api() {
    let (app, _, _) = seeded().await;
    let typo = "\"肤质/油型\" AND orders(all) = 0";
    let suggestion = "没有标签「肤质/油型」，是不是「肤质/油性」？";

    let (status, body) = app.api_post("/segments/preview", json!({ "expr": typo })).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_expression");
    assert_eq!(body["error"]["message"], suggestion);
    assert_eq!(body["error"]["tag"], "肤质/油型");
    assert_eq!(body["error"]["suggestion"], OILY);
    assert_eq!(body["error"]["position"], 1);
    let (status, body) = app.api_post("/segments", json!({ "name": "错字", "expr": typo })).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.api_post("/segments", json!({ "name": "没这个", "expr": "\"地区/火星\"" })).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["suggestion"], serde_json::Value::Null);
    assert_eq!(app.count("SELECT count(*) FROM segments").await, 1, "only the seeded segment");

    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    let encoded = serde_urlencoded::to_string([("expr", typo)]).expect("query");
    let page = browser.get(&format!("/admin/segments?{encoded}")).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains(suggestion), "{}", page.body);
    assert!(page.body.contains("<mark>&#34;肤质/油型&#34;</mark>"), "the tag is marked: {}", page.body);
    assert!(!page.body.contains("id=\"segment-count\""), "no count for a misspelt tag");
    let saved = browser.post("/admin/segments", &[("name", "错字"), ("expr", typo)]).await;
    assert_eq!(saved.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(saved.body.contains(suggestion));
    let live = browser.get(&format!("/admin/segments/count?{encoded}")).await;
    let live: serde_json::Value = serde_json::from_str(&live.body).expect("json");
    assert_eq!(live["message"], suggestion);
    assert_eq!(app.count("SELECT count(*) FROM segments").await, 1);
}

#[tokio::test]
async fn followers_are_filtered_by_tag_and_by_segment_with_their_total() {
    let (app, segment, _) = seeded().await;
    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = browser.get(&format!("/admin/followers?tag={}", urlencode(OILY))).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("标签「肤质/油性」：共 <strong>4</strong> 位已关注粉丝"), "{}", page.body);
    for openid in ["o_oily_1", "o_oily_2", "o_oily_3", "o_oily_4"] {
        assert!(page.body.contains(&format!(">{openid}</code>")), "{openid} listed");
    }
    assert!(!page.body.contains(">o_gone</code>") && !page.body.contains(">o_dry_1</code>"));
    assert!(!page.body.contains("id=\"export-csv\""), "an operator gets no export button");

    let page = browser.get(&format!("/admin/followers?segment={segment}")).await;
    assert!(page.body.contains("人群「油皮点过测试」：共 <strong>2</strong> 位已关注粉丝"), "{}", page.body);
    assert!(page.body.contains(">o_oily_1</code>") && page.body.contains(">o_oily_2</code>"));
    assert!(!page.body.contains(">o_oily_3</code>"));
    assert!(page.body.contains(&format!("<option value=\"{segment}\" selected>")), "the filter stays chosen");

    let page = browser.get(&format!("/admin/followers?tag={}", urlencode("肤质/油型"))).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("没有标签「肤质/油型」，是不是「肤质/油性」？"), "{}", page.body);
}

#[tokio::test]
async fn a_segment_exports_as_csv_for_an_approver_with_an_audit_row_and_an_operator_is_told_why_not() {
    let (app, segment, _) = seeded().await;
    let mut amy = Browser::log_in(&app, "amy", PASSWORD).await;
    let page = amy.get(&format!("/admin/followers?segment={segment}")).await;
    assert!(page.body.contains(&format!("href=\"/admin/followers/export?segment={segment}\"")), "{}", page.body);
    let csv = amy.get(&format!("/admin/followers/export?segment={segment}")).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
    let mut lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.remove(0), "openid");
    lines.sort_unstable();
    assert_eq!(lines, ["o_oily_1", "o_oily_2"]);
    let tag_csv = amy.get(&format!("/admin/followers/export?tag={}", urlencode(OILY))).await;
    assert_eq!(tag_csv.body.lines().count(), 5, "{}", tag_csv.body);
    let rows = app
        .query(
            "SELECT actor, object_kind, object_id, detail::text FROM audit_log WHERE action = 'export' ORDER BY id",
            &[],
        )
        .await;
    let rows: Vec<(String, String, String, String)> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0].0.as_str(), rows[0].1.as_str(), rows[0].2.clone()), ("amy", "segment", segment.to_string()));
    assert!(rows[0].3.contains("\"followers\": 2"), "{rows:?}");
    assert_eq!((rows[1].1.as_str(), rows[1].2.as_str()), ("tag", OILY));

    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;
    let refused = olivia.get(&format!("/admin/followers/export?segment={segment}")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("只有管理员和审批人可以导出粉丝名单"), "{}", refused.body);
    assert!(refused.body.contains("你的角色是「运营」"));
    assert!(!refused.body.contains("o_oily_1\n"), "no openids in the refusal");
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'export'").await,
        2,
        "a refusal exports nothing"
    );
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn a_tag_is_created_under_a_parent_picked_from_the_tree_and_a_rule_picks_its_tags() {
    let (app, _, _) = seeded().await;
    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = browser.get("/admin/tags").await;
    assert!(page.body.contains("<option value=\"肤质\""), "the first level is offered as a parent: {}", page.body);
    assert!(page.body.contains("<option value=\"肤质/油性\""), "a tag can take children (three levels)");
    let created = browser.post("/admin/tags", &[("parent", "肤质"), ("path", "混合性"), ("local_only", "on")]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let typed_in_full =
        browser.post("/admin/tags", &[("parent", "肤质"), ("path", "肤质/敏感"), ("local_only", "on")]).await;
    assert_eq!(typed_in_full.status, StatusCode::SEE_OTHER, "a full path under the same parent is kept as typed");
    let (_, tags) = app.api_get("/tags").await;
    let paths: Vec<&str> = tags.as_array().expect("tags").iter().filter_map(|t| t["path"].as_str()).collect();
    assert!(paths.contains(&"肤质/混合性") && paths.contains(&"肤质/敏感"), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains("肤质/肤质")), "{paths:?}");

    let page = browser.get("/admin/rules").await;
    assert!(page.body.contains("<optgroup label=\"肤质\">"), "tags grouped by first level: {}", page.body);
    let rule = browser
        .post("/admin/rules", &[("on", "click"), ("key", "MIX"), ("add_pick", "肤质/混合性"), ("remove_pick", DRY)])
        .await;
    assert_eq!(rule.status, StatusCode::SEE_OTHER, "{}", rule.body);
    let rows = app.query("SELECT add_tags::text, remove_tags::text FROM rules WHERE key = 'MIX'", &[]).await;
    let (add, remove): (String, String) = (rows[0].get(0), rows[0].get(1));
    assert!(add.contains("肤质/混合性") && remove.contains(DRY), "{add} / {remove}");
}
