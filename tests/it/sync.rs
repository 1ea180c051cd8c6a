//! `tagcast sync`: imports followers and their WeChat tags, resumes after being killed, and
//! never writes a row twice.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::app::{APPID, SECRET, TestApp, spawn_app};

fn sync_command(app: &TestApp) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tagcast"));
    command
        .arg("sync")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.db_url)
        .env("WECHAT_APPID", APPID)
        .env("WECHAT_APPSECRET", SECRET)
        .env("WECHAT_TOKEN", &app.token)
        .env("WECHAT_API_BASE", app.wechat.base_url().expect("mock started"))
        .env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_imports_followers_and_tags_and_resumes_after_a_kill_without_duplicates() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(25_000);
    let oily = app.wechat.create_tag("肤质/油性").expect("tag");
    let vip = app.wechat.create_tag("消费/VIP").expect("tag");
    app.wechat.create_tag("空标签").expect("tag");
    assert_eq!(app.wechat.tag_followers(oily, &fans[..12_000]), 12_000);
    assert_eq!(app.wechat.tag_followers(vip, &fans[10_000..15_000]), 5_000);
    // Small pages and a little latency, so there is time to kill the import halfway.
    app.wechat.set_page_size(1_000);
    app.wechat.set_latency(Duration::from_millis(40));

    let mut child = sync_command(&app).spawn().expect("sync starts");
    let started = Instant::now();
    loop {
        let imported = app.count("SELECT coalesce(max(imported), 0) FROM sync_runs").await;
        if imported >= 10_000 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "import never got halfway");
        assert!(child.try_wait().expect("status").is_none(), "sync ended before it could be killed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let halfway = app.stored_followers().await;
    assert!((10_000..25_000).contains(&halfway), "killed halfway, found {halfway}");
    assert_eq!(app.count("SELECT count(*) FROM sync_runs WHERE finished_at IS NULL").await, 1);

    app.wechat.set_latency(Duration::ZERO);
    let output = sync_command(&app).output().expect("sync runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("25000 followers and 4 tags imported (resumed)"), "{stdout}");

    assert_eq!(app.stored_followers().await, 25_000);
    assert_eq!(app.count("SELECT count(*) FROM followers WHERE subscribed").await, 25_000);
    assert_eq!(app.count("SELECT count(*) FROM follower_wechat_tags").await, 17_000);
    assert_eq!(app.count(&format!("SELECT count(*) FROM follower_wechat_tags WHERE tag_id = {oily}")).await, 12_000);
    assert_eq!(app.count(&format!("SELECT count(*) FROM follower_wechat_tags WHERE tag_id = {vip}")).await, 5_000);
    assert_eq!(app.count("SELECT count(*) FROM wechat_tags").await, 4, "three tags plus 星标组");
    assert_eq!(app.count("SELECT count(*) FROM sync_runs WHERE finished_at IS NOT NULL").await, 1);
}

#[tokio::test]
async fn a_new_sync_marks_followers_who_left_and_updates_memberships() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(30);
    let tag = app.wechat.create_tag("活跃").expect("tag");
    app.wechat.tag_followers(tag, &fans[..10]);
    let first = sync_command(&app).output().expect("sync");
    assert!(first.status.success());

    app.wechat.unsubscribe(&fans[0]);
    app.wechat.unsubscribe(&fans[20]);
    let second = sync_command(&app).output().expect("sync");
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("28 followers") && stdout.contains("2 no longer following"), "{stdout}");
    assert_eq!(app.count("SELECT count(*) FROM followers WHERE NOT subscribed").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM follower_wechat_tags").await, 9, "the leaver lost the tag on WeChat");
}
