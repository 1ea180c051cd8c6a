//! The admin pages in a real browser: headless Chromium from Debian, driven through chromedriver
//! with fantoccini. Skipped (with a message) where `/usr/bin/chromedriver` is not installed;
//! `.ci/run` installs it.

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
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
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

async fn browser(driver: &Driver) -> Client {
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

async fn screenshot(client: &Client, name: &str) -> Vec<u8> {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), &png).expect("screenshot written");
    png
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.expect("cleared");
    field.send_keys(text).await.expect("typed");
}

async fn click(client: &Client, css: &str) {
    client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.expect("clicked");
}

async fn text_of(client: &Client, css: &str) -> String {
    client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.expect("text")
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
async fn an_operator_tags_a_follower_through_the_simulator_and_counts_a_segment_in_chromium() {
    if !Path::new(CHROMEDRIVER).exists() {
        println!("SKIPPED: {CHROMEDRIVER} is missing; install Debian's chromium and chromium-driver to run it");
        return;
    }
    let app = spawn_app().await;
    app.create_admin("root", PASSWORD, "admin").await;
    seed_history(&app).await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let base = &app.address;

    // Sign in.
    client.goto(&format!("{base}/admin/login")).await.expect("login page");
    screenshot(&client, "login").await;
    fill(&client, "input[name=username]", "root").await;
    fill(&client, "input[name=password]", PASSWORD).await;
    click(&client, ".login button[type=submit]").await;
    assert!(client.current_url().await.expect("url").path().ends_with("/admin"));

    // A tag and a click rule.
    client.goto(&format!("{base}/admin/tags")).await.expect("tags");
    fill(&client, "input[name=path]", "兴趣/新品").await;
    click(&client, "form[action='/admin/tags'] button[type=submit]").await;
    assert!(text_of(&client, ".flash").await.contains("兴趣/新品"));
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
    fill(&client, "textarea[name=add]", "兴趣/新品").await;
    fill(&client, "input[name=reply]", "新品上架啦").await;
    click(&client, "form[action='/admin/rules'] button[type=submit]").await;
    assert!(text_of(&client, "table").await.contains("NEW_ARRIVALS"));
    screenshot(&client, "rules").await;

    // The simulator presses that menu as a test follower.
    client.goto(&format!("{base}/admin/simulator")).await.expect("simulator");
    fill(&client, "input[name=openid]", "test_e2e").await;
    fill(&client, "input[name=key]", "NEW_ARRIVALS").await;
    click(&client, "button[value=click]").await;
    assert!(text_of(&client, "#sim-reply").await.contains("新品上架啦"));
    assert!(text_of(&client, "#sim-tags").await.contains("兴趣/新品"));
    screenshot(&client, "simulator").await;

    // A segment of that tag counts the follower (without relying on the script).
    client.goto(&format!("{base}/admin/segments")).await.expect("segments");
    fill(&client, "#segment-expr", "\"兴趣/新品\"").await;
    click(&client, "#segment-form button[type=submit]").await;
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
