//! Playbooks: `tagcast playbook check/apply`, `TAGCAST_PLAYBOOK` at start, and the sample
//! skin quiz (playbooks/skin-quiz.toml) end to end through the real callback.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use crate::support::app::{TestApp, event, now, spawn_app, spawn_app_with, text_message};
use crate::support::db::TestDb;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/skin-quiz.toml");

/// The paths the seed's case gives: 混合性 + 敏感肌 + 25-30岁.
const SEED_TAGS: [&str; 3] = ["年龄/25-30岁", "肤质/敏感肌", "肤质/混合性"];

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary with only `DATABASE_URL` (and `PATH`) set, in an empty directory so no
/// developer's `.env` leaks in.
fn tagcast(args: &[&str], database_url: &str) -> Run {
    let dir = std::env::temp_dir().join(format!("tagcast-playbook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_tagcast"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .current_dir(&dir)
        .output()
        .expect("tagcast runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn write_temp(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tagcast-playbook-{}-{:x}", std::process::id(), rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("playbook written");
    path
}

const BROKEN: &str = r#"# a playbook with one mistake after another
[[tag]]
path = "肤质//油性"

[[tag]]
path = "消费/VIP"
colour = "gold"

[[rule]]
on = "click"
key = "SKIN_TEST"
start_quiz = "nowhere"

[[rule]]
on = "hover"
key = "X"
reply = "hi"

[[quiz]]
id = "skin"
  [[quiz.question]]
  text = "T 区？"
  options = [ { label = "A", text = "油", score = { oil = 2 } } ]
  [[quiz.result]]
  tag = "肤质/油性"
  score = "dry"
  min = 1

[[tag]]
path = "消费/VIP"
"#;

#[tokio::test]
async fn playbook_check_prints_every_problem_with_its_line_and_fails() {
    let db = TestDb::create().await;
    let file = write_temp("broken.toml", BROKEN);
    let name = file.display().to_string();

    let run = tagcast(&["playbook", "check", &name], &db.url());

    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let lines: Vec<&str> = run.stderr.lines().collect();
    let expected = [
        (3, "「肤质//油性」的第 2 级是空的"),
        (7, "不认识的项 `colour`"),
        (12, "没有测验「nowhere」"),
        (15, "`hover` 不是可选的值"),
        (21, "第 1 题至少需要 2 个选项"),
        (24, "按分数「dry」判定，但没有任何选项给这个分数"),
        (29, "标签「消费/VIP」声明了两次（第一次在第 5 行）"),
    ];
    assert_eq!(lines.len(), expected.len(), "{}", run.stderr);
    for (line, (number, message)) in lines.iter().zip(expected) {
        let prefix = format!("{name}:{number}: ");
        assert!(line.starts_with(&prefix) && line.contains(message), "expected {prefix}…{message}…, got {line}");
    }
}

#[test]
fn playbook_check_passes_the_sample_without_touching_a_database() {
    let run = tagcast(&["playbook", "check", SAMPLE], "postgres://postgres@127.0.0.1:1/nowhere");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "ok: 10 tags, 2 rules, 1 quizzes");
    assert!(run.stderr.trim().is_empty(), "no warnings expected: {}", run.stderr);
}

async fn config_snapshot(client: &tokio_postgres::Client) -> Vec<String> {
    let queries = [
        "SELECT string_agg(path || '|' || description || '|' || sensitive || '|' || coalesce(when_expr, '') || '|' || mirrored, ',' ORDER BY path) FROM tags",
        "SELECT string_agg(id::text || trigger || key || coalesce(start_quiz, ''), ',' ORDER BY id) FROM rules",
        "SELECT string_agg(id || spec::text || updated_at::text, ',' ORDER BY id) FROM quizzes",
        "SELECT version::text FROM config_version",
    ];
    let mut snapshot = Vec::new();
    for sql in queries {
        let row = client.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        snapshot.push(row.get::<_, Option<String>>(0).unwrap_or_default());
    }
    snapshot
}

#[tokio::test]
async fn applying_the_sample_twice_changes_nothing_the_second_time() {
    let db = TestDb::create().await;
    let url = db.url();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("db");
    tokio::spawn(connection);

    let first = tagcast(&["playbook", "apply", SAMPLE], &url);
    assert_eq!(first.code, 0, "{}", first.stderr);
    for line in ["created tag 肤质/油性", "created tag 消费/VIP", "created quiz skin", "created rule click SKIN_TEST"]
    {
        assert!(first.stdout.lines().any(|l| l == line), "missing `{line}` in\n{}", first.stdout);
    }
    assert!(first.stdout.lines().any(|l| l == "created rule keyword 我要测肤质"), "{}", first.stdout);
    assert_eq!(first.stdout.lines().last(), Some("13 created, 0 updated, 0 unchanged"));
    let counts = client
        .query_one(
            "SELECT (SELECT count(*) FROM tags), (SELECT count(*) FROM rules), (SELECT count(*) FROM quizzes)",
            &[],
        )
        .await
        .expect("counts");
    assert_eq!((counts.get::<_, i64>(0), counts.get::<_, i64>(1), counts.get::<_, i64>(2)), (10, 2, 1));
    let vip = client.query_one("SELECT when_expr FROM tags WHERE path = '消费/VIP'", &[]).await.expect("vip");
    assert_eq!(vip.get::<_, Option<String>>(0).as_deref(), Some("orders(all) >= 3"));
    let before = config_snapshot(&client).await;

    let second = tagcast(&["playbook", "apply", SAMPLE], &url);

    assert_eq!(second.code, 0, "{}", second.stderr);
    let lines: Vec<&str> = second.stdout.lines().collect();
    assert_eq!(lines.len(), 14, "{}", second.stdout);
    assert!(lines[..13].iter().all(|l| l.starts_with("unchanged ")), "{}", second.stdout);
    assert_eq!(lines[13], "no change: all 13 already as the playbook says");
    assert_eq!(config_snapshot(&client).await, before, "the second apply wrote something");
}

#[tokio::test]
async fn applying_an_edited_playbook_updates_what_changed_and_leaves_the_rest() {
    let app = spawn_app().await;
    let pool = tagcast::store::connect_pool(&app.settings.database_url, 2).await.expect("pool");
    tagcast::app::playbook::apply(&pool, "skin-quiz.toml", tagcast::app::playbook::SAMPLE).await.expect("applies");
    let edited = tagcast::app::playbook::SAMPLE
        .replace("description = \"肤质测试：出油分 ≥ 4\"", "description = \"油皮\"\nsensitive = true")
        .replace("intro = \"肤质小测试", "intro = \"新版肤质小测试")
        .replace(
            "key = \"我要测肤质\"\nstart_quiz = \"skin\"",
            "key = \"我要测肤质\"\nstart_quiz = \"skin\"\nreply = \"好的\"",
        );

    let applied = tagcast::app::playbook::apply(&pool, "skin-quiz.toml", &edited).await.expect("applies");

    let changed: Vec<String> = applied
        .changes
        .iter()
        .filter(|c| c.outcome != tagcast::app::playbook::Outcome::Unchanged)
        .map(ToString::to_string)
        .collect();
    assert_eq!(changed.len(), 3, "{changed:#?}");
    assert_eq!(changed[0], "updated tag 肤质/油性 (description, sensitive)");
    assert_eq!(changed[1], "updated quiz skin");
    assert!(changed[2].starts_with("created rule keyword 我要测肤质 (rule "), "{}", changed[2]);
    let (_, tags) = app.api_get("/tags").await;
    let oily = tags.as_array().unwrap().iter().find(|t| t["path"] == "肤质/油性").expect("tag").clone();
    assert_eq!((oily["description"].as_str(), oily["sensitive"].as_bool()), (Some("油皮"), Some(true)));
    assert_eq!(app.count("SELECT count(*) FROM rules").await, 3);
}

#[tokio::test]
async fn tagcast_playbook_is_applied_before_serving() {
    let app = spawn_app_with(|vars| {
        vars.insert("TAGCAST_PLAYBOOK".into(), SAMPLE.into());
    })
    .await;
    let (status, quizzes) = app.api_get("/quizzes").await;
    assert_eq!(status, 200);
    assert_eq!(quizzes[0]["id"], "skin");
    assert_eq!(app.count("SELECT count(*) FROM rules").await, 2);
}

#[tokio::test]
async fn a_playbook_with_problems_stops_start_up_naming_tagcast_playbook_and_each_problem() {
    let db = TestDb::create().await;
    let file = write_temp("bad.toml", BROKEN);
    let mut vars = crate::support::app::base_vars(&db.url());
    vars.insert("TAGCAST_PLAYBOOK".into(), file.display().to_string());
    let settings = tagcast::config::Settings::from_lookup(|k| vars.get(k).cloned()).expect("settings");

    let Err(error) = tagcast::startup::Application::build(settings).await else {
        panic!("start-up must stop");
    };

    let mut chain = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(chain.starts_with("TAGCAST_PLAYBOOK: "), "{chain}");
    assert!(chain.contains("has 7 problems"), "{chain}");
    assert!(chain.contains(&format!("{}:3: 「肤质//油性」的第 2 级", file.display())), "{chain}");
    assert!(chain.contains(&format!("{}:29: 标签「消费/VIP」声明了两次", file.display())), "{chain}");
    assert_eq!(count_rows(&db.url(), "SELECT count(*) FROM tags").await, 0, "nothing was half-applied");
}

async fn count_rows(url: &str, sql: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("db");
    tokio::spawn(connection);
    client.query_one(sql, &[]).await.expect("count").get(0)
}

/// The text of a passive reply.
async fn reply_text(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("body");
    let fields = tagcast::wechat::message::flatten(&body).unwrap_or_default();
    fields.into_iter().find(|(k, _)| k == "Content").map(|(_, v)| v).unwrap_or(body)
}

/// One follower talking to the account; message ids are unique per follower.
struct Follower<'a> {
    openid: &'a str,
    next_msg_id: u64,
}

impl<'a> Follower<'a> {
    fn new(openid: &'a str, first_msg_id: u64) -> Self {
        Self { openid, next_msg_id: first_msg_id }
    }

    async fn says(&mut self, app: &TestApp, text: &str) -> String {
        self.next_msg_id += 1;
        reply_text(app.push(&text_message(self.openid, text, self.next_msg_id)).await).await
    }

    async fn clicks(&self, app: &TestApp, key: &str) -> String {
        reply_text(app.push(&event(self.openid, "CLICK", Some(key), now())).await).await
    }
}

async fn local_tags(app: &TestApp, openid: &str) -> BTreeSet<String> {
    let (status, user) = app.api_get(&format!("/users/{openid}")).await;
    assert_eq!(status, 200, "{user}");
    user["tags"].as_array().expect("tags").iter().map(|t| t.as_str().expect("path").to_owned()).collect()
}

fn wechat_tags(app: &TestApp, openid: &str) -> BTreeSet<String> {
    let names: std::collections::HashMap<i64, String> =
        app.wechat.tags().into_iter().map(|(id, name, _)| (id, name)).collect();
    app.wechat.user_tags(openid).iter().map(|id| names[id].clone()).collect()
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| (*p).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_skin_quiz_tags_followers_through_the_callback_survives_a_restart_and_lets_them_leave() {
    // Arrange: the sample applied through the wiring the CLI and start-up use.
    let mut app = spawn_app().await;
    let pool = tagcast::store::connect_pool(&app.settings.database_url, 2).await.expect("pool");
    tagcast::app::playbook::apply(&pool, tagcast::app::playbook::SAMPLE_FILE, tagcast::app::playbook::SAMPLE)
        .await
        .expect("the sample applies");
    for openid in ["o_quiz_done", "o_quiz_quit", "o_quiz_restart"] {
        app.wechat.add_follower(openid);
    }

    // A follower clicks the menu and answers, with one answer that is no option.
    let mut done = Follower::new("o_quiz_done", 1_000);
    let first = done.clicks(&app, "SKIN_TEST").await;
    assert!(first.starts_with("肤质小测试"), "{first}");
    assert!(first.contains("（1/5）洗脸一小时后"), "{first}");
    assert!(done.says(&app, "A").await.contains("（2/5）"));
    assert!(done.says(&app, "c").await.contains("（3/5）"));
    let reasked = done.says(&app, "不知道").await;
    assert!(reasked.starts_with("请回复 A/B/C 中的一个选项。") && reasked.contains("（3/5）"), "{reasked}");
    assert!(done.says(&app, "A").await.contains("（4/5）"));
    assert!(done.says(&app, "B").await.contains("（5/5）你的年龄段？"));
    let last = done.says(&app, "B").await;

    assert!(last.starts_with("测验完成！你的标签："), "{last}");
    // The intro promises 护肤建议: the reply gives the advice for each result reached.
    assert!(last.contains("【混合性肌肤护肤建议】") && last.contains("【敏感肌护理提醒】"), "{last}");
    assert!(!last.contains("【油性肌肤护肤建议】"), "{last}");
    for path in SEED_TAGS {
        assert!(last.contains(path), "{last} should name {path}");
    }
    assert_eq!(local_tags(&app, "o_quiz_done").await, set(&SEED_TAGS));
    app.run_pending_jobs().await;
    assert!(app.wechat.call_count("cgi-bin/tags/members/batchtagging") >= 3);
    assert_eq!(wechat_tags(&app, "o_quiz_done"), set(&SEED_TAGS));

    // A follower who starts by keyword and leaves mid-quiz gets no tags.
    let mut quitter = Follower::new("o_quiz_quit", 2_000);
    assert!(quitter.says(&app, "我要测肤质").await.contains("（1/5）"));
    assert!(quitter.says(&app, "D").await.contains("（2/5）"));
    assert!(quitter.says(&app, "退出").await.contains("已退出测验"));
    assert!(!quitter.says(&app, "A").await.contains("（3/5）"), "the quiz is over");
    assert!(local_tags(&app, "o_quiz_quit").await.is_empty());

    // A follower answers two questions, the server restarts, and they finish on the new one.
    let mut patient = Follower::new("o_quiz_restart", 3_000);
    assert!(patient.clicks(&app, "SKIN_TEST").await.contains("（1/5）"));
    assert!(patient.says(&app, "D").await.contains("（2/5）"));
    assert!(patient.says(&app, "D").await.contains("（3/5）"));
    app.restart().await;
    assert!(patient.says(&app, "C").await.contains("（4/5）"));
    assert!(patient.says(&app, "C").await.contains("（5/5）"));
    let last = patient.says(&app, "D").await;
    let dry = ["年龄/40岁以上", "肤质/干性"];
    for path in dry {
        assert!(last.contains(path), "{last} should name {path}");
    }
    assert_eq!(local_tags(&app, "o_quiz_restart").await, set(&dry));
    app.run_pending_jobs().await;
    assert_eq!(wechat_tags(&app, "o_quiz_restart"), set(&dry));
    assert!(wechat_tags(&app, "o_quiz_quit").is_empty());
    assert_eq!(app.count("SELECT count(*) FROM quiz_answers").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM tag_outbox").await, 0, "every tag change reached WeChat");
}
