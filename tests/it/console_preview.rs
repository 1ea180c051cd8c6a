//! Issue 20, point 5: content and preview. The campaign page draws each message as a follower's
//! phone shows it; previews go to 测试粉丝 an admin keeps (ticked, not typed); the simulator keeps
//! the conversation (a whole quiz reads back) and starts over on request.

use reqwest::StatusCode;
use serde_json::json;

use crate::admin_pages::{Browser, PASSWORD, app_for_campaigns, compose};
use crate::support::app::{event, now, spawn_app};

#[tokio::test]
async fn the_campaign_page_draws_the_message_on_a_phone_and_previews_to_ticked_testers() {
    let (app, fans) = app_for_campaigns().await;
    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    let id = compose(&mut operator, "周末", "敏感/价格敏感", "周末福利\n第二行").await;
    let page = operator.get(&format!("/admin/campaigns/{id}")).await;
    let phone = &page.body[page.body.find("id=\"phone-preview\"").expect("a phone preview")..];
    assert!(phone.contains("class=\"phone-bubble\">周末福利\n第二行</div>"), "{phone}");
    assert!(page.body.contains("还没有测试粉丝"), "{}", page.body);

    // An operator may not keep the list; an admin marks a follower from the follower's page.
    let tester = &fans[4];
    let page = operator.post("/admin/testers", &[("openid", tester), ("note", "小王的手机")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let mut admin = Browser::log_in(&app, "root", PASSWORD).await;
    let page = admin.get(&format!("/admin/followers/{tester}")).await;
    assert!(page.body.contains("设为测试粉丝"), "{}", page.body);
    let back = format!("/admin/followers/{tester}");
    let page = admin.post("/admin/testers", &[("openid", tester), ("note", "小王的手机"), ("back", "follower")]).await;
    assert_eq!((page.status, page.location.as_deref()), (StatusCode::SEE_OTHER, Some(back.as_str())));
    let page = admin.get(&back).await;
    assert!(page.body.contains("已把 ") && page.body.contains("移出测试粉丝"), "{}", page.body);

    // Someone who does not follow the account is refused in Chinese, and nothing is kept.
    admin.get("/admin/testers").await;
    let page = admin.post("/admin/testers", &[("openid", "o_nobody"), ("note", "")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("本公众号没有 openid 为「o_nobody」的粉丝"), "{}", page.body);
    let page = admin.post("/admin/testers", &[("openid", tester), ("note", &"长".repeat(41))]).await;
    assert!(page.body.contains("备注最多 40 个字"), "{}", page.body);
    assert_eq!(app.count("SELECT count(*) FROM test_followers").await, 1);
    let note: String = app.query("SELECT note FROM test_followers", &[]).await[0].get(0);
    assert_eq!(note, "小王的手机", "a refused edit keeps the note");

    // The campaign page offers the tester by name; ticking sends the preview to them only.
    let page = operator.get(&format!("/admin/campaigns/{id}")).await;
    assert!(page.body.contains(&format!("name=\"tester\" value=\"{tester}\"")), "{}", page.body);
    assert!(page.body.contains("小王的手机"), "{}", page.body);
    let page = operator.post(&format!("/admin/campaigns/{id}/preview"), &[("tester", tester), ("openids", "")]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("已发送预览"), "{}", page.body);
    assert!(page.body.contains(&format!("name=\"tester\" value=\"{tester}\" checked")), "stays ticked");
    let previews = app.wechat.previews();
    assert_eq!(previews.len(), 1, "{previews:?}");
    assert_eq!(previews[0]["touser"], json!(tester), "{previews:?}");
    // Nothing ticked or typed: a Chinese refusal and no call.
    let page = operator.post(&format!("/admin/campaigns/{id}/preview"), &[("openids", " ")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("请勾选或填写 1–10 位测试粉丝"), "{}", page.body);
    assert_eq!(app.wechat.previews().len(), 1);

    // Erasing the follower (PIPL) takes them off the list too.
    let page = admin.get(&format!("/admin/followers/{tester}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let page = admin.post(&format!("/admin/followers/{tester}/erase"), &[("confirm_openid", tester)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(app.count("SELECT count(*) FROM test_followers").await, 0);
    let page = operator.get(&format!("/admin/campaigns/{id}")).await;
    assert!(!page.body.contains(&format!("value=\"{tester}\"")), "{}", page.body);
    let audit = app.count("SELECT count(*) FROM audit_log WHERE action = 'mark_tester' AND actor = 'root'").await;
    assert_eq!(audit, 1);
}

#[tokio::test]
async fn the_simulator_keeps_a_whole_quiz_readable_and_starts_over_on_request() {
    let app = spawn_app().await;
    app.create_admin("root", PASSWORD, "admin").await;
    let quiz = json!({
        "id": "mini",
        "intro": "两个问题",
        "question": [
            {"text": "出油多吗？", "options": [{"label": "A", "text": "多", "score": {"oily": 2}}, {"label": "B", "text": "少", "score": {"dry": 2}}]},
            {"text": "年龄段？", "options": [{"label": "A", "text": "25-30"}, {"label": "B", "text": "其他"}]}
        ],
        "result": [{"tag": "肤质/油性", "score": "oily", "min": 2}, {"tag": "肤质/干性", "score": "dry", "min": 2}]
    });
    assert_eq!(app.api_post("/quizzes", quiz).await.0, 201);
    let (status, body) = app.api_post("/rules", json!({"on": "click", "key": "QUIZ", "start_quiz": "mini"})).await;
    assert_eq!(status, 201, "{body}");

    let mut admin = Browser::log_in(&app, "root", PASSWORD).await;
    admin.get("/admin/simulator").await;
    let steps: &[(&str, &str, &str)] = &[("click", "", "QUIZ"), ("text", "A", ""), ("text", "B", "")];
    let mut page = None;
    for (action, content, key) in steps {
        let answer = admin
            .post(
                "/admin/simulator",
                &[("openid", "test_quiz"), ("action", action), ("content", content), ("key", key)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        page = Some(answer);
    }
    let body = page.expect("three steps").body;
    let history = &body[body.find("id=\"sim-history\"").expect("the conversation")..];
    let order = ["［点击菜单 QUIZ］", "出油多吗？", "年龄段？", "肤质/油性"];
    let mut from = 0;
    for needle in order {
        let at = history[from..].find(needle).unwrap_or_else(|| panic!("{needle} after byte {from}: {history}"));
        from += at + needle.len();
    }

    // The conversation is there when the page is opened again, for that follower.
    let page = admin.get("/admin/simulator?openid=test_quiz").await;
    assert!(page.body.contains("出油多吗？") && page.body.contains("重新开始"), "{}", page.body);
    let page = admin.get("/admin/simulator?openid=test_other").await;
    assert!(page.body.contains("这位测试粉丝还没有对话"), "{}", page.body);

    // 重新开始 clears the conversation, tags and quiz progress, so the quiz can be taken again.
    admin.get("/admin/simulator?openid=test_quiz").await;
    let page = admin.post("/admin/simulator/reset", &[("openid", "test_quiz")]).await;
    assert_eq!(page.location.as_deref(), Some("/admin/simulator?openid=test_quiz"));
    let page = admin.get("/admin/simulator?openid=test_quiz").await;
    assert!(page.body.contains("已重新开始") && page.body.contains("这位测试粉丝还没有对话"), "{}", page.body);
    assert_eq!(app.count("SELECT count(*) FROM events WHERE openid = 'test_quiz'").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM quiz_answers WHERE openid = 'test_quiz'").await, 0);

    // A real follower is never reset from here.
    let real = "o_real_person";
    assert_eq!(app.push(&event(real, "subscribe", None, now())).await.status(), 200);
    app.settle().await;
    let page = admin.post("/admin/simulator/reset", &[("openid", real)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = admin.get("/admin/simulator").await;
    assert!(page.body.contains("只能重置模拟的测试粉丝"), "{}", page.body);
    assert_eq!(app.count("SELECT count(*) FROM events WHERE openid = 'o_real_person'").await, 1);
    app.run_pending_jobs().await;
}

/// On a 390 px phone: the campaign's phone preview and the tester choices fit the screen, and
/// ticking a tester sends the preview.
#[tokio::test]
async fn on_a_phone_the_preview_fits_and_a_ticked_tester_receives_it() {
    use crate::admin_browser::{
        chromium_missing, click, phone_logged_in, screenshot, sideways_overflow, wait_for_text,
    };
    if chromium_missing() {
        return;
    }
    let (app, fans) = app_for_campaigns().await;
    let tester = &fans[4];
    app.query(
        "INSERT INTO test_followers (account_id, openid, note, added_by) VALUES (1, $1, '小王的手机', 'root')",
        &[tester],
    )
    .await;
    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    let long = "这是一条很长的群发内容，用来看手机预览会不会把页面撑宽。".repeat(6);
    let id = compose(&mut operator, "手机预览", "敏感/价格敏感", &long).await;

    let (_driver, client) = phone_logged_in(&app.address, "olivia").await;
    client.goto(&format!("{}/admin/campaigns/{id}", app.address)).await.expect("campaign page");
    wait_for_text(&client, "#phone-preview .phone-bubble", "这是一条很长的群发内容").await;
    assert!(sideways_overflow(&client).await <= 0, "the campaign page overflows at 390 px");
    screenshot(&client, "console-preview-phone").await;
    click(&client, &format!("#preview-form input[value='{tester}']")).await;
    click(&client, "#preview-form button[type=submit]").await;
    wait_for_text(&client, "#preview-results", "已发送预览").await;
    assert_eq!(app.wechat.previews().len(), 1);
    assert!(sideways_overflow(&client).await <= 0, "the preview's outcome overflows at 390 px");
    client.close().await.expect("browser closed");
}

#[tokio::test]
async fn the_composer_draws_the_typed_text_and_the_picked_article_on_a_phone_without_saving() {
    let (app, _) = app_for_campaigns().await;
    let draft = app.wechat.add_draft(&["春季新品", "护理小贴士"]);
    tagcast::app::sync::run_sync(&app.jobs.pool, &app.api, |_| {}).await.expect("sync");
    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = operator.get("/admin/campaigns/new").await;
    assert!(page.body.contains("写好内容后，这里显示粉丝在手机上看到的样子"), "{}", page.body);

    let form = [("name", "周末"), ("audience", "tag"), ("tag", "敏感/价格敏感"), ("kind", "text")];
    let mut text = form.to_vec();
    text.extend([("content", "周末福利🎉\n满 99 减 20"), ("action", "phone")]);
    let page = operator.post("/admin/campaigns", &text).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let phone = &page.body[page.body.find("id=\"compose-phone\"").expect("the phone")..];
    assert!(phone.contains("class=\"phone-bubble\">周末福利🎉\n满 99 减 20</div>"), "{phone}");
    assert!(page.body.contains("value=\"周末\""), "what was typed stays");

    let mut article = form.to_vec();
    article[3] = ("kind", "mpnews");
    article.extend([("draft", draft.as_str()), ("content", ""), ("action", "phone")]);
    let page = operator.post("/admin/campaigns", &article).await;
    let phone = &page.body[page.body.find("id=\"compose-phone\"").expect("the phone")..];
    assert!(phone.contains("class=\"phone-title\">春季新品<"), "{phone}");
    assert!(phone.contains("class=\"phone-more\">护理小贴士<"), "{phone}");
    assert_eq!(app.count("SELECT count(*) FROM campaigns").await, 0, "a preview saves nothing");
}

/// With scripts, the composer's phone follows the text as it is typed, on a 390 px phone.
#[tokio::test]
async fn the_composer_phone_follows_typing_on_a_390px_phone() {
    use crate::admin_browser::{chromium_missing, fill, phone_logged_in, screenshot, sideways_overflow, wait_for_text};
    if chromium_missing() {
        return;
    }
    let (app, _) = app_for_campaigns().await;
    let (_driver, client) = phone_logged_in(&app.address, "olivia").await;
    client.goto(&format!("{}/admin/campaigns/new", app.address)).await.expect("compose page");
    fill(&client, "textarea[name=content]", "618 大促：精华买一送一").await;
    wait_for_text(&client, "#compose-phone .phone-bubble", "618 大促：精华买一送一").await;
    assert!(sideways_overflow(&client).await <= 0, "the composer overflows at 390 px");
    screenshot(&client, "console-compose-phone").await;
    client.close().await.expect("browser closed");
}

/// The quiz form editor (issue 20, point 4): a quiz edited as fields, not code, through the same
/// overwrite confirmation as TOML; a refused form keeps what was typed; results carry a message.
#[tokio::test]
async fn a_quiz_is_written_and_edited_in_the_form_with_a_result_message_and_the_same_confirmation() {
    let app = spawn_app().await;
    app.create_admin("root", PASSWORD, "admin").await;
    let mut browser = Browser::log_in(&app, "root", PASSWORD).await;
    let page = browser.get("/admin/quizzes?new=1").await;
    assert!(page.body.contains("name=\"q0_text\"") && page.body.contains("name=\"r0_message\""), "{}", page.body);
    assert!(page.body.contains("name=\"id\" value=\"quiz-1\""), "{}", page.body);

    let mut form = vec![
        ("id", "skin2"),
        ("intro", "两道题测肤质"),
        ("q0_text", "T 区出油吗？"),
        ("q0_o0_label", "A"),
        ("q0_o0_text", "很油"),
        ("q0_o0_score", "oil=2"),
        ("q0_o1_label", "B"),
        ("q0_o1_text", "不油"),
        ("q0_o1_score", "oil＝-1"),
        ("q0_o2_label", "C"),
        ("q0_o2_text", ""),
        ("q1_text", ""),
        ("q1_o0_label", "A"),
        ("r0_tag", "肤质/油性"),
        ("r0_score", "oil"),
        ("r0_min", "2"),
        ("r0_max", ""),
        ("r0_message", "【油性肌肤护肤建议】控油清洁，清爽保湿。"),
        ("r1_tag", ""),
    ];
    // 再加一题 keeps everything typed and adds an empty question.
    let more: Vec<(&str, &str)> = form.iter().copied().chain([("action", "more")]).collect();
    let page = browser.post("/admin/quizzes/form", &more).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("value=\"T 区出油吗？\"") && page.body.contains("name=\"q2_text\""), "{}", page.body);

    // A score that cannot be read is refused in Chinese, naming the option, and keeps the form.
    let bad: Vec<(&str, &str)> = form
        .iter()
        .map(|&(k, v)| if k == "q0_o0_score" { (k, "oil two") } else { (k, v) })
        .chain([("action", "save")])
        .collect();
    let page = browser.post("/admin/quizzes/form", &bad).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("第 1 题选项「A」的计分「oil two」看不懂"), "{}", page.body);
    assert!(page.body.contains("value=\"oil two\""), "what was typed stays: {}", page.body);
    assert_eq!(app.count("SELECT count(*) FROM quizzes").await, 0);

    form.push(("action", "save"));
    let page = browser.post("/admin/quizzes/form", &form).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let spec: serde_json::Value = app.query("SELECT spec FROM quizzes WHERE id = 'skin2'", &[]).await[0].get(0);
    assert_eq!(spec["question"][0]["options"][1]["score"]["oil"], json!(-1), "{spec}");
    assert_eq!(spec["question"].as_array().map(Vec::len), Some(1), "the empty question is not saved: {spec}");
    assert_eq!(spec["result"][0]["message"], json!("【油性肌肤护肤建议】控油清洁，清爽保湿。"), "{spec}");

    // Editing opens the form on the live quiz; changing it goes through the confirmation.
    let page = browser.get("/admin/quizzes?edit=skin2").await;
    assert!(page.body.contains("name=\"q0_o1_score\" value=\"oil=-1\""), "{}", page.body);
    let edited: Vec<(&str, &str)> =
        form.iter().map(|&(k, v)| if k == "q0_text" { (k, "T 区一小时后出油吗？") } else { (k, v) }).collect();
    let page = browser.post("/admin/quizzes/form", &edited).await;
    assert!(page.body.contains("覆盖测验「skin2」？"), "{}", page.body);
    assert!(page.body.contains("第 1 题题目：「T 区出油吗？」改为「T 区一小时后出油吗？」"), "{}", page.body);
    let stored: serde_json::Value = app.query("SELECT spec FROM quizzes WHERE id = 'skin2'", &[]).await[0].get(0);
    assert_eq!(stored["question"][0]["text"], json!("T 区出油吗？"), "nothing saved before the confirmation");

    // The follower who finishes reads the result's message after their tags.
    let (status, body) = app.api_post("/rules", json!({"on": "keyword", "key": "测肤质", "start_quiz": "skin2"})).await;
    assert_eq!(status, 201, "{body}");
    let reply = app.push_for_reply(&crate::support::app::text_message("o_form_quiz", "测肤质", 501)).await;
    assert!(reply.contains("T 区出油吗？"), "{reply}");
    let last = app.push_for_reply(&crate::support::app::text_message("o_form_quiz", "A", 502)).await;
    assert!(last.contains("肤质/油性") && last.contains("【油性肌肤护肤建议】控油清洁，清爽保湿。"), "{last}");
    app.run_pending_jobs().await;
}
