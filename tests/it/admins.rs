//! Admin users (CONTRACT.md §4 `POST /admins`): HTTP Basic on the API, roles, the start-up admin.

use reqwest::Method;
use serde_json::json;

use crate::support::app::{spawn_app, spawn_app_with};

#[tokio::test]
async fn an_admin_created_through_the_api_signs_in_with_basic_auth_and_is_audited() {
    let app = spawn_app().await;
    app.create_admin("alice", "correct horse battery", "operator").await;

    let (status, tags) = app.api_call_as(("alice", "correct horse battery"), Method::GET, "/tags", None).await;
    assert_eq!(status, 200, "{tags}");
    assert!(tags.is_array());
    // Again, from the verified-password memory.
    let (status, _) = app.api_call_as(("alice", "correct horse battery"), Method::GET, "/tags", None).await;
    assert_eq!(status, 200);

    let (status, body) = app.api_call_as(("alice", "wrong horse battery"), Method::GET, "/tags", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = app.api_call_as(("nobody", "correct horse battery"), Method::GET, "/tags", None).await;
    assert_eq!(status, 401);

    // What alice creates carries her name.
    let (status, tag) = app
        .api_call_as(("alice", "correct horse battery"), Method::POST, "/tags", Some(json!({"path": "兴趣/美妆"})))
        .await;
    assert_eq!(status, 201, "{tag}");
    let (_, tags) = app.api_get("/tags").await;
    assert_eq!(tags[0]["created_by"], "alice", "{tags}");

    let rows = app.query("SELECT actor, action, object_kind, object_id FROM audit_log", &[]).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].get::<_, String>(0), rows[0].get::<_, String>(1), rows[0].get::<_, String>(3)),
        ("api".to_owned(), "create".to_owned(), "alice".to_owned())
    );
    let hash: String = app.query("SELECT password_hash FROM admins", &[]).await[0].get(0);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("correct horse"));
}

#[tokio::test]
async fn only_admins_manage_admins_and_bad_requests_change_nothing() {
    let app = spawn_app().await;
    app.create_admin("olga", "operator-password", "operator").await;
    app.create_admin("root2", "admin-password", "admin").await;

    let new = json!({"username": "eve", "password": "eve-password", "role": "admin"});
    let (status, body) =
        app.api_call_as(("olga", "operator-password"), Method::POST, "/admins", Some(new.clone())).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = app.api_call_as(("root2", "admin-password"), Method::POST, "/admins", Some(new)).await;
    assert_eq!(status, 201);

    for (body, code) in [
        (json!({"username": "eve", "password": "another-password", "role": "operator"}), (409, "admin_exists")),
        (json!({"username": "x", "password": "short", "role": "operator"}), (400, "invalid_request")),
        (json!({"username": "x", "password": "long enough", "role": "root"}), (400, "invalid_request")),
        (json!({"username": "x y", "password": "long enough", "role": "operator"}), (400, "invalid_request")),
        (
            json!({"username": "x", "password": "long enough", "role": "operator", "admin": true}),
            (400, "invalid_request"),
        ),
    ] {
        let (status, answer) = app.api_post("/admins", body.clone()).await;
        assert_eq!((status, answer["error"]["code"].as_str().unwrap_or_default()), code, "{body}: {answer}");
    }
    let (status, admins) = app.api_get("/admins").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = admins.as_array().unwrap().iter().map(|a| a["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["olga", "root2", "eve"]);
    assert!(admins.to_string().find("password").is_none(), "hashes never leave: {admins}");
}

#[tokio::test]
async fn the_start_up_admin_comes_from_tagcast_admin_password_once() {
    let app = spawn_app_with(|vars| {
        vars.insert("TAGCAST_ADMIN_PASSWORD".to_owned(), "start-up-secret".to_owned());
    })
    .await;
    let (status, _) = app.api_call_as(("admin", "start-up-secret"), Method::GET, "/admins", None).await;
    assert_eq!(status, 200);
    let mut app = app;
    app.restart().await;
    assert_eq!(app.count("SELECT count(*) FROM admins").await, 1, "a restart does not add a second admin");
}
