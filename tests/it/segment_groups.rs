//! Issue 20, point 4: the segment builder's groups (AND/OR/NOT of groups) composed on the server
//! and counted against real followers, a typed or saved expression loaded back into the groups
//! (or refused in Chinese when it has another shape), and the same in Chromium at 1366 and 390 px.

use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::json;

use crate::admin_browser::{browser, chromium_missing, click, log_in, screenshot, sideways_overflow, start_driver};
use crate::admin_pages::{Browser, PASSWORD};
use crate::console_layout::seeded;
use crate::support::app::{TestApp, event, now, spawn_app, text_message};
use crate::support::english::assert_no_english;

/// Tags 组/甲, 组/乙, 组/丙 put on followers by keyword rules: f_ac (甲 丙), f_bc (乙 丙),
/// f_c1 and f_c2 (丙), f_a (甲), f_none. `NOT (甲 OR 乙) AND 丙` is f_c1 and f_c2.
async fn tagged_followers() -> TestApp {
    let app = spawn_app().await;
    app.create_admin("olivia", PASSWORD, "operator").await;
    for (word, path) in [("甲", "组/甲"), ("乙", "组/乙"), ("丙", "组/丙")] {
        let (status, body) = app.api_post("/tags", json!({ "path": path, "wechat": false })).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = app.api_post("/rules", json!({ "on": "keyword", "key": word, "add": [path] })).await;
        assert_eq!(status, 201, "{body}");
    }
    let t = now() - 3_600;
    let mut msg_id = 9_100_000;
    for (i, (openid, words)) in [
        ("f_ac", &["甲", "丙"][..]),
        ("f_bc", &["乙", "丙"]),
        ("f_c1", &["丙"]),
        ("f_c2", &["丙"]),
        ("f_a", &["甲"]),
        ("f_none", &[]),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(app.push(&event(openid, "subscribe", None, t + i as i64)).await.status(), 200);
        for word in words {
            msg_id += 1;
            assert_eq!(app.push(&text_message(openid, word, msg_id)).await.status(), 200);
        }
    }
    app.run_pending_jobs().await;
    app
}

/// `NOT ("组/甲" OR "组/乙") AND "组/丙"` as the builder's form fields.
const NOT_A_OR_B_AND_C: [(&str, &str); 9] = [
    ("groups_join", "and"),
    ("g0_join", "or"),
    ("g0_not", "1"),
    ("g0r0_kind", "tag"),
    ("g0r0_tag", "组/甲"),
    ("g0r1_kind", "tag"),
    ("g0r1_tag", "组/乙"),
    ("g1r0_kind", "tag"),
    ("g1r0_tag", "组/丙"),
];

const EXPECTED: &str = r#"NOT ("组/甲" OR "组/乙") AND "组/丙""#;

fn escaped(text: &str) -> String {
    text.replace('"', "&#34;").replace('>', "&#62;")
}

#[tokio::test]
async fn groups_compose_not_a_or_b_and_c_and_count_the_seeded_followers() {
    let app = tagged_followers().await;
    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    let query = serde_urlencoded::to_string([&NOT_A_OR_B_AND_C[..], &[("build", "1")]].concat()).expect("query");
    let page = browser.get(&format!("/admin/segments?{query}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(&format!("id=\"segment-built\">{}<", escaped(EXPECTED))), "{}", page.body);
    assert!(page.body.contains("id=\"segment-count\">2<"), "f_c1 and f_c2: {}", page.body);
    assert!(page.body.contains("name=\"g0_not\" value=\"1\" checked"), "the group stays excluded");
    assert_no_english("the segments page with groups", &page.body);

    // The live count composes the same fields to the same text and number.
    let live = browser.get(&format!("/admin/segments/count?{query}")).await;
    let live: serde_json::Value = serde_json::from_str(&live.body).expect("json");
    assert_eq!(live, json!({ "members": 2, "expr": EXPECTED }));
    // Joined by 满足任一组 instead: everyone tagged 丙 or with neither 甲 nor 乙.
    let either = query.replace("groups_join=and", "groups_join=or");
    let live = browser.get(&format!("/admin/segments/count?{either}")).await;
    let live: serde_json::Value = serde_json::from_str(&live.body).expect("json");
    assert_eq!(live, json!({ "members": 5, "expr": r#"NOT ("组/甲" OR "组/乙") OR "组/丙""# }));

    // A wrong row is named by its group and place.
    let bad = serde_urlencoded::to_string(
        [&NOT_A_OR_B_AND_C[..], &[("g1r2_kind", "orders"), ("g1r2_days", "0"), ("build", "1")]].concat(),
    )
    .expect("query");
    let page = browser.get(&format!("/admin/segments?{bad}")).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("第 2 组第 3 个条件：天数请填 1–3650 的整数"), "{}", page.body);

    // Buttons, without script: a group added, a row removed, a group removed.
    let add = serde_urlencoded::to_string([&NOT_A_OR_B_AND_C[..], &[("add_group", "1")]].concat()).expect("query");
    let page = browser.get(&format!("/admin/segments?{add}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("name=\"g2r0_kind\"") && !page.body.contains("name=\"g3r0_kind\""));
    assert!(page.body.contains(&format!("id=\"segment-built\">{}<", escaped(EXPECTED))), "a blank group adds nothing");
    let remove =
        serde_urlencoded::to_string([&NOT_A_OR_B_AND_C[..], &[("remove_row", "0.0")]].concat()).expect("query");
    let page = browser.get(&format!("/admin/segments?{remove}")).await;
    let fewer = escaped(r#"NOT "组/乙" AND "组/丙""#);
    assert!(page.body.contains(&format!("id=\"segment-built\">{fewer}<")), "{}", page.body);
    let remove =
        serde_urlencoded::to_string([&NOT_A_OR_B_AND_C[..], &[("remove_group", "0")]].concat()).expect("query");
    let page = browser.get(&format!("/admin/segments?{remove}")).await;
    assert!(page.body.contains("id=\"segment-count\">4<"), "only 丙 is left: {}", page.body);
    assert!(!page.body.contains("name=\"g1r0_kind\""), "the groups are renumbered");

    // Saved, then opened from the list: the groups come back filled.
    let saved = browser.post("/admin/segments", &[("name", "只有丙"), ("expr", EXPECTED)]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let list = browser.get("/admin/segments").await;
    let start = list.body.find("href=\"/admin/segments?expr=").unwrap_or_else(|| panic!("a link in {}", list.body));
    let href = list.body[start + 6..].split('"').next().expect("href").replace("&amp;", "&");
    let page = browser.get(&href).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"builder-loaded\""), "{}", page.body);
    for filled in [
        "name=\"g0_not\" value=\"1\" checked",
        "name=\"g0r0_tag\" value=\"组/甲\"",
        "name=\"g0r1_tag\" value=\"组/乙\"",
        "name=\"g1r0_tag\" value=\"组/丙\"",
        "<option value=\"or\" selected>任一满足</option>",
    ] {
        assert!(page.body.contains(filled), "{filled}: {}", page.body);
    }
    assert!(page.body.contains("id=\"segment-count\">2<"));
}

#[tokio::test]
async fn a_typed_expression_loads_into_the_groups_or_is_left_in_the_text_box_with_the_reason() {
    let (app, _, _) = seeded().await;
    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    let typed = r#"("肤质/油性" OR "肤质/干性") AND NOT clicked("SKIN_TEST", 7d) AND spent(90d) >= 0.5"#;
    let page =
        browser.get(&format!("/admin/segments?{}", serde_urlencoded::to_string([("expr", typed)]).unwrap())).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for filled in [
        "name=\"g0r0_tag\" value=\"肤质/油性\"",
        "name=\"g0r1_tag\" value=\"肤质/干性\"",
        "name=\"g1r0_not\" value=\"1\" checked",
        "name=\"g1r0_key\" value=\"SKIN_TEST\"",
        "name=\"g1r0_days\" value=\"7\"",
        "name=\"g1r1_days\" value=\"90\"",
        "name=\"g1r1_yuan\" value=\"0.5\"",
    ] {
        assert!(page.body.contains(filled), "{filled}: {}", page.body);
    }
    // Composing what was loaded gives the typed text back.
    let live = browser.get(&format!("/admin/segments/count?build=1&{}", loaded_fields(&page.body))).await;
    let live: serde_json::Value = serde_json::from_str(&live.body).expect("json");
    assert_eq!(live["expr"], typed, "{live}");

    for (typed, why) in [
        (r#""肤质/油性" AND ("肤质/干性" OR "状态/已购" AND orders(all) >= 1)"#, "这个表达式嵌套超过两层"),
        ("orders(30d) = 0", "条件里只能表示「至少」（>=），请在文本框中编辑（可改写成 NOT … >= 1）"),
        (r#"clicked("SKIN_TEST", 24h)"#, "按小时计"),
    ] {
        let page =
            browser.get(&format!("/admin/segments?{}", serde_urlencoded::to_string([("expr", typed)]).unwrap())).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("id=\"builder-note\""), "{typed}: {}", page.body);
        assert!(page.body.contains(&escaped(why)), "{typed}: {}", page.body);
        assert!(page.body.contains("id=\"segment-count\""), "the typed text is still counted");
        assert!(!page.body.contains("id=\"builder-loaded\""));
        assert_no_english(typed, &page.body);
    }
}

/// The builder's fields as the page filled them (checked boxes and selected options included),
/// as a query, the way the browser would submit them.
fn loaded_fields(body: &str) -> String {
    let form = &body[body.find("id=\"segment-builder\"").expect("builder")..];
    let form = &form[..form.find("</form>").expect("form end")];
    let attr = |tag: &str, name: &str| {
        let needle = format!("{name}=\"");
        tag.find(&needle).map(|i| tag[i + needle.len()..].split('"').next().unwrap_or_default().to_owned())
    };
    let mut pairs = Vec::new();
    let mut select: Option<String> = None;
    for tag in form.split('<').skip(1) {
        if tag.starts_with("select") {
            select = attr(tag, "name");
        } else if tag.starts_with("option") && tag.contains(" selected") {
            if let (Some(name), Some(value)) = (&select, attr(tag, "value")) {
                pairs.push((name.clone(), value));
            }
        } else if tag.starts_with("input") && (!tag.contains("type=\"checkbox\"") || tag.contains(" checked")) {
            if let (Some(name), Some(value)) = (attr(tag, "name"), attr(tag, "value")) {
                if name != "name" {
                    pairs.push((name, value.replace("&#34;", "\"")));
                }
            }
        }
    }
    serde_urlencoded::to_string(pairs).expect("query")
}

/// Waits (up to 10 s) for an element to exist: a button that submits returns before the next page.
pub(crate) async fn wait_for(client: &Client, css: &str) {
    for _ in 0..100 {
        if client.find(Locator::Css(css)).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{css} never appeared");
}

/// Waits for the expression box to read `wanted`, as the script writes it.
async fn wait_for_expr(client: &Client, wanted: &str) {
    let mut last = None;
    for _ in 0..100 {
        let field = client.find(Locator::Css("#segment-expr")).await.expect("box");
        last = field.prop("value").await.expect("value");
        if last.as_deref() == Some(wanted) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the box never read {wanted:?}; last: {last:?}");
}

async fn choose(client: &Client, css: &str) {
    client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.expect("chosen");
}

async fn wait_for_count(client: &Client, members: i64) {
    crate::admin_browser::wait_for_text(client, "#segment-result", &format!("：{members} 人")).await;
}

#[tokio::test]
async fn a_second_group_is_added_and_negated_with_the_live_count_in_chromium_at_1366_and_390_px() {
    if chromium_missing() {
        return;
    }
    let (app, _, _) = seeded().await;
    let base = &app.address;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    client.goto(&format!("{base}/admin/login")).await.expect("login page");
    log_in(&client, "olivia").await;
    for (width, height) in [(1366, 900), (390, 844)] {
        client.set_window_size(width, height).await.expect("size");
        client.goto(&format!("{base}/admin/segments")).await.expect("segments");
        let tag = client.find(Locator::Css("input[name=g0r0_tag]")).await.expect("tag field");
        tag.send_keys("肤质/油性").await.expect("typed");
        wait_for_expr(&client, r#""肤质/油性""#).await;
        wait_for_count(&client, 4).await;

        // 新增一组 is the server's: the page comes back with a second, blank group.
        click(&client, "#builder-add-group").await;
        wait_for(&client, "#group-1").await;
        assert_eq!(
            client.find(Locator::Css("input[name=g0r0_tag]")).await.expect("kept").prop("value").await.expect("value"),
            Some("肤质/油性".to_owned()),
            "the first group is kept"
        );
        choose(&client, "#groups-join option[value=or]").await;
        choose(&client, "select[name=g1r0_kind] option[value=tag]").await;
        let second = client.find(Locator::Css("input[name=g1r0_tag]")).await.expect("second tag");
        second.send_keys("肤质/干性").await.expect("typed");
        wait_for_expr(&client, r#""肤质/油性" OR "肤质/干性""#).await;
        wait_for_count(&client, 5).await;

        // 排除这一组: the expression and the count follow.
        click(&client, "input[name=g1_not]").await;
        wait_for_expr(&client, r#""肤质/油性" OR NOT "肤质/干性""#).await;
        assert_eq!(crate::admin_browser::text_of(&client, "#segment-built").await, r#""肤质/油性" OR NOT "肤质/干性""#);
        wait_for_count(&client, 4).await;
        let overflow = sideways_overflow(&client).await;
        screenshot(&client, &format!("builder-groups-{width}")).await;
        assert!(overflow <= 0, "the groups fit {width} px (overflow {overflow} px)");
        assert_no_english(&format!("the builder at {width} px"), &client.source().await.expect("source"));

        // Submitted without script the same groups give the same text and count.
        click(&client, "#builder-submit").await;
        crate::admin_browser::wait_for_text(&client, "#segment-count", "4").await;
        assert_eq!(crate::admin_browser::text_of(&client, "#segment-built").await, r#""肤质/油性" OR NOT "肤质/干性""#);
        assert!(
            client.find(Locator::Css("input[name=g1_not]")).await.expect("box").prop("checked").await.expect("checked")
                == Some("true".to_owned()),
            "the second group stays excluded"
        );
        assert!(sideways_overflow(&client).await <= 0, "the submitted page fits {width} px");
        if width == 390 {
            let cards = client.find_all(Locator::Css("fieldset.group")).await.expect("groups");
            let first = cards[0].rectangle().await.expect("rect");
            let second = cards[1].rectangle().await.expect("rect");
            assert!(second.1 >= first.1 + first.3 - 1.0, "the groups stack as cards on a phone: {first:?} {second:?}");
            screenshot(&client, "builder-groups-submitted-390").await;
        }
    }
    client.close().await.expect("closed");
}
