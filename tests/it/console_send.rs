//! Issue 20, points 2 and 3: the audience a send reaches is shown before it goes out (compose
//! page, campaign page, a confirmation naming the number of followers), the counts after it are
//! explained and add up, and what the console says about bad input or a WeChat refusal is
//! Chinese, with no English sentence on the page.

use reqwest::StatusCode;
use serde_json::json;

use crate::admin_browser::{
    browser, chromium_missing, click, fill, log_in, screenshot, start_driver, text_of, wait_for_text,
};
use crate::admin_pages::{Browser, PASSWORD, app_for_campaigns, compose, status_of};
use crate::support::app::TestApp;
use crate::support::english::assert_no_english;
use tagcast::mock_wechat::MassOutcome;

const SENSITIVE: &str = "敏感/价格敏感";

/// Marks `openid` as having had WeChat's 4 mass messages this (Beijing) month, as the send path
/// records them.
async fn at_monthly_limit(app: &TestApp, openid: &str) {
    app.query(
        "INSERT INTO follower_mass_receipts (account_id, openid, month, count)
         VALUES (1, $1, date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai')::date, 4)",
        &[&openid],
    )
    .await;
}

/// The number shown in the element with `id`.
fn number(body: &str, id: &str) -> i64 {
    let start = body.find(&format!("id=\"{id}\">")).unwrap_or_else(|| panic!("no #{id} in {body}")) + id.len() + 6;
    body[start..body[start..].find('<').map_or(body.len(), |n| start + n)].trim().parse().expect("a number")
}

/// Composes a draft to every follower; returns its id.
async fn compose_to_all(browser: &mut Browser, name: &str) -> i64 {
    browser.get("/admin/campaigns/new").await;
    let page = browser
        .post(
            "/admin/campaigns",
            &[
                ("name", name),
                ("audience", "all"),
                ("confirm_all", "on"),
                ("kind", "text"),
                ("content", "本周新品上架"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    page.location.expect("to the campaign").trim_start_matches("/admin/campaigns/").parse().expect("an id")
}

#[tokio::test]
async fn the_compose_page_counts_the_audience_now_per_variant_with_the_filtered_and_sensitive_tags() {
    let (app, fans) = app_for_campaigns().await;
    at_monthly_limit(&app, &fans[0]).await;
    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    operator.get("/admin/campaigns/new").await;

    let page = operator
        .post(
            "/admin/campaigns",
            &[
                ("name", ""),
                ("audience", "tag"),
                ("tag", SENSITIVE),
                ("kind", "text"),
                ("content", "专属优惠"),
                ("variant_name_1", "B 文案"),
                ("variant_body_1", "另一种说法"),
                ("action", "count"),
            ],
        )
        .await;

    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("将发送给 3 位粉丝（其中 1 位本月已收满 4 条群发，将被微信过滤，预计送达 2 位）"),
        "{}",
        page.body
    );
    assert_eq!(number(&page.body, "reach-total"), 3);
    assert_eq!(number(&page.body, "reach-at-limit"), 1);
    let groups = &page.body[page.body.find("id=\"reach-groups\"").expect("per variant")..];
    assert!(groups.contains("对照") && groups.contains("方案 1「B 文案」"), "{groups}");
    let sensitive = &page.body[page.body.find("id=\"reach-sensitive\"").expect("sensitive tags")..];
    assert!(sensitive[..sensitive.find("</dd>").expect("end")].contains(SENSITIVE), "{sensitive}");
    assert!(page.body.contains("近 30 天已群发 0 次，上限 4 次"), "the tag's monthly count: {}", page.body);
    assert!(page.body.contains("value=\"另一种说法\"") || page.body.contains(">另一种说法<"), "the form is kept");
    assert_eq!(app.count("SELECT count(*) FROM campaigns").await, 0, "counting saves nothing");
    assert_no_english("the compose page with counts", &page.body);

    // Everyone, and a saved segment, are counted the same way.
    let page =
        operator.post("/admin/campaigns", &[("audience", "all"), ("confirm_all", "on"), ("action", "count")]).await;
    assert_eq!(number(&page.body, "reach-total"), 5, "{}", page.body);
    let (status, body) =
        app.api_post("/segments", json!({"name": "价格敏感", "expr": format!("\"{SENSITIVE}\"")})).await;
    assert_eq!(status, 201, "{body}");
    let segment = body["id"].as_i64().expect("segment id").to_string();
    let page =
        operator.post("/admin/campaigns", &[("audience", "segment"), ("segment", &segment), ("action", "count")]).await;
    assert_eq!(number(&page.body, "reach-total"), 3, "{}", page.body);
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn sending_asks_first_naming_the_followers_and_only_the_confirmation_sends() {
    let (app, fans) = app_for_campaigns().await;
    at_monthly_limit(&app, &fans[4]).await;
    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    let id = compose_to_all(&mut operator, "新品通知").await;

    // The draft shows whom it would reach now, not a 目标人数 of 0.
    let page = operator.get(&format!("/admin/campaigns/{id}")).await;
    assert_eq!(number(&page.body, "reach-total"), 5, "{}", page.body);
    assert!(page.body.contains("尚未发送：发送后这里显示"), "{}", page.body);
    assert!(!page.body.contains("id=\"count-target\""), "no WeChat count before the send");
    assert_no_english("the draft's page", &page.body);

    let page = operator.post(&format!("/admin/campaigns/{id}/send"), &[("shown_status", "draft")]).await;

    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains(
            "现在将发送给 5 位粉丝（其中 1 位本月已收满 4 条群发，将被微信过滤，预计送达 4 位）。确认发送吗？"
        ),
        "{}",
        page.body
    );
    assert!(page.body.contains("name=\"confirmed\" value=\"1\"") && page.body.contains("确认发送</button>"));
    assert_no_english("the confirmation page", &page.body);
    app.run_pending_jobs().await;
    assert_eq!(status_of(&app, id).await, "draft", "asking changes nothing");
    assert!(app.wechat.mass_jobs().is_empty(), "WeChat saw no send");
    assert_eq!(app.count("SELECT count(*) FROM campaign_tag_sends").await, 0);

    let page =
        operator.post(&format!("/admin/campaigns/{id}/send"), &[("shown_status", "draft"), ("confirmed", "1")]).await;

    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    app.run_pending_jobs().await;
    app.wechat.wait_for_callbacks().await;
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.mass_jobs().len(), 1);
    assert_eq!(status_of(&app, id).await, "sent");

    // A scheduled send names its time in the question.
    operator.get("/admin/campaigns/new").await;
    let page = operator
        .post(
            "/admin/campaigns",
            &[
                ("name", "定时通知"),
                ("audience", "all"),
                ("confirm_all", "on"),
                ("kind", "text"),
                ("content", "明年见"),
                ("send_at", "2099-01-01T09:30"),
                ("action", "save"),
            ],
        )
        .await;
    let later = page.location.expect("to the campaign");
    let page = operator.post(&format!("{later}/send"), &[("shown_status", "draft")]).await;
    assert!(page.body.contains("将在 2099-01-01 09:30 定时发送给 5 位粉丝"), "{}", page.body);
}

#[tokio::test]
async fn after_masssendjobfinish_each_count_is_explained_and_they_add_up() {
    let (app, fans) = app_for_campaigns().await;
    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    let id = compose_to_all(&mut operator, "全员通知").await;
    // WeChat's view differs from tagcast's: one follower left on WeChat only, one not reached.
    app.wechat.unsubscribe(&fans[4]);
    app.wechat.set_next_mass_outcome(MassOutcome { error_count: 1, ..MassOutcome::default() });
    operator.get(&format!("/admin/campaigns/{id}")).await;
    operator.post(&format!("/admin/campaigns/{id}/send"), &[("shown_status", "draft"), ("confirmed", "1")]).await;
    app.run_pending_jobs().await;
    app.wechat.wait_for_callbacks().await;
    app.run_pending_jobs().await;

    let page = operator.get(&format!("/admin/campaigns/{id}")).await;

    let (recipients, target, sent, filtered, failed) = (
        number(&page.body, "count-recipients"),
        number(&page.body, "count-target"),
        number(&page.body, "count-sent"),
        number(&page.body, "count-filtered"),
        number(&page.body, "count-failed"),
    );
    assert_eq!((recipients, target, sent, filtered, failed), (5, 4, 3, 0, 1), "{}", page.body);
    assert_eq!(target, sent + filtered + failed, "the counts add up");
    assert!(page.body.contains("目标人数 4 = 送达 3 + 被过滤 0 + 失败 1"), "{}", page.body);
    assert!(
        page.body.contains("收件人 5 与目标人数 4 相差 1：按标签或全部粉丝群发时"),
        "why they differ: {}",
        page.body
    );
    let lines = &page.body[page.body.find("id=\"count-lines\"").expect("one line per count")..];
    for label in [
        "收件人 5</strong>：",
        "目标人数 4</strong>：",
        "送达 3</strong>：",
        "被过滤 0</strong>：",
        "失败 1</strong>：",
    ] {
        assert!(lines.contains(label), "{label} is explained: {lines}");
    }
    assert!(!page.body.contains("id=\"audience-reach\""), "after the send the live count gives way to WeChat's");
    assert_no_english("a sent campaign's page", &page.body);
}

#[tokio::test]
async fn bad_input_and_wechat_refusals_read_in_chinese_with_no_english_sentence() {
    let (app, fans) = app_for_campaigns().await;
    let mut admin = Browser::log_in(&app, "root", PASSWORD).await;

    // Segment expressions with typos.
    admin.get("/admin/segments").await;
    for (expr, says) in [
        (format!("\"{SENSITIVE}\" ANDD orders(30d) >= 1"), "是不是想写 AND"),
        ("click(\"MENU\", 7d) >= 1".to_owned(), "是不是想写 clicked"),
        ("orders(30d) >=".to_owned(), "后面应是数字，却是 表达式结尾"),
        ("“肤质/油性”".to_owned(), "请用英文双引号"),
        ("orders(7天) >= 1".to_owned(), "时间范围 7天 写法不对"),
        ("spent(30d) >= 1.234".to_owned(), "超过 2 位小数"),
    ] {
        let page = admin.post("/admin/segments", &[("name", "试试"), ("expr", &expr)]).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{expr}");
        assert!(page.body.contains(says), "{expr}: {}", page.body);
        assert_no_english(&format!("segment {expr}"), &page.body);
    }

    // Quizzes: TOML that does not parse, JSON that does not, and a quiz that does not add up.
    admin.get("/admin/quizzes").await;
    for (format, source, says) in [
        ("toml", "id = \"skin\"\n[[question]]\ntext = \n", "TOML 无法解析，第 3 行"),
        ("toml", "id = \"skin\"\ncolour = \"red\"\n", "不认识的项 `colour`"),
        ("json", "{\"id\": \"skin\",}", "JSON 无法解析，第 1 行"),
        (
            "toml",
            "id = \"skin\"\n[[question]]\ntext = \"?\"\noptions = [{ label = \"A\", text = \"a\" }]\n",
            "至少需要 2 个选项",
        ),
    ] {
        let page = admin.post("/admin/quizzes", &[("source", source), ("format", format), ("action", "save")]).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{source}");
        assert!(page.body.contains(says), "{source}: {}", page.body);
        assert_no_english(&format!("quiz {source}"), &page.body);
    }

    // Rules, a playbook and a tag path.
    admin.get("/admin/rules").await;
    for (form, says) in [
        (vec![("on", "location"), ("key", "39.9,北京,5"), ("reply", "你好")], "不是数字"),
        (vec![("on", "location"), ("key", "91,0,5"), ("reply", "你好")], "不是地球上的位置"),
        (vec![("on", "click"), ("key", "K")], "规则至少要做一件事"),
    ] {
        let page = admin.post("/admin/rules", &form).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{form:?}");
        assert!(page.body.contains(says), "{form:?}: {}", page.body);
        assert_no_english(&format!("rule {form:?}"), &page.body);
    }
    admin.get("/admin/playbook").await;
    let page = admin
        .post("/admin/playbook/import", &[("source", "[[tag]]\npath = \"a//b\"\nsensitiv = true\n[[rule]\n")])
        .await;
    assert!(page.body.contains("第 "), "{}", page.body);
    assert_no_english("a bad playbook", &page.body);

    // Campaigns and users.
    admin.get("/admin/campaigns/new").await;
    let page = admin
        .post(
            "/admin/campaigns",
            &[
                ("name", "x"),
                ("audience", "tag"),
                ("tag", SENSITIVE),
                ("kind", "text"),
                ("content", "x"),
                ("send_at", "明天"),
            ],
        )
        .await;
    assert!(page.body.contains("无法识别"), "{}", page.body);
    assert_no_english("a bad campaign", &page.body);
    admin.get("/admin/users").await;
    for name in ["a b", "小\u{3000}王", "\u{430}lice", &"王".repeat(21)] {
        let page =
            admin.post("/admin/users", &[("username", name), ("password", PASSWORD), ("role", "operator")]).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        assert!(page.body.contains("用户名需 1–20 个汉字"), "{name:?}: {}", page.body);
        assert_no_english(&format!("user {name:?}"), &page.body);
    }

    // A preview WeChat refuses (not a follower), and a send it refuses with an errcode.
    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    let id = compose_to_all(&mut operator, "会失败的群发").await;
    let page = operator.post(&format!("/admin/campaigns/{id}/preview"), &[("openids", "o_stranger")]).await;
    assert!(page.body.contains("微信返回错误码 40003"), "{}", page.body);
    assert_no_english("a refused preview", &page.body);
    app.wechat.fail_next("/cgi-bin/message/mass/sendall", 10, 48001);
    operator.post(&format!("/admin/campaigns/{id}/send"), &[("shown_status", "draft"), ("confirmed", "1")]).await;
    app.run_pending_jobs().await;
    let page = operator.get(&format!("/admin/campaigns/{id}")).await;
    assert!(page.body.contains("微信返回错误码 48001：公众号没有这个接口的权限"), "{}", page.body);
    assert_no_english("a campaign WeChat refused", &page.body);
    assert_eq!(status_of(&app, id).await, "failed");
    assert!(!fans.is_empty());
}

#[tokio::test]
async fn a_chinese_login_name_can_be_created_and_signs_in() {
    let (app, _) = app_for_campaigns().await;
    let mut admin = Browser::log_in(&app, "root", PASSWORD).await;
    admin.get("/admin/users").await;

    // Typed with a trailing space: stored and signed in as the same name.
    let page =
        admin.post("/admin/users", &[("username", "运营小王 "), ("password", PASSWORD), ("role", "operator")]).await;

    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let stored: String = app.query("SELECT username FROM admins WHERE username LIKE '运营%'", &[]).await[0].get(0);
    assert_eq!(stored, "运营小王");
    let mut wang = Browser::log_in(&app, "运营小王", PASSWORD).await;
    let page = wang.get("/admin/campaigns").await;
    assert!(page.body.contains("运营小王"), "{}", page.body);
    let _ = compose(&mut wang, "小王的群发", SENSITIVE, "你好").await;
}

#[tokio::test]
async fn in_a_browser_compose_counts_then_sending_asks_before_it_sends() {
    if chromium_missing() {
        return;
    }
    let (app, fans) = app_for_campaigns().await;
    at_monthly_limit(&app, &fans[1]).await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let base = app.address.clone();
    client.goto(&format!("{base}/admin/login")).await.expect("login page");
    log_in(&client, "olivia").await;
    client.goto(&format!("{base}/admin/campaigns/new")).await.expect("compose");
    fill(&client, "input[name=name]", "周末上新").await;
    click(&client, "input[name=audience][value=all]").await;
    click(&client, "input[name=confirm_all]").await;
    fill(&client, "textarea[name=content]", "周末上新，全场 8 折").await;

    click(&client, "#count-button").await;

    wait_for_text(&client, "#reach-headline", "将发送给 5 位粉丝").await;
    assert!(text_of(&client, "#reach-headline").await.contains("其中 1 位本月已收满 4 条群发"));
    assert_eq!(
        client
            .find(fantoccini::Locator::Css("input[name=name]"))
            .await
            .expect("name")
            .prop("value")
            .await
            .expect("value")
            .as_deref(),
        Some("周末上新"),
        "the form keeps what was typed"
    );
    screenshot(&client, "console-send-compose-count").await;
    // With JavaScript, changing the audience marks the figures out of date.
    click(&client, "input[name=audience][value=tag]").await;
    wait_for_text(&client, "#reach-stale", "人数已过期").await;
    click(&client, "input[name=audience][value=all]").await;
    click(&client, "#save-button").await;
    wait_for_text(&client, ".flash", "周末上新").await;
    assert_eq!(text_of(&client, "#reach-total").await, "5");
    screenshot(&client, "console-send-draft").await;
    click(&client, "#send-button").await;
    wait_for_text(&client, "#confirm-question", "将发送给 5 位粉丝").await;
    screenshot(&client, "console-send-confirm").await;
    assert!(app.wechat.mass_jobs().is_empty(), "nothing went out before confirming");
    client.set_window_size(390, 844).await.expect("phone width");
    screenshot(&client, "console-send-confirm-390").await;
    client.set_window_size(1280, 1000).await.expect("desktop width");
    click(&client, "#confirm-send-button").await;
    wait_for_text(&client, ".flash", "已开始发送给 5 位粉丝").await;
    app.run_pending_jobs().await;
    app.wechat.wait_for_callbacks().await;
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.mass_jobs().len(), 1);
    client.refresh().await.expect("reload");
    wait_for_text(&client, "#count-sum", "目标人数 5 = 送达 5").await;
    client
        .execute("document.querySelector('#campaign-counts').scrollIntoView();", vec![])
        .await
        .expect("scrolled to the counts");
    screenshot(&client, "console-send-counts").await;
    client.close().await.expect("closed");
}
