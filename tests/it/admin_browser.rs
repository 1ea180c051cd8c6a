//! The admin pages in a real browser: headless Chromium from Debian, driven through chromedriver
//! with fantoccini. Skipped (with a message) where `/usr/bin/chromedriver` is not installed;
//! `.ci/run` installs it. One story end to end: tags, a click rule, the simulator, a segment,
//! then a campaign on a sensitive tag composed by an operator, approved and sent by an approver,
//! and its counts after the mock WeChat's MASSSENDJOBFINISH.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::app::{TestApp, event, now, spawn_app};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PASSWORD: &str = "correct horse battery";

/// chromedriver on a free port, killed when dropped.
pub(crate) struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn start_driver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver { child, port };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {port} within 10 s");
}

pub(crate) async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--lang=zh-CN"]
        }),
    );
    // Two crypto providers are linked in; which one serves a plain-HTTP chromedriver does not matter.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = ClientBuilder::rustls().expect("TLS roots");
    builder.capabilities(caps);
    builder.connect(&format!("http://127.0.0.1:{}", driver.port)).await.expect("a browser session")
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

pub(crate) async fn screenshot(client: &Client, name: &str) -> Vec<u8> {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), &png).expect("screenshot written");
    png
}

pub(crate) async fn fill(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.expect("cleared");
    field.send_keys(text).await.expect("typed");
}

pub(crate) async fn click(client: &Client, css: &str) {
    client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.expect("clicked");
}

/// Waits (up to 10 s) for the element to show `needle`: a click that submits a form returns
/// before the next page is always there.
pub(crate) async fn wait_for_text(client: &Client, css: &str, needle: &str) {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            last = element.text().await.unwrap_or_default();
            if last.contains(needle) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed {needle:?}; last seen: {last:?}");
}

pub(crate) async fn text_of(client: &Client, css: &str) -> String {
    client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.expect("text")
}

/// True (and says so) when Debian's chromium-driver is not installed: browser tests skip.
pub(crate) fn chromium_missing() -> bool {
    let missing = !Path::new(CHROMEDRIVER).exists();
    if missing {
        println!("SKIPPED: {CHROMEDRIVER} is missing; install Debian's chromium and chromium-driver to run it");
    }
    missing
}

/// A 390 px wide phone browser, logged in to the console at `base` as `username`. Keep the
/// driver alive as long as the client.
pub(crate) async fn phone_logged_in(base: &str, username: &str) -> (Driver, Client) {
    let driver = start_driver().await;
    let client = browser(&driver).await;
    client.set_window_size(390, 844).await.expect("phone width");
    client.goto(&format!("{base}/admin/login")).await.expect("login page");
    log_in(&client, username).await;
    (driver, client)
}

/// Opens `path` (under `base`) in `client` at a phone's 390 px and a desktop's 1366 px, waits at
/// each width for every `(css, text)` of `shows`, saves a screenshot `{name}-{width}`, and checks
/// the page neither scrolls sideways nor holds English.
pub(crate) async fn fits_phone_and_desktop(
    client: &Client,
    base: &str,
    path: &str,
    shows: &[(&str, &str)],
    name: &str,
) {
    for (width, height) in [(390, 844), (1366, 900)] {
        client.set_window_size(width, height).await.expect("size");
        client.goto(&format!("{base}{path}")).await.expect("page");
        for (css, text) in shows {
            wait_for_text(client, css, text).await;
        }
        let overflow = sideways_overflow(client).await;
        screenshot(client, &format!("{name}-{width}")).await;
        assert!(overflow <= 0, "{path} scrolls sideways by {overflow} px at {width} px");
        let html = client.source().await.expect("html");
        crate::support::english::assert_no_english(path, &html);
    }
}

/// How far the page scrolls sideways (0 or less: it fits the window).
pub(crate) async fn sideways_overflow(client: &Client) -> i64 {
    let overflow = client
        .execute("return document.documentElement.scrollWidth - window.innerWidth;", vec![])
        .await
        .expect("script");
    overflow.as_i64().unwrap_or(0)
}

pub(crate) async fn log_in(client: &Client, username: &str) {
    fill(client, "input[name=username]", username).await;
    fill(client, "input[name=password]", PASSWORD).await;
    click(client, ".login button[type=submit]").await;
    wait_for_text(client, ".top .me", username).await;
    assert!(client.current_url().await.expect("url").path().ends_with("/admin"), "{username} signed in");
}

async fn log_out(client: &Client) {
    click(client, "form[action='/admin/logout'] button").await;
    wait_for_text(client, ".login h1", "运营后台").await;
}

/// A month of follows and a few departures, so the board has something to draw.
async fn seed_history(app: &TestApp) {
    let day = 86_400;
    for i in 0..40i64 {
        let openid = format!("o_seed_{i:02}");
        let at = now() - (i % 28) * day - 3_600 - i;
        assert_eq!(app.push(&event(&openid, "subscribe", None, at)).await.status(), 200);
        if i % 3 == 0 {
            assert_eq!(app.push(&event(&openid, "CLICK", Some("SKIN_TEST"), at + 60)).await.status(), 200);
        }
        if i % 7 == 0 {
            assert_eq!(app.push(&event(&openid, "unsubscribe", None, at + day / 2)).await.status(), 200);
        }
    }
}

#[tokio::test]
async fn a_follower_is_tagged_through_the_simulator_and_a_sensitive_campaign_is_approved_and_sent_in_chromium() {
    if !Path::new(CHROMEDRIVER).exists() {
        println!("SKIPPED: {CHROMEDRIVER} is missing; install Debian's chromium and chromium-driver to run it");
        return;
    }
    let app = spawn_app().await;
    app.create_admin("root", PASSWORD, "admin").await;
    app.create_admin("olivia", PASSWORD, "operator").await;
    app.create_admin("amy", PASSWORD, "approver").await;
    seed_history(&app).await;
    // The simulated follower is one the mock WeChat knows; a test follower still never counts in
    // an audience, so the segment and the campaign below reach only the real follower.
    app.wechat.add_follower("test_e2e");
    app.wechat.add_follower("o_e2e_real");
    // A draft for the composer's picker (listed by the sync).
    app.wechat.add_draft(&["春季新品上市：控油系列全线八折，会员再享双倍积分", "护理"]);
    tagcast::app::sync::run_sync(&app.jobs.pool, &app.api, |_| {}).await.expect("sync");
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let base = &app.address;

    // Sign in.
    client.goto(&format!("{base}/admin/login")).await.expect("login page");
    screenshot(&client, "login").await;
    log_in(&client, "root").await;

    // A tag and a click rule.
    client.goto(&format!("{base}/admin/tags")).await.expect("tags");
    fill(&client, "form[action='/admin/tags'] input[name=path]", "兴趣/新品").await;
    click(&client, "form[action='/admin/tags'] button[type=submit]").await;
    wait_for_text(&client, ".flash", "兴趣/新品").await;
    fill(&client, "form[action='/admin/tags'] input[name=path]", "敏感/价格敏感").await;
    click(&client, "input[name=sensitive]").await;
    click(&client, "form[action='/admin/tags'] button[type=submit]").await;
    wait_for_text(&client, ".flash", "敏感/价格敏感").await;
    screenshot(&client, "tags").await;

    client.goto(&format!("{base}/admin/rules")).await.expect("rules");
    client
        .find(Locator::Css("select[name=on] option[value=click]"))
        .await
        .expect("click option")
        .click()
        .await
        .expect("chosen");
    fill(&client, "input[name=key]", "NEW_ARRIVALS").await;
    fill(&client, "textarea[name=add]", "兴趣/新品，敏感/价格敏感").await;
    fill(&client, "input[name=reply]", "新品上架啦").await;
    click(&client, "form[action='/admin/rules'] button[type=submit]").await;
    wait_for_text(&client, "table", "NEW_ARRIVALS").await;
    screenshot(&client, "rules").await;

    // The simulator presses that menu as a test follower.
    client.goto(&format!("{base}/admin/simulator")).await.expect("simulator");
    fill(&client, "input[name=openid]", "test_e2e").await;
    fill(&client, "input[name=key]", "NEW_ARRIVALS").await;
    click(&client, "button[value=click]").await;
    wait_for_text(&client, "#sim-reply", "新品上架啦").await;
    assert!(text_of(&client, "#sim-tags").await.contains("兴趣/新品"));
    assert!(text_of(&client, "#sim-tags").await.contains("敏感/价格敏感"));
    screenshot(&client, "simulator").await;
    // A real follower presses the same menu.
    assert_eq!(app.push(&event("o_e2e_real", "CLICK", Some("NEW_ARRIVALS"), now())).await.status(), 200);
    // The tags reach WeChat in the background.
    app.run_pending_jobs().await;

    // A segment of that tag counts the real follower, not the test one (without relying on the script).
    client.goto(&format!("{base}/admin/segments")).await.expect("segments");
    fill(&client, "#segment-expr", "\"兴趣/新品\"").await;
    click(&client, "#segment-form button[type=submit]").await;
    wait_for_text(&client, "#segment-count", "1").await;
    assert_eq!(text_of(&client, "#segment-count").await, "1");
    screenshot(&client, "segments").await;

    for (path, name) in [
        ("/admin/followers?q=test_", "followers"),
        ("/admin/audit", "audit"),
        ("/admin/quizzes", "quizzes"),
        ("/admin/playbook", "playbook"),
        ("/admin/users", "users"),
    ] {
        client.goto(&format!("{base}{path}")).await.expect(name);
        screenshot(&client, name).await;
    }
    // An operator composes a campaign to the sensitive tag; sending it asks for approval.
    log_out(&client).await;
    log_in(&client, "olivia").await;
    client.goto(&format!("{base}/admin/campaigns/new")).await.expect("compose");
    assert!(text_of(&client, ".draft-list").await.contains("2 篇"), "the draft is offered to pick");
    // On a phone the draft picker stays within the screen (a long title wraps).
    client.set_window_size(390, 844).await.expect("phone width");
    let right = client
        .execute("return document.querySelector('.draft-list').getBoundingClientRect().right;", vec![])
        .await
        .expect("script");
    assert!(right.as_f64().unwrap_or(f64::MAX) <= 390.0, "the draft list ends at {right}");
    screenshot(&client, "campaign-compose-drafts-390").await;
    client.set_window_size(1280, 1000).await.expect("desktop width");
    fill(&client, "input[name=name]", "价格敏感关怀").await;
    click(&client, "input[name=audience][value=tag]").await;
    click(&client, "select[name=tag] option[value='敏感/价格敏感']").await;
    fill(&client, "textarea[name=content]", "本周专属优惠，回复「优惠」领取").await;
    screenshot(&client, "campaign-compose").await;
    click(&client, "#save-button").await;
    wait_for_text(&client, ".flash", "价格敏感关怀").await;
    let campaign_url = client.current_url().await.expect("url").to_string();
    assert!(campaign_url.contains("/admin/campaigns/"), "{campaign_url}");
    click(&client, "#send-button").await;
    wait_for_text(&client, ".flash", "审批").await;
    assert_eq!(text_of(&client, "#campaign-status").await, "待审批");
    assert!(client.find(Locator::Css("#approve-button")).await.is_err(), "an operator gets no approve button");

    // A second user, an approver, approves it from the queue and sends it.
    log_out(&client).await;
    log_in(&client, "amy").await;
    client.goto(&format!("{base}/admin/campaigns/approvals")).await.expect("queue");
    assert!(text_of(&client, "main table").await.contains("价格敏感关怀"));
    screenshot(&client, "campaign-approvals").await;
    click(&client, "form[action$='/approve'] button[type=submit]").await;
    wait_for_text(&client, ".flash", "已审批").await;
    client.goto(&campaign_url).await.expect("campaign");
    assert_eq!(text_of(&client, "#campaign-status").await, "已审批");
    click(&client, "#send-button").await;
    wait_for_text(&client, "#confirm-question", "将发送给 1 位粉丝").await;
    click(&client, "#confirm-send-button").await;
    wait_for_text(&client, ".flash", "已开始发送给 1 位粉丝").await;

    // The send job runs, the mock WeChat pushes MASSSENDJOBFINISH back, and the page counts it.
    app.run_pending_jobs().await;
    app.wechat.wait_for_callbacks().await;
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.mass_jobs().len(), 1);
    client.goto(&campaign_url).await.expect("campaign");
    assert_eq!(text_of(&client, "#campaign-status").await, "已发送");
    assert_eq!(text_of(&client, "#count-sent").await, "1");
    client.set_window_size(1280, 1800).await.expect("window resized");
    screenshot(&client, "campaign").await;
    client.set_window_size(1280, 1000).await.expect("window resized");
    client.goto(&format!("{base}/admin/campaigns")).await.expect("campaigns");
    assert!(text_of(&client, "main table").await.contains("已发送"));
    screenshot(&client, "campaigns").await;
    log_out(&client).await;
    log_in(&client, "root").await;

    // Tall enough for the whole board in one picture (the README shows it).
    client.set_window_size(1280, 1500).await.expect("window resized");
    client.goto(&format!("{base}/admin?refresh=1")).await.expect("board");
    assert!(text_of(&client, "main").await.contains("四维数据看板"));
    let png = screenshot(&client, "dashboard").await;
    // The README's copy is refreshed on request only, so a test run leaves the checkout clean.
    if std::env::var_os("TAGCAST_UPDATE_README_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).expect("docs folder");
        std::fs::write(docs.join("dashboard.png"), png).expect("README screenshot written");
    }

    client.close().await.expect("browser closed");
    drop(driver);
    app.run_pending_jobs().await;
}
