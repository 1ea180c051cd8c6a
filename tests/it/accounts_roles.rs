//! Roles per account (issue 17 point 5), the `Tagcast-Account` header, the console's account
//! switcher, accounts in the API and the console, the audit log and playbooks per account.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin_pages::{Browser, PASSWORD};
use crate::support::app::{TestApp, spawn_app};

/// A JSON API call as `username` (HTTP Basic), on `account` when given.
async fn call_as(
    app: &TestApp,
    username: &str,
    account: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request =
        app.http.request(method, format!("{}/api/v1{path}", app.address)).basic_auth(username, Some(PASSWORD));
    if let Some(account) = account {
        request = request.header("Tagcast-Account", account);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn csrf_of(body: &str) -> Option<String> {
    let start = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_owned())
}

/// Signs `username` in without opening the board (a user holding no account cannot).
async fn signed_in_without_board(app: &TestApp, username: &str) -> reqwest::Client {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = http.get(format!("{}/admin/login", app.address)).send().await.expect("sent");
    let csrf = csrf_of(&login.text().await.expect("body")).expect("token");
    let page = http
        .post(format!("{}/admin/login", app.address))
        .form(&[("csrf", csrf.as_str()), ("username", username), ("password", PASSWORD)])
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    http
}

/// A user holding `roles` (account name → role), created by the bearer token.
async fn user_with(app: &TestApp, username: &str, roles: Value) {
    let (status, body) =
        app.api_post("/admins", json!({ "username": username, "password": PASSWORD, "roles": roles })).await;
    assert_eq!(status, 201, "{body}");
}

/// Every call of the API with its path parameters filled in, as an outsider might guess them.
fn every_call() -> Vec<(Method, String)> {
    tagcast::web::api::routes()
        .iter()
        .map(|call| {
            let path = call
                .path
                .replace("{id}", "1")
                .replace("{openid}", "o_guess")
                .replace("{name}", "shop")
                .replace("{username}", "olivia");
            (Method::from_bytes(call.method.as_str().as_bytes()).expect("a method"), path)
        })
        .collect()
}

#[tokio::test]
async fn an_operator_of_one_account_gets_403_for_every_call_and_page_of_another() {
    let app = spawn_app().await;
    let _shop = app.add_account("shop", false).await;
    user_with(&app, "olivia", json!({ "main": "operator" })).await;

    // Her own account answers as before, with or without the header.
    assert_eq!(call_as(&app, "olivia", None, Method::GET, "/tags", None).await.0, 200);
    assert_eq!(call_as(&app, "olivia", Some("main"), Method::GET, "/tags", None).await.0, 200);

    // Every call on the other account is refused before it looks at anything, including the
    // calls that name an object by a guessed id.
    for (method, path) in every_call() {
        if path == "/accounts" && method == Method::GET {
            continue;
        }
        let (status, body) = call_as(&app, "olivia", Some("shop"), method.clone(), &path, Some(json!({}))).await;
        assert_eq!(status, 403, "{method} {path} on shop: {body}");
        assert_eq!(body["error"]["code"], "forbidden", "{method} {path}: {body}");
    }
    // An account that does not exist is a 404, in the contract's shape.
    let (status, body) = call_as(&app, "olivia", Some("nosuch"), Method::GET, "/tags", None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    // She sees only the account she holds.
    let (status, accounts) = call_as(&app, "olivia", None, Method::GET, "/accounts", None).await;
    assert_eq!(status, 200, "{accounts}");
    let names: Vec<&str> =
        accounts.as_array().expect("list").iter().map(|a| a["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["main"]);
    assert_eq!(accounts[0]["role"], "operator");

    // The console offers her no switch to it, and refuses one made by hand; the session stays.
    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;
    let board = olivia.get("/admin").await;
    assert!(!board.body.contains("value=\"shop\""), "the switcher lists only the accounts held");
    let page = olivia.post("/admin/account", &[("account", "shop"), ("back", "/admin/tags")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("无权操作"), "{}", page.body);
    let tags = olivia.get("/admin/tags").await;
    assert_eq!(tags.status, StatusCode::OK);
    assert!(tags.body.contains("主公众号"), "still on her own account");
    assert_eq!(
        app.count("SELECT count(*) FROM admin_sessions s JOIN admins a ON a.id = s.admin_id WHERE a.username = 'olivia' AND s.account_id = 1")
            .await,
        1
    );
    // Nor the deployment's pages.
    assert_eq!(olivia.get("/admin/accounts").await.status, StatusCode::FORBIDDEN);
    assert_eq!(olivia.get("/admin/users").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_switcher_changes_the_account_every_page_shows() {
    let app = spawn_app().await;
    let shop = app.add_account("shop", true).await;
    app.create_admin("root", PASSWORD, "admin").await;
    user_with(&app, "amy", json!({ "main": "operator", "shop": "approver" })).await;

    let mut amy = Browser::log_in(&app, "amy", PASSWORD).await;
    let board = amy.get("/admin").await;
    assert!(board.body.contains("主公众号（服务号）"), "the current account is named on every page");
    assert!(board.body.contains("测试公众号 shop（订阅号）"), "the switcher lists the other account");
    assert!(board.body.contains("（运营）"), "her role on the first account");

    // A playbook imported in shop is shop's: its audit entry shows there, not in main.
    let page = amy.post("/admin/account", &[("account", "shop"), ("back", "/admin/playbook")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/admin/playbook"));
    let playbook = amy.get("/admin/playbook").await;
    assert!(playbook.body.contains("已切换到公众号「测试公众号 shop」"), "{}", playbook.body);
    assert!(playbook.body.contains("测试公众号 shop（订阅号）"));
    assert!(playbook.body.contains("（审批人）"), "her role on shop");
    let source = "[[tag]]\npath = \"切换/测试\"\ndescription = \"\"\nwechat = false\n";
    let page = amy.post("/admin/playbook/import", &[("source", source)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE object_kind = 'playbook' AND account_id = {}",
            shop.id.get()
        ))
        .await,
        1
    );
    let audit = amy.get("/admin/audit").await;
    assert!(audit.body.contains("配置文件 <a href=\"/admin/playbook\">「网页导入」</a>"), "{}", audit.body);

    let page = amy.post("/admin/account", &[("account", "main"), ("back", "/admin/audit")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let audit = amy.get("/admin/audit").await;
    assert!(audit.body.contains("主公众号（服务号）"));
    assert!(!audit.body.contains("「网页导入」"), "main's log shows nothing of shop's: {}", audit.body);
    // A deployment-wide act (creating users) is for deployment admins' eyes only.
    assert!(!audit.body.contains("「amy」"), "{}", audit.body);
    let mut root = Browser::log_in(&app, "root", PASSWORD).await;
    let audit = root.get("/admin/audit").await;
    assert!(
        audit.body.contains("<td>创建</td>") && audit.body.contains("用户 <a href=\"/admin/users\">「amy」</a>"),
        "{}",
        audit.body
    );

    // A back address that leaves the console is not followed.
    let page = amy.post("/admin/account", &[("account", "shop"), ("back", "https://evil.example/")]).await;
    assert_eq!(page.location.as_deref(), Some("/admin"));
}

#[tokio::test]
async fn accounts_are_created_and_edited_by_api_without_their_secrets_ever_coming_back() {
    let app = spawn_app().await;
    user_with(&app, "olivia", json!({ "main": "operator" })).await;
    let secret = "shop2-app-secret-value";
    let token = "shop2-token-value";
    let aes_key = "Shop2KeyShop2KeyShop2KeyShop2KeyShop2KeyAbc";
    let new = json!({
        "name": "shop2", "display_name": "二号店", "kind": "subscription", "appid": "wxshop200000000002",
        "app_secret": secret, "token": token, "encoding_aes_key": aes_key, "message_mode": "safe",
    });

    // Only a deployment admin creates accounts.
    let (status, body) = call_as(&app, "olivia", None, Method::POST, "/accounts", Some(new.clone())).await;
    assert_eq!(status, 403, "{body}");

    let (status, created) = app.api_post("/accounts", new.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["secrets"], json!({ "app_secret": true, "token": true, "encoding_aes_key": true }));
    assert!(created["callback_url"].as_str().expect("url").ends_with("/wechat/shop2"), "{created}");
    let (_, listed) = app.api_get("/accounts").await;
    for text in [created.to_string(), listed.to_string()] {
        for value in [secret, token, aes_key] {
            assert!(!text.contains(value), "a secret came back: {text}");
        }
    }
    let first = &listed[0];
    assert_eq!(first["name"], "main");
    assert_eq!(first["from_environment"], true);
    assert!(first["callback_url"].as_str().expect("url").ends_with("/wechat"));

    // Editing without secrets keeps them.
    let (status, edited) =
        app.api_call(Method::PATCH, "/accounts/shop2", Some(json!({ "display_name": "二号店（华东）" }))).await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["display_name"], "二号店（华东）");
    assert_eq!(edited["secrets"], json!({ "app_secret": true, "token": true, "encoding_aes_key": true }));
    let live = app.jobs.accounts.by_name("shop2").expect("live");
    assert!(live.token.is_some() && live.api.is_some() && live.crypt.is_some());
    assert_eq!(app.count("SELECT count(*) FROM accounts WHERE name = 'shop2' AND token_sealed IS NOT NULL").await, 1);

    // Refusals: a bad field, a taken name, an unknown account, a non-admin.
    let (status, body) = app
        .api_post("/accounts", json!({ "name": "shop3", "display_name": "三", "kind": "service", "appid": "nope" }))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");
    let (status, body) = app.api_post("/accounts", new.clone()).await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = app.api_call(Method::PATCH, "/accounts/nosuch", Some(json!({}))).await;
    assert_eq!(status, 404);
    let (status, _) =
        call_as(&app, "olivia", None, Method::PATCH, "/accounts/shop2", Some(json!({ "display_name": "x" }))).await;
    assert_eq!(status, 403);

    // Both acts are deployment-wide entries of the audit log, without the secrets.
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE object_kind = 'account' AND object_id = 'shop2' AND account_id IS NULL")
            .await,
        2
    );
    let detail: String = app.query("SELECT string_agg(detail::text, ' ') FROM audit_log", &[]).await[0].get(0);
    for value in [secret, token, aes_key] {
        assert!(!detail.contains(value), "a secret reached the audit log");
    }
}

#[tokio::test]
async fn accounts_are_created_and_edited_in_the_console_with_chinese_errors_and_no_secret_shown() {
    let app = spawn_app().await;
    app.create_admin("root", PASSWORD, "admin").await;
    user_with(&app, "olivia", json!({ "main": "admin" })).await;
    let mut root = Browser::log_in(&app, "root", PASSWORD).await;

    let page = root.get("/admin/accounts").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("由环境变量设置"), "the first account's secrets come from the environment");
    assert!(page.body.contains("/wechat</code>"), "{}", page.body);

    let secret = "console-secret-9f8e7d";
    let page = root
        .post(
            "/admin/accounts",
            &[
                ("name", "east"),
                ("display_name", "华东店"),
                ("kind", "service"),
                ("appid", "wx123"),
                ("app_secret", secret),
                ("message_mode", "plain"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("AppID 应为 wx 开头的 18 位字母数字"), "{}", page.body);
    assert!(page.body.contains("华东店"), "the form keeps what was typed");
    assert!(!page.body.contains(secret), "a refused form does not send the secret back");

    let page = root
        .post(
            "/admin/accounts",
            &[
                ("name", "east"),
                ("display_name", "华东店"),
                ("kind", "service"),
                ("appid", "wxeast000000000001"),
                ("app_secret", secret),
                ("token", "east-token"),
                ("message_mode", "plain"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/admin/accounts/east"));
    let page = root.get("/admin/accounts/east").await;
    assert!(page.body.contains("/wechat/east"), "the callback URL to paste into WeChat");
    assert!(page.body.contains("AppSecret（已设置"), "{}", page.body);
    assert!(page.body.contains("EncodingAESKey（未设置"), "{}", page.body);
    assert!(!page.body.contains(secret) && !page.body.contains("east-token"));

    // Saving with the secret inputs empty keeps the secrets.
    let page = root
        .post(
            "/admin/accounts/east",
            &[
                ("display_name", "华东旗舰店"),
                ("kind", "service"),
                ("appid", "wxeast000000000001"),
                ("message_mode", "plain"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let live = app.jobs.accounts.by_name("east").expect("live");
    assert_eq!(live.display_name, "华东旗舰店");
    assert!(live.secrets_set.app_secret && live.secrets_set.token);
    let page = root.get("/admin/accounts").await;
    assert!(page.body.contains("华东旗舰店") && !page.body.contains(secret));

    // The first account: only its name is the console's.
    let page = root.post("/admin/accounts/main", &[("display_name", "品牌服务号")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body.split("<main>").nth(1).unwrap_or_default());
    assert_eq!(app.jobs.accounts.first().display_name, "品牌服务号");

    // An admin of one account is no deployment admin.
    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;
    assert_eq!(olivia.get("/admin/accounts").await.status, StatusCode::FORBIDDEN);
    let page = olivia.post("/admin/accounts", &[("name", "west"), ("display_name", "西")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(app.jobs.accounts.by_name("west").is_none());
}

#[tokio::test]
async fn the_deployment_admin_holds_every_account_and_a_role_change_ends_the_users_sessions() {
    let app = spawn_app().await;
    let _shop = app.add_account("shop", false).await;
    app.create_admin("root", PASSWORD, "admin").await;
    user_with(&app, "olivia", json!({ "main": "operator" })).await;

    let (status, accounts) = call_as(&app, "root", None, Method::GET, "/accounts", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> =
        accounts.as_array().expect("list").iter().map(|a| a["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["main", "shop"]);
    assert!(accounts.as_array().expect("list").iter().all(|a| a["role"] == "admin"));
    assert_eq!(call_as(&app, "root", Some("shop"), Method::GET, "/tags", None).await.0, 200);
    let mut root = Browser::log_in(&app, "root", PASSWORD).await;
    assert!(root.get("/admin").await.body.contains("value=\"shop\""));

    // Granting shop ends olivia's session; signed in again, she can switch to it.
    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;
    let (status, body) = app
        .api_call(
            Method::PUT,
            "/admins/olivia/roles",
            Some(json!({ "roles": { "main": "operator", "shop": "approver" } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["roles"], json!({ "main": "operator", "shop": "approver" }));
    let page = olivia.get("/admin/tags").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "a role change ends the session at once");
    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = olivia.post("/admin/account", &[("account", "shop")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(olivia.get("/admin").await.body.contains("（审批人）"));
    assert_eq!(call_as(&app, "olivia", Some("shop"), Method::GET, "/tags", None).await.0, 200);

    // Saving the same roles again changes nothing and ends nothing.
    let (status, _) = app
        .api_call(
            Method::PUT,
            "/admins/olivia/roles",
            Some(json!({ "roles": { "main": "operator", "shop": "approver" } })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(olivia.get("/admin").await.status, StatusCode::OK);

    // The users page revokes shop: her session ends, and shop is closed to her again.
    root.get("/admin/users").await;
    let page = root.post("/admin/users/olivia/roles", &[("role_main", "operator"), ("role_shop", "")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(olivia.get("/admin").await.status, StatusCode::SEE_OTHER);
    assert_eq!(call_as(&app, "olivia", Some("shop"), Method::GET, "/tags", None).await.0, 403);
    let (_, users) = app.api_get("/admins").await;
    let olivia_row = users.as_array().expect("list").iter().find(|u| u["username"] == "olivia").expect("olivia");
    assert_eq!(olivia_row["roles"], json!({ "main": "operator" }));
    assert_eq!(olivia_row["deployment_admin"], false);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_log WHERE action = 'set_roles' AND object_id = 'olivia' AND account_id IS NULL"
        )
        .await,
        2
    );

    // A user left with no account at all is told so, and signed out.
    let (status, _) = app.api_call(Method::PUT, "/admins/olivia/roles", Some(json!({ "roles": {} }))).await;
    assert_eq!(status, 200);
    let olivia = signed_in_without_board(&app, "olivia").await;
    let page = olivia.get(format!("{}/admin/tags", app.address)).send().await.expect("sent");
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let body = page.text().await.expect("body");
    assert!(body.contains("还没有任何公众号的权限"), "{body}");
    // She was signed out, so someone else can sign in from this browser.
    let page = olivia.get(format!("{}/admin/login", app.address)).send().await.expect("sent");
    assert_eq!(page.status(), StatusCode::OK);

    // The bearer token is the deployment admin; an unknown user in a roles change is a 404.
    let (status, _) = app.api_call(Method::PUT, "/admins/nobody/roles", Some(json!({ "roles": {} }))).await;
    assert_eq!(status, 404);
    let (status, body) =
        app.api_call(Method::PUT, "/admins/olivia/roles", Some(json!({ "roles": { "nosuch": "operator" } }))).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn the_legacy_admin_calls_keep_their_meaning_on_the_first_account() {
    let app = spawn_app().await;
    let _shop = app.add_account("shop", false).await;
    // `role` alone, as before accounts: the role on the account the call names (the first).
    app.create_admin("olivia", PASSWORD, "operator").await;
    app.create_admin("root", PASSWORD, "admin").await;
    let (_, users) = app.api_get("/admins").await;
    let find =
        |name: &str| users.as_array().expect("list").iter().find(|u| u["username"] == name).cloned().expect("user");
    assert_eq!(find("olivia")["roles"], json!({ "main": "operator" }));
    assert_eq!(find("olivia")["role"], "operator");
    assert_eq!(find("root")["deployment_admin"], true);
    assert_eq!(find("root")["roles"], json!({ "main": "admin", "shop": "admin" }));
    // Named on shop, the same call grants shop.
    let (status, body) = app
        .api_call_on(
            "shop",
            Method::POST,
            "/admins",
            Some(json!({ "username": "sam", "password": PASSWORD, "role": "approver" })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["roles"], json!({ "shop": "approver" }));
}

#[tokio::test]
async fn a_playbook_applied_to_two_accounts_as_a_template_gives_each_its_own_tags() {
    let app = spawn_app().await;
    let shop = app.add_account("shop", false).await;
    let source = "[[tag]]\npath = \"模板/会员\"\ndescription = \"模板\"\nwechat = false\n";
    for account in [tagcast::domain::account::AccountId::FIRST, shop.id] {
        let applied = tagcast::app::playbook::apply_to(&app.jobs.pool, account, "template.toml", source)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(applied.changed(), "each account gets its own tag: {applied:?}");
    }
    assert_eq!(app.count("SELECT count(*) FROM tags WHERE path = '模板/会员' AND account_id = 1").await, 1);
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM tags WHERE path = '模板/会员' AND account_id = {}", shop.id.get()))
            .await,
        1
    );
    // Applying again changes neither.
    for account in [tagcast::domain::account::AccountId::FIRST, shop.id] {
        let applied =
            tagcast::app::playbook::apply_to(&app.jobs.pool, account, "template.toml", source).await.expect("applies");
        assert!(!applied.changed());
    }
}

/// `tagcast playbook` as the deployer runs it, on the test app's database.
fn playbook_cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tagcast"))
        .arg("playbook")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.db_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("tagcast runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_playbook_command_names_its_accounts_and_refuses_an_unknown_one_before_applying() {
    let app = spawn_app().await;
    let _shop = app.add_account("shop", false).await;
    let dir = std::env::temp_dir().join(format!("tagcast-accounts-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("template.toml");
    std::fs::write(&file, "[[tag]]\npath = \"命令行/模板\"\nwechat = false\n").expect("written");
    let file = file.to_str().expect("utf-8 path");

    let (code, stdout, stderr) = playbook_cli(&app, &["apply", "--account", "shop", "--account", "nosuch", file]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("--account nosuch: no such account (the accounts are: main, shop)"), "{stderr}");
    assert_eq!(app.count("SELECT count(*) FROM tags WHERE path = '命令行/模板'").await, 0, "nothing applied");

    let (code, stdout, stderr) = playbook_cli(&app, &["apply", "--account", "main", "--account", "shop", file]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("== main") && stdout.contains("== shop"), "{stdout}");
    let (code, stdout, stderr) = playbook_cli(&app, &["check", "--all-accounts", file]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("main: ok") && stdout.contains("shop: ok"), "{stdout}");
    // Without --account, as before accounts: the first account, and the output unchanged.
    let (code, stdout, _) = playbook_cli(&app, &["apply", file]);
    assert_eq!(code, 0);
    assert!(!stdout.contains("=="), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_with_account_imports_that_accounts_followers_only() {
    let app = spawn_app().await;
    let shop = app.add_account("shop", false).await;
    let fans = shop.wechat.seed_followers(30);
    app.wechat.seed_followers(5);
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tagcast"))
            .arg("sync")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &app.db_url)
            .env("WECHAT_APPID", crate::support::app::APPID)
            .env("WECHAT_APPSECRET", crate::support::app::SECRET)
            .env("WECHAT_TOKEN", &app.token)
            .env("WECHAT_API_BASE", app.wechat.base_url().expect("mock started"))
            .env("TAGCAST_SECRET_KEY", crate::support::accounts::SECRET_KEY)
            .env("RUST_LOG", "warn")
            .current_dir(std::env::temp_dir())
            .output()
            .expect("sync runs")
    };
    let output = run(&["--account", "nosuch"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--account nosuch: no such account"));

    let output = run(&["--account", "shop"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let id = shop.id.get();
    assert_eq!(app.count(&format!("SELECT count(*) FROM followers WHERE account_id = {id}")).await, fans.len() as i64);
    assert_eq!(
        app.count("SELECT count(*) FROM followers WHERE account_id = 1").await,
        0,
        "the first account untouched"
    );
}

#[tokio::test]
async fn the_switcher_is_usable_at_390_px_in_chromium() {
    if crate::admin_browser::chromium_missing() {
        return;
    }
    let app = spawn_app().await;
    let _shop = app.add_account("shop", true).await;
    app.create_admin("root", PASSWORD, "admin").await;
    let base = &app.address;
    let (_driver, client) = crate::admin_browser::phone_logged_in(base, "root").await;
    client.goto(&format!("{base}/admin/tags")).await.expect("tags");

    let current = crate::admin_browser::text_of(&client, ".switcher .current").await;
    assert!(current.contains("主公众号"), "{current}");
    // Nothing is wider than the screen, and the switcher is on it.
    let overflow = crate::admin_browser::sideways_overflow(&client).await;
    assert!(overflow <= 0, "the page scrolls sideways by {overflow}");
    let right = client
        .execute("return document.getElementById('account-select').getBoundingClientRect().right;", vec![])
        .await
        .expect("script");
    assert!(right.as_f64().unwrap_or(f64::MAX) <= 390.0, "the select ends at {right}");
    crate::admin_browser::screenshot(&client, "switcher-390").await;

    // Choosing the other account switches (admin.js submits on change).
    crate::admin_browser::click(&client, "#account-select option[value=shop]").await;
    crate::admin_browser::wait_for_text(&client, ".switcher .current", "测试公众号 shop").await;
    assert!(client.current_url().await.expect("url").path().ends_with("/admin/tags"));
    crate::admin_browser::screenshot(&client, "switcher-390-switched").await;

    // The pages a deployment admin manages accounts and roles on fit the phone too.
    for path in ["/admin/accounts", "/admin/accounts/shop", "/admin/users"] {
        client.goto(&format!("{base}{path}")).await.expect("page");
        let overflow = crate::admin_browser::sideways_overflow(&client).await;
        crate::admin_browser::screenshot(&client, &format!("accounts-390{}", path.replace('/', "-"))).await;
        assert!(overflow <= 0, "{path} scrolls sideways by {overflow}");
    }
}

/// Another account's tag id answers 403 on the caller's own account, by API and by page, and
/// nothing changes.
#[tokio::test]
async fn a_guessed_tag_id_of_another_account_is_refused_by_api_and_page() {
    let app = spawn_app().await;
    let _shop = app.add_account("shop", false).await;
    user_with(&app, "olivia", json!({ "main": "admin" })).await;
    let (status, tag) =
        app.api_call_on("shop", Method::POST, "/tags", Some(json!({ "path": "店铺/会员", "wechat": false }))).await;
    assert_eq!(status, 201, "{tag}");
    let tag = tag["id"].as_i64().expect("id");
    for (method, path) in [(Method::GET, format!("/tags/{tag}")), (Method::DELETE, format!("/tags/{tag}"))] {
        let (status, body) = call_as(&app, "olivia", None, method.clone(), &path, None).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
    }
    let (status, body) =
        call_as(&app, "olivia", None, Method::PATCH, &format!("/tags/{tag}"), Some(json!({ "path": "店铺/改名" })))
            .await;
    assert_eq!(status, 403, "{body}");
    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;
    olivia.get("/admin/tags").await;
    let page = olivia.post(&format!("/admin/tags/{tag}/delete"), &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "no confirmation page for another account's tag: {}", page.body);
    let page = olivia.post(&format!("/admin/tags/{tag}/delete"), &[("confirmed", "1")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("不属于当前公众号"), "{}", page.body);
    assert_eq!(app.count(&format!("SELECT count(*) FROM tags WHERE id = {tag} AND path = '店铺/会员'")).await, 1);
}

/// Another account's segment and campaign ids answer 403 on the caller's own account.
#[tokio::test]
async fn guessed_segment_and_campaign_ids_of_another_account_are_refused_by_api_and_page() {
    let app = spawn_app().await;
    let _shop = app.add_account("shop", false).await;
    user_with(&app, "olivia", json!({ "main": "admin" })).await;
    let (status, segment) = app
        .api_call_on("shop", Method::POST, "/segments", Some(json!({ "name": "s", "expr": "orders(all) >= 1" })))
        .await;
    assert_eq!(status, 201, "{segment}");
    let segment = segment["id"].as_i64().expect("id");
    let (status, campaign) = app
        .api_call_on(
            "shop",
            Method::POST,
            "/campaigns",
            Some(json!({ "name": "c", "audience": { "all": true }, "message": { "type": "text", "content": "hi" } })),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let campaign = campaign["id"].as_i64().expect("id");
    for (method, path) in [
        (Method::GET, format!("/segments/{segment}")),
        (Method::GET, format!("/segments/{segment}/members")),
        (Method::GET, format!("/campaigns/{campaign}")),
        (Method::POST, format!("/campaigns/{campaign}/cancel")),
    ] {
        let (status, body) = call_as(&app, "olivia", None, method.clone(), &path, None).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
    }
    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;
    assert_eq!(olivia.get(&format!("/admin/campaigns/{campaign}")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM campaigns WHERE id = {campaign} AND status = 'draft'")).await,
        1
    );
}

#[tokio::test]
async fn a_form_shown_for_one_account_is_refused_after_a_switch_to_another() {
    let app = spawn_app().await;
    let shop = app.add_account("shop", false).await;
    app.create_admin("root", PASSWORD, "admin").await;
    let mut root = Browser::log_in(&app, "root", PASSWORD).await;
    root.get("/admin/tags").await; // the form, shown for the main account

    // Switched (as in another tab), then the main account's form is sent.
    let page = root.post("/admin/account", &[("account", "shop"), ("back", "/admin/tags")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = root.post("/admin/tags", &[("path", "切换/旧表单")]).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert!(page.body.contains("公众号已切换"), "{}", page.body);
    assert_eq!(app.count("SELECT count(*) FROM tags WHERE path = '切换/旧表单'").await, 0, "nothing changed");

    // The page shown again, for shop: its form is shop's.
    root.get("/admin/tags").await;
    let page = root.post("/admin/tags", &[("path", "切换/新表单")]).await;
    assert!(page.status.is_redirection() || page.status.is_success(), "{}", page.body);
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM tags WHERE path = '切换/新表单' AND account_id = {}", shop.id.get()))
            .await,
        1
    );
}

/// An anonymous caller learns nothing of the accounts, whatever bytes name them; hostile account
/// names at the callback are not found and store nothing.
#[tokio::test]
async fn hostile_account_names_in_the_header_and_the_callback_url_change_nothing() {
    let app = spawn_app().await;
    let shop = app.add_account("shop", false).await;
    let http = reqwest::Client::new();
    // No credentials: 401 before anything about the account is told.
    for name in ["shop", "nope", "../main", "%00"] {
        let response = http
            .get(format!("{}/api/v1/tags", app.address))
            .header("Tagcast-Account", name)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
    }
    // With credentials, a name no account has is 404, also with bytes outside ASCII.
    let response = http
        .get(format!("{}/api/v1/tags", app.address))
        .bearer_auth(crate::support::app::API_TOKEN)
        .header("Tagcast-Account", reqwest::header::HeaderValue::from_bytes(b"sh\xffop").expect("header"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let before = app.stored_events().await;
    let long = "a".repeat(5000);
    for path in ["/wechat/nope", "/wechat/..%2Fmain", "/wechat/%E5%BA%97", &format!("/wechat/{long}")] {
        let xml = crate::support::app::text_message("o_x", "你好", 42);
        let response = app.push_signed_for(&shop, path, &xml).await;
        assert!(
            response.status() == StatusCode::NOT_FOUND || response.status().is_client_error(),
            "{path}: {}",
            response.status()
        );
    }
    assert_eq!(app.stored_events().await, before, "nothing stored");
}

/// An anonymous caller, many at once, with no credentials or hostile ones, gets 401 (or 429 once
/// throttled) from every
/// call of the API (the quota reset and the draft list included) and changes nothing; WeChat is
/// never asked.
#[tokio::test]
async fn every_api_call_refuses_an_anonymous_or_hostile_caller_and_changes_nothing() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let headers: [Option<&str>; 4] = [
        None,
        Some("Basic \u{0}\u{ff}garbage"),
        Some("Bearer test-api-token-0123456789\u{7f}"),
        Some("Basic cm9vdDo="),
    ];
    let mut calls = Vec::new();
    for (method, path) in every_call() {
        for header in headers {
            let mut request = http
                .request(method.clone(), format!("{}/api/v1{path}", app.address))
                .header("Tagcast-Account", "main\r\nX: y".replace("\r\n", "%0d%0a"))
                .json(&json!({"name": "攻击]]><xml>", "confirm": true}));
            if let Some(value) = header {
                request = request.header(
                    "Authorization",
                    reqwest::header::HeaderValue::from_bytes(value.as_bytes())
                        .unwrap_or(reqwest::header::HeaderValue::from_static("Basic x")),
                );
            }
            let (method, path) = (method.clone(), path.clone());
            calls.push(async move { (request.send().await.expect("answer").status(), method, path) });
        }
    }
    for (status, method, path) in futures::future::join_all(calls).await {
        // A flood of wrong credentials is throttled (429) once the sign-in throttle trips.
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&status),
            "{method} {path}: {status}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM wechat_quota_clears").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM campaigns").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM audit_log").await, 0);
    assert_eq!(app.wechat.call_count("/cgi-bin/clear_quota"), 0);
}
