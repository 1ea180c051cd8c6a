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
