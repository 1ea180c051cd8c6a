//! Drafts end to end (issue 18): `tagcast sync` and the `refresh_drafts` job keep the local list
//! of the account's WeChat drafts, the composer offers them to pick, a draft deleted on WeChat
//! before the send fails the campaign in Chinese with nothing sent, and a multi-article send
//! shows reads and clicks per article.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin_pages::{Browser, PASSWORD};
use crate::support::app::{TestApp, spawn_app_with};

async fn spawn() -> TestApp {
    spawn_app_with(|vars| {
        vars.insert(
            "TAGCAST_WECHAT_RATE_LIMITS".into(),
            "default=2000,/cgi-bin/message/mass/send=200,/cgi-bin/message/mass/sendall=200".into(),
        );
    })
    .await
}

async fn sync(app: &TestApp) {
    tagcast::app::sync::run_sync(&app.jobs.pool, &app.api, |_| {}).await.expect("sync");
}

async fn drafts(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.api_get("/drafts").await;
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().expect("a list")
}

async fn mpnews_campaign(app: &TestApp, media_id: &str) -> i64 {
    let message = json!({"type": "mpnews", "media_id": media_id});
    let (status, body) =
        app.api_post("/campaigns", json!({"name": "图文", "audience": {"all": true}, "message": message})).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().expect("id")
}

async fn send_and_deliver(app: &TestApp, id: i64) {
    let (status, body) = app.api_post(&format!("/campaigns/{id}/send"), json!({})).await;
    assert_eq!(status, 202, "{body}");
    app.run_pending_jobs().await;
    app.wechat.wait_for_callbacks().await;
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn sync_and_the_refresh_keep_the_draft_list_and_the_composer_picks_from_it() {
    let app = spawn().await;
    app.create_admin("olivia", PASSWORD, "operator").await;
    app.wechat.seed_followers(5);
    let kept = app.wechat.add_draft(&["春季新品", "护理小贴士", "会员日"]);
    let gone = app.wechat.add_draft(&["停业通知"]);
    // More than one page of batchget (20 a page).
    for i in 0..21 {
        app.wechat.add_draft(&[&format!("旧稿{i}")]);
    }
    sync(&app).await;
    let listed = drafts(&app).await;
    assert_eq!(listed.len(), 23);
    let three = listed.iter().find(|d| d["media_id"] == kept).expect("listed");
    assert_eq!((three["title"].as_str(), three["article_count"].as_i64()), (Some("春季新品"), Some(3)), "{three}");
    assert_eq!(three["article_titles"], json!(["春季新品", "护理小贴士", "会员日"]));
    assert!(three["cover_url"].as_str().is_some_and(|u| u.starts_with("http")), "{three}");

    // Deleted in WeChat's console: gone from the list at the next refresh.
    assert!(app.wechat.delete_draft(&gone));
    tagcast::jobs::refresh_drafts::run(&app.jobs).await.expect("refresh");
    let listed = drafts(&app).await;
    assert_eq!(listed.len(), 22);
    assert!(listed.iter().all(|d| d["media_id"] != gone));

    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = browser.get("/admin/campaigns/new").await;
    assert!(page.body.contains("春季新品") && page.body.contains("3 篇"), "{}", page.body);
    assert!(page.body.contains(&format!("value=\"{kept}\"")), "the draft is a choice");
    assert!(!page.body.contains("停业通知"));
    let form = [("name", "春季"), ("audience", "all"), ("confirm_all", "on"), ("kind", "mpnews")];
    let page = browser.post("/admin/campaigns", &form).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("请从草稿箱中选择一篇图文"), "{}", page.body);
    let page = browser.post("/admin/campaigns", &[&form[..], &[("draft", gone.as_str())]].concat()).await;
    assert!(page.body.contains("所选草稿已不在草稿箱列表中"), "{}", page.body);
    let page = browser.post("/admin/campaigns", &[&form[..], &[("draft", kept.as_str())]].concat()).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let id: i64 = page.location.expect("to the campaign").trim_start_matches("/admin/campaigns/").parse().unwrap();
    let (_, shown) = app.api_get(&format!("/campaigns/{id}")).await;
    assert_eq!(shown["message"], json!({"type": "mpnews", "media_id": kept}), "{shown}");
}

#[tokio::test]
async fn a_draft_deleted_on_wechat_before_the_send_fails_the_campaign_in_chinese_and_sends_nothing() {
    let app = spawn().await;
    app.wechat.seed_followers(5);
    let draft = app.wechat.add_draft(&["限时优惠"]);
    sync(&app).await;
    let id = mpnews_campaign(&app, &draft).await;
    assert!(app.wechat.delete_draft(&draft));

    send_and_deliver(&app, id).await;
    let (_, shown) = app.api_get(&format!("/campaigns/{id}")).await;
    assert_eq!(shown["status"], "failed", "{shown}");
    let reason = shown["last_error"].as_str().unwrap_or_default();
    assert!(reason.contains("图文素材（草稿）已不存在") && reason.contains(&draft), "{reason}");
    assert!(reason.contains("请重新选择草稿后再发送"), "{reason}");
    assert!(app.wechat.mass_jobs().is_empty(), "nothing was sent");
    assert_eq!(app.wechat.call_count("/cgi-bin/message/mass/sendall"), 0);
    assert_eq!(app.count("SELECT count(*) FROM jobs WHERE state <> 'done'").await, 0);
}

#[tokio::test]
async fn a_three_article_send_shows_reads_and_clicks_per_article() {
    let app = spawn().await;
    app.create_admin("olivia", PASSWORD, "operator").await;
    app.wechat.seed_followers(300);
    let draft = app.wechat.add_draft(&["上新", "护理", "优惠"]);
    sync(&app).await;
    let id = mpnews_campaign(&app, &draft).await;
    let (status, link) = app
        .api_post(&format!("/campaigns/{id}/links"), json!({"url": "https://shop.example/care", "article_idx": 2}))
        .await;
    assert_eq!(status, 201, "{link}");
    let (status, refused) = app
        .api_post(&format!("/campaigns/{id}/links"), json!({"url": "https://shop.example/", "article_idx": 9}))
        .await;
    assert_eq!(status, 400, "{refused}");
    send_and_deliver(&app, id).await;
    let job = app.wechat.mass_jobs().pop().expect("sent");
    assert_eq!(job.article_urls.len(), 3);

    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = format!("{}{}", app.address, link["path"].as_str().unwrap());
    assert_eq!(no_redirects.get(&url).send().await.unwrap().status(), 302);

    app.wechat.advance_time(Duration::from_secs(86_400));
    app.clock.advance(chrono::Duration::days(1));
    tagcast::jobs::fetch_article_reads::run(&app.jobs).await.expect("fetch");
    let (_, shown) = app.api_get(&format!("/campaigns/{id}")).await;
    let articles = shown["stats"]["articles"].as_array().cloned().unwrap_or_default();
    assert_eq!(articles.iter().map(|a| a["article_idx"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 3], "{shown}");
    let clicks: Vec<i64> = articles.iter().map(|a| a["clicks"].as_i64().unwrap()).collect();
    assert_eq!(clicks, [0, 1, 0]);
    let reads: Vec<i64> = articles.iter().map(|a| a["read_user"].as_i64().unwrap_or(0)).collect();
    assert!(reads.iter().all(|r| *r > 0) && reads[0] > reads[2], "the first article is read most: {reads:?}");
    // The send's own read rate is still its first article's.
    let rate = |v: &Value| v.as_f64().expect("a rate");
    assert_eq!(rate(&shown["stats"]["read_rate"]), rate(&articles[0]["read_rate"]));

    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = browser.get(&format!("/admin/campaigns/{id}")).await;
    assert!(page.body.contains("按文章") && page.body.contains("第 3 篇「优惠」"), "{}", page.body);
    assert!(page.body.contains("上新 / 护理 / 优惠（3 篇"), "the message is shown by its titles: {}", page.body);
}

#[tokio::test]
async fn the_client_reads_drafts_and_materials_and_sorts_the_refusals() {
    let app = spawn().await;
    let draft = app.wechat.add_draft(&["一", "二"]);
    app.wechat.add_material("image", "banner.png");
    let api = &app.api;
    assert_eq!(api.count_drafts().await.expect("count"), 1);
    let got = api.get_draft(&draft).await.expect("the draft");
    assert_eq!(got.news_item.iter().map(|a| a.title.as_str()).collect::<Vec<_>>(), ["一", "二"]);
    let gone = api.get_draft("MOCK_DRAFT_NONE").await.expect_err("no such draft");
    assert_eq!(gone.code(), Some(tagcast::wechat::api::ErrCode::InvalidMediaId));
    let too_many = api.list_drafts(0, 21).await.expect_err("a page is at most 20");
    assert_eq!(too_many.code().map(|c| c.code()), Some(40035));
    let counts = api.material_count().await.expect("counts");
    // The draft's two covers are thumbs, counted with the images.
    assert_eq!((counts.image_count, counts.voice_count, counts.news_count), (3, 0, 0));
    let images = api.list_materials("image", 0, 20).await.expect("images");
    assert_eq!((images.total_count, images.item[0].name.as_str()), (3, "banner.png"));
    let not_a_kind = api.list_materials("news_card", 0, 20).await.expect_err("no such kind");
    assert_eq!(not_a_kind.code().map(|c| c.code()), Some(40004));
}
