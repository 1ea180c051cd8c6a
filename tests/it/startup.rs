//! Start-up: a bad value stops `tagcast` with one line naming the variable; `/healthz`.

use std::process::Command;

use crate::support::app::spawn_app;

fn run_tagcast(vars: &[(&str, &str)]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tagcast"));
    command.arg("migrate").env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    // An empty working directory, so no developer's .env leaks in.
    let dir = std::env::temp_dir().join(format!("tagcast-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    command.current_dir(&dir);
    for (k, v) in vars {
        command.env(k, v);
    }
    let output = command.output().expect("tagcast runs");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn bad_configuration_stops_start_up_with_one_line_naming_the_variable() {
    let cases = [
        (vec![("WECHAT_ENCODING_AES_KEY", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF")], "WECHAT_ENCODING_AES_KEY"),
        (vec![("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")], "DATABASE_URL"),
        (vec![("DATABASE_URL", "http://[::1")], "DATABASE_URL"),
        (vec![("TAGCAST_BIND", "everywhere")], "TAGCAST_BIND"),
        (vec![("WECHAT_ACCOUNT_TYPE", "personal")], "WECHAT_ACCOUNT_TYPE"),
    ];
    for (vars, variable) in cases {
        let (code, stderr) = run_tagcast(&vars);
        assert_ne!(code, 0, "{variable}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{variable}: {stderr}");
        assert!(lines[0].starts_with(&format!("tagcast: {variable}")), "{variable}: {stderr}");
    }
}

#[tokio::test]
async fn healthz_answers_when_the_database_does() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_seeds_followers_with_histories_through_the_real_callback() {
    use crate::support::db::TestDb;
    let db = TestDb::create().await;
    let url = db.url();
    let vars = [("DATABASE_URL", url.as_str()), ("TAGCAST_BIND", "127.0.0.1:0")];
    let settings =
        tagcast::config::Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()))
            .expect("demo settings");
    assert!(settings.is_demo());
    let app = tagcast::startup::Application::build(settings).await.expect("demo starts");
    let app_demo = app.demo().expect("demo mode runs the mock");
    let mock = app_demo.mock.clone();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());

    let demo = app_demo;
    tokio::time::timeout(std::time::Duration::from_secs(180), demo.wait_until_seeded()).await.expect("seeded in time");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("db");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM followers WHERE NOT starts_with(openid, 'test_')), (SELECT count(*) FROM events)",
            &[],
        )
        .await
        .expect("counts");
    let (followers, events): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(followers, 3_000);
    let sample: i64 = client
        .query_one("SELECT count(*) FROM quizzes q JOIN rules r ON r.start_quiz = q.id WHERE q.id = 'skin'", &[])
        .await
        .expect("the sample playbook")
        .get(0);
    assert_eq!(sample, 2, "demo mode applies playbooks/skin-quiz.toml (a menu click and a keyword start the quiz)");
    let kinds: Vec<String> = client
        .query("SELECT DISTINCT kind FROM events ORDER BY 1", &[])
        .await
        .expect("kinds")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kinds, ["click", "subscribe", "text"]);
    assert!(events >= 3_000 * 2, "{events} events");
    assert_eq!(mock.token_fetches(), 1);
    handle.stop(false).await;

    // What the operator deleted stays deleted: a restart does not bring the sample back.
    client.execute("DELETE FROM rules WHERE start_quiz = 'skin' AND trigger = 'keyword'", &[]).await.expect("delete");
    client.execute("DELETE FROM tags WHERE path = '肤质/干性'", &[]).await.expect("delete tag");
    let settings =
        tagcast::config::Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()))
            .expect("demo settings");
    let again = tagcast::startup::Application::build(settings).await.expect("demo restarts");
    let kept = "SELECT (SELECT count(*) FROM rules WHERE start_quiz = 'skin'), (SELECT count(*) FROM tags WHERE path = '肤质/干性')";
    let row = client.query_one(kept, &[]).await.expect("counts");
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 0), "the sample is applied on the first start only");
    drop(again);
}

/// CONTRACT §1: `serve` without credentials prints the admin page's URL and the demo login, and
/// that login works.
#[tokio::test]
async fn demo_serve_prints_the_admin_url_and_a_login_that_works() {
    use std::io::{BufRead, BufReader};

    use crate::support::db::TestDb;
    let db = TestDb::create().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let dir = std::env::temp_dir().join(format!("tagcast-demo-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tagcast"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db.url())
        .env("TAGCAST_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tagcast serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout).lines().map_while(Result::ok).find(|l| l.contains("admin page"))
    });
    let line = tokio::time::timeout(std::time::Duration::from_secs(120), line)
        .await
        .expect("printed in time")
        .expect("reader")
        .expect("a line naming the admin page");
    assert!(line.contains(&format!("http://127.0.0.1:{port}/admin")), "{line}");
    assert!(line.contains("admin / tagcast-demo"), "{line}");

    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/admins"))
        .basic_auth("admin", Some("tagcast-demo"))
        .send()
        .await
        .expect("API answers");
    assert_eq!(answer.status(), 200);
    let login_page = reqwest::get(format!("http://127.0.0.1:{port}/admin/login")).await.expect("login page");
    assert_eq!(login_page.status(), 200);
    child.kill().expect("stopped");
    let _ = child.wait();
}
