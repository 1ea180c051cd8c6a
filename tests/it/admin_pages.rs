//! The admin pages over HTTP: sign-in, roles, CSRF, throttling, validation messages, escaping,
//! and the simulator through the real callback.

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::json;

use crate::support::app::{TestApp, spawn_app, spawn_app_with, text_message};

pub(crate) const PASSWORD: &str = "correct horse battery";

/// A browser without JavaScript: keeps the session cookie and reads the CSRF token from pages.
pub(crate) struct Browser {
    http: reqwest::Client,
    base: String,
    csrf: String,
}

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

fn csrf_of(body: &str) -> Option<String> {
    let start = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_owned())
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Self {
        let http = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().expect("client");
        Self { http, base: app.address.clone(), csrf: String::new() }
    }

    async fn read(&mut self, response: reqwest::Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        let location = headers.get("location").and_then(|l| l.to_str().ok()).map(str::to_owned);
        let body = response.text().await.expect("body");
        if let Some(token) = csrf_of(&body) {
            self.csrf = token;
        }
        Page { status, location, headers, body }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let response = self.http.get(format!("{}{path}", self.base)).send().await.expect("request sent");
        self.read(response).await
    }

    /// Posts a form with the CSRF token of the last page read.
    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let csrf = self.csrf.clone();
        fields.push(("csrf", &csrf));
        self.post_raw(path, &fields).await
    }

    pub(crate) async fn post_raw(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self.http.post(format!("{}{path}", self.base)).form(form).send().await.expect("request sent");
        self.read(response).await
    }

    pub(crate) async fn log_in(app: &TestApp, username: &str, password: &str) -> Self {
        let mut browser = Self::new(app);
        browser.get("/admin/login").await;
        let page = browser.post("/admin/login", &[("username", username), ("password", password)]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location.as_deref(), Some("/admin"));
        let board = browser.get("/admin").await;
        assert_eq!(board.status, StatusCode::OK, "{}", board.body);
        browser
    }
}

async fn app_with_users() -> TestApp {
    let app = spawn_app().await;
    app.create_admin("root", PASSWORD, "admin").await;
    app.create_admin("olivia", PASSWORD, "operator").await;
    app
}

const PAGES: &[&str] = &[
    "/admin",
    "/admin/tags",
    "/admin/rules",
    "/admin/quizzes",
    "/admin/segments",
    "/admin/campaigns",
    "/admin/campaigns/new",
    "/admin/campaigns/approvals",
    "/admin/followers",
    "/admin/audit",
    "/admin/playbook",
    "/admin/simulator",
    "/admin/users",
];

#[tokio::test]
async fn admin_pages_send_anonymous_visitors_to_the_login_page() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    for path in PAGES {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location.as_deref(), Some("/admin/login"), "{path}");
    }
    let page = browser.post("/admin/tags", &[("path", "兴趣/美妆")]).await;
    assert_eq!(page.location.as_deref(), Some("/admin/login"));
    assert_eq!(app.count("SELECT count(*) FROM tags").await, 0);
    let login = browser.get("/admin/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("登录"));
}

#[tokio::test]
async fn every_page_renders_for_an_admin_with_security_headers_and_a_strict_cookie() {
    let app = app_with_users().await;
    let mut browser = Browser::new(&app);
    browser.get("/admin/login").await;
    let signed_in = browser.post("/admin/login", &[("username", "root"), ("password", PASSWORD)]).await;
    let cookie = signed_in.headers.get("set-cookie").and_then(|c| c.to_str().ok()).unwrap_or_default().to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    for path in PAGES {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        let header = |name: &str| page.headers.get(name).and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
        let csp = header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert!(!header("referrer-policy").is_empty());
        assert!(!page.body.contains("<script>"), "{path}: no inline script");
    }
    let board = browser.get("/admin").await;
    assert!(board.body.contains("<svg"), "charts are inline SVG");
    for dimension in ["用户活跃度", "内容匹配度", "转化效率", "用户留存"] {
        assert!(board.body.contains(dimension), "{dimension}");
    }
    let css = browser.get("/admin/static/admin.css").await;
    assert_eq!(css.status, StatusCode::OK);
}

#[tokio::test]
async fn operators_cannot_manage_users_and_do_not_see_the_users_page() {
    let app = app_with_users().await;
    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    let board = operator.get("/admin").await;
    assert!(!board.body.contains("href=\"/admin/users\""));
    assert_eq!(operator.get("/admin/users").await.status, StatusCode::FORBIDDEN);
    let page =
        operator.post("/admin/users", &[("username", "mallory"), ("password", PASSWORD), ("role", "admin")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    for confirmed in [&[][..], &[("confirmed", "1")][..]] {
        let page = operator.post("/admin/users/root/disable", confirmed).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(app.count("SELECT count(*) FROM admins WHERE username = 'mallory' OR disabled_at IS NOT NULL").await, 0);
    // Operators still run tags.
    assert_eq!(operator.get("/admin/tags").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_admin_creates_and_disables_users_and_a_disabled_user_is_signed_out() {
    let app = app_with_users().await;
    let mut admin = Browser::log_in(&app, "root", PASSWORD).await;
    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    admin.get("/admin/users").await;
    let page = admin.post("/admin/users", &[("username", "bob"), ("password", "short"), ("role", "approver")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("密码至少 8 个字符"), "{}", page.body);
    let page = admin.post("/admin/users", &[("username", "bob"), ("password", PASSWORD), ("role", "approver")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let users = admin.get("/admin/users").await;
    assert!(users.body.contains("bob") && users.body.contains("审批人"));

    // The first post only asks: olivia keeps working until the admin confirms.
    let page = admin.post("/admin/users/olivia/disable", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("停用账号「olivia」？") && page.body.contains("确认停用"), "{}", page.body);
    assert_eq!(operator.get("/admin/tags").await.status, StatusCode::OK, "not yet disabled");
    assert_eq!(app.count("SELECT count(*) FROM admins WHERE disabled_at IS NOT NULL").await, 0);
    let page = admin.post("/admin/users/olivia/disable", &[("confirmed", "1")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = operator.get("/admin/tags").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "a disabled user's session ends at once");
    let entries = admin.get("/admin/audit?actor=root").await;
    assert!(entries.body.contains("<td>停用</td>") && entries.body.contains("「olivia」"), "{}", entries.body);
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_are_refused() {
    let app = app_with_users().await;
    let mut browser = Browser::log_in(&app, "root", PASSWORD).await;
    let page = browser.post_raw("/admin/tags", &[("path", "兴趣/美妆")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("表单已过期"));
    let page = browser.post_raw("/admin/tags", &[("path", "兴趣/美妆"), ("csrf", "0000")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // Logging out needs the token too.
    let page = browser.post_raw("/admin/logout", &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM tags").await, 0);

    browser.get("/admin/tags").await;
    let page = browser.post("/admin/tags", &[("path", "兴趣/美妆")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(app.count("SELECT count(*) FROM tags").await, 1);
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_username_for_a_while() {
    let app = app_with_users().await;
    let mut browser = Browser::new(&app);
    browser.get("/admin/login").await;
    for _ in 0..4 {
        let page = browser.post("/admin/login", &[("username", "root"), ("password", "wrong password")]).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(page.body.contains("用户名或密码不正确"));
    }
    let page = browser.post("/admin/login", &[("username", "root"), ("password", "wrong password")]).await;
    assert!(page.body.contains("失败次数过多"), "{}", page.body);
    let page = browser.post("/admin/login", &[("username", "root"), ("password", PASSWORD)]).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "locked even with the right password");
    assert!(page.body.contains("失败次数过多"));
    // Another user is not affected.
    Browser::log_in(&app, "olivia", PASSWORD).await;
}

#[tokio::test]
async fn logging_out_ends_the_session() {
    let app = app_with_users().await;
    let mut browser = Browser::log_in(&app, "root", PASSWORD).await;
    let page = browser.post("/admin/logout", &[]).await;
    assert_eq!(page.location.as_deref(), Some("/admin/login"));
    assert_eq!(browser.get("/admin").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn invalid_tags_rules_and_expressions_are_explained_next_to_the_form() {
    let app = app_with_users().await;
    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    browser.get("/admin/tags").await;
    let page = browser.post("/admin/tags", &[("path", "地区/北京/朝阳区/望京")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("有 4 级，微信标签最多 3 级"), "{}", page.body);
    assert!(page.body.contains("value=\"地区/北京/朝阳区/望京\""), "the form keeps what was typed");

    browser.get("/admin/rules").await;
    let page = browser.post("/admin/rules", &[("on", "click"), ("key", "SKIN")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("规则至少要做一件事"), "{}", page.body);

    let page = browser.get("/admin/segments?expr=%22%E8%82%A4%E8%B4%A8%2F%E6%B2%B9%E6%80%A7%22%20AND%20OR").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("第 16 列") || page.body.contains("列："), "{}", page.body);
    assert!(page.body.contains("<mark>"), "the offending place is marked");

    let page = browser.get("/admin/segments?expr=orders(30d)%20%3E%3D%201").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"segment-count\">0<"), "{}", page.body);
    let page = browser.post("/admin/segments", &[("name", "下过单"), ("expr", "orders(30d) >= 1")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = browser.get("/admin/segments").await;
    assert!(page.body.contains("下过单"));
    let live = browser.get("/admin/segments/count?expr=orders(30d)%20%3E%3D").await;
    assert!(live.body.contains("\"position\""), "{}", live.body);
}

#[tokio::test]
async fn hostile_tag_paths_and_follower_messages_are_shown_escaped() {
    let app = app_with_users().await;
    let (status, body) = app.api_post("/tags", json!({ "path": "<script>/x\"y", "wechat": false })).await;
    assert!(status == 201 || status == 400, "{body}");
    let (status, body) = app.api_post("/tags", json!({ "path": "<script>/x" })).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .api_post("/rules", json!({ "on": "keyword", "key": "<img src=x onerror=alert(1)>", "add": ["<script>/x"] }))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(app.push(&text_message("o_evil", "<script>alert(1)</script>", 1)).await.status(), 200);
    assert_eq!(app.push(&text_message("o_evil", "<img src=x onerror=alert(1)>", 2)).await.status(), 200);

    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    for path in ["/admin", "/admin/tags", "/admin/rules", "/admin/followers?q=o_", "/admin/followers/o_evil"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains("<script>"), "{path} shows <script> raw");
        assert!(!page.body.contains("<img src=x"), "{path} shows <img> raw");
    }
    let follower = browser.get("/admin/followers/o_evil").await;
    assert!(follower.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{}", follower.body);
    let tags = browser.get("/admin/tags").await;
    assert!(tags.body.contains("&#60;script&#62;"));
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn the_simulator_clicks_a_menu_through_the_signed_callback_and_shows_the_new_tag() {
    // Safe mode, where only encrypted pushes are taken: the simulator encrypts as WeChat does.
    let app =
        crate::support::app::spawn_app_with(|v| drop(v.insert("WECHAT_MESSAGE_MODE".into(), "safe".into()))).await;
    app.create_admin("root", PASSWORD, "admin").await;
    app.create_admin("olivia", PASSWORD, "operator").await;
    let mut browser = Browser::log_in(&app, "root", PASSWORD).await;
    browser.get("/admin/tags").await;
    assert_eq!(browser.post("/admin/tags", &[("path", "兴趣/新品")]).await.status, StatusCode::SEE_OTHER);
    browser.get("/admin/rules").await;
    let page = browser
        .post(
            "/admin/rules",
            &[("on", "click"), ("key", "NEW_ARRIVALS"), ("add", "兴趣/新品"), ("reply", "新品马上到")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);

    browser.get("/admin/simulator").await;
    let page = browser
        .post(
            "/admin/simulator",
            &[("openid", "test_alice"), ("action", "click"), ("key", "NEW_ARRIVALS"), ("content", "")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("新品马上到"), "{}", page.body);
    assert!(page.body.contains("新增：<span class=\"tag\">兴趣/新品</span>"), "{}", page.body);
    assert_eq!(app.count("SELECT count(*) FROM events WHERE openid = 'test_alice' AND kind = 'click'").await, 1);

    let page = browser
        .post("/admin/simulator", &[("openid", "test_alice"), ("action", "text"), ("content", "我的标签"), ("key", "")])
        .await;
    assert!(page.body.contains("兴趣/新品"), "{}", page.body);

    // On a real account only test followers can be simulated, and only by admins.
    let page = browser
        .post("/admin/simulator", &[("openid", "o_real_person"), ("action", "text"), ("content", "hi"), ("key", "")])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    assert_eq!(operator.get("/admin/simulator").await.status, StatusCode::FORBIDDEN);
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn a_follower_is_found_by_prefix_and_erased_after_typing_the_openid_again() {
    let app = app_with_users().await;
    for (i, openid) in ["o_erase_me", "o_keep_me"].iter().enumerate() {
        assert_eq!(app.push(&text_message(openid, "你好", 10 + i as u64)).await.status(), 200);
    }
    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = browser.get("/admin/followers?q=o_erase").await;
    assert!(page.body.contains("o_erase_me") && !page.body.contains("o_keep_me"));
    let page = browser.get("/admin/followers/o_erase_me").await;
    assert!(page.body.contains("你好"));
    let page = browser.post("/admin/followers/o_erase_me/erase", &[("confirm_openid", "o_erase")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(app.count("SELECT count(*) FROM followers WHERE openid = 'o_erase_me'").await, 1);
    browser.get("/admin/followers/o_erase_me").await;
    let page = browser.post("/admin/followers/o_erase_me/erase", &[("confirm_openid", "o_erase_me")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(app.count("SELECT count(*) FROM followers WHERE openid = 'o_erase_me'").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM events WHERE openid = 'o_erase_me'").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM followers WHERE openid = 'o_keep_me'").await, 1);
    assert_eq!(browser.get("/admin/followers/o_erase_me").await.status, StatusCode::NOT_FOUND);
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn the_exported_playbook_imports_again_unchanged_and_a_broken_one_names_its_line() {
    let app = app_with_users().await;
    let mut browser = Browser::log_in(&app, "root", PASSWORD).await;
    browser.get("/admin/tags").await;
    browser.post("/admin/tags", &[("path", "肤质/油性"), ("sensitive", "on")]).await;
    browser.get("/admin/rules").await;
    browser.post("/admin/rules", &[("on", "keyword"), ("key", "油皮"), ("add", "肤质/油性")]).await;
    let export = browser.get("/admin/playbook/export").await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(export.body.contains("肤质/油性") && export.body.contains("[[rule]]"), "{}", export.body);

    browser.get("/admin/playbook").await;
    let page = browser.post("/admin/playbook/import", &[("source", &export.body)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("没有变化"), "{}", page.body);

    let page = browser.post("/admin/playbook/import", &[("source", "[[rule]]\non = \"click\"\n")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("第 1 行") || page.body.contains("第 2 行"), "{}", page.body);
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn a_quiz_is_previewed_without_saving_then_saved() {
    let app = app_with_users().await;
    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = browser.get("/admin/quizzes?new=1").await;
    let source = "id = \"hair\"\n[[question]]\ntext = \"发质？\"\noptions = [ { label = \"A\", text = \"油\", score = { oily = 1 } }, { label = \"B\", text = \"干\" } ]\n[[result]]\ntag = \"发质/油性\"\nscore = \"oily\"\nmin = 1\n";
    assert!(page.body.contains("[[question]]"), "a new quiz starts from an empty skeleton");
    let page = browser.post("/admin/quizzes", &[("format", "toml"), ("action", "preview"), ("source", source)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("（1/1）发质？"), "{}", page.body);
    assert_eq!(app.count("SELECT count(*) FROM quizzes").await, 0);
    let page = browser.post("/admin/quizzes", &[("format", "toml"), ("action", "save"), ("source", source)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(app.count("SELECT count(*) FROM quizzes").await, 1);
    let page =
        browser.post("/admin/quizzes", &[("format", "json"), ("action", "save"), ("source", "{\"id\": 1}")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("JSON 无法解析"));
    app.run_pending_jobs().await;
}

// ---------------------------------------------------------------- 群发

/// Users of every role, mass APIs paced far above WeChat's 60/min, and `n` synced followers of
/// whom the first three carry the sensitive tag 敏感/价格敏感.
pub(crate) async fn app_for_campaigns() -> (TestApp, Vec<String>) {
    let app = spawn_app_with(|vars| {
        vars.insert(
            "TAGCAST_WECHAT_RATE_LIMITS".into(),
            "default=2000,/cgi-bin/message/mass/send=200,/cgi-bin/message/mass/sendall=200,\
             /cgi-bin/message/mass/preview=200"
                .into(),
        );
    })
    .await;
    app.create_admin("root", PASSWORD, "admin").await;
    app.create_admin("olivia", PASSWORD, "operator").await;
    app.create_admin("amy", PASSWORD, "approver").await;
    let fans = app.wechat.seed_followers(5);
    tagcast::app::sync::run_sync(&app.jobs.pool, &app.api, |_| {}).await.expect("sync");
    let (status, body) = app.api_post("/tags", json!({ "path": "敏感/价格敏感", "sensitive": true })).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        app.api_post("/rules", json!({ "on": "keyword", "key": "便宜", "add": ["敏感/价格敏感"] })).await;
    assert_eq!(status, 201, "{body}");
    for (i, openid) in fans[..3].iter().enumerate() {
        assert_eq!(app.push(&text_message(openid, "便宜", 900 + i as u64)).await.status(), 200);
    }
    app.run_pending_jobs().await;
    (app, fans)
}

/// A text campaign to `tag` composed on the page; its id, read from where the form led.
pub(crate) async fn compose(browser: &mut Browser, name: &str, tag: &str, content: &str) -> i64 {
    browser.get("/admin/campaigns/new").await;
    let page = browser
        .post(
            "/admin/campaigns",
            &[("name", name), ("audience", "tag"), ("tag", tag), ("kind", "text"), ("content", content)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let location = page.location.expect("led to the campaign");
    location.trim_start_matches("/admin/campaigns/").parse().unwrap_or_else(|_| panic!("{location}"))
}

pub(crate) async fn status_of(app: &TestApp, id: i64) -> String {
    app.query("SELECT status FROM campaigns WHERE id = $1", &[&id]).await[0].get(0)
}

#[tokio::test]
async fn the_compose_form_explains_what_is_wrong_and_keeps_what_was_typed() {
    let (app, _) = app_for_campaigns().await;
    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = browser.get("/admin/campaigns/new").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("敏感/价格敏感（敏感，需审批）"), "sensitive tags are marked: {}", page.body);

    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("name", "周末"), ("audience", "tag"), ("tag", "敏感/价格敏感"), ("kind", "text"), ("content", "  ")],
            "请填写群发内容",
        ),
        (
            &[("name", "周末"), ("audience", "all"), ("kind", "text"), ("content", "全员好")],
            "请勾选「确认发给全部粉丝」",
        ),
        (
            &[("name", "周末"), ("audience", "tag"), ("tag", "不存在/标签"), ("kind", "text"), ("content", "x")],
            "标签「不存在/标签」不存在",
        ),
        (
            &[("name", ""), ("audience", "tag"), ("tag", "敏感/价格敏感"), ("kind", "text"), ("content", "x")],
            "群发名称需 1–100 个字",
        ),
        (
            &[
                ("name", "周末"),
                ("audience", "tag"),
                ("tag", "敏感/价格敏感"),
                ("kind", "text"),
                ("content", "x"),
                ("send_at", "2001-01-01T09:00"),
            ],
            "定时发送时间已过",
        ),
        (
            &[
                ("name", "周末"),
                ("audience", "tag"),
                ("tag", "敏感/价格敏感"),
                ("kind", "text"),
                ("content", "x"),
                ("variant_name_1", "B 方案"),
            ],
            "对比方案 1「B 方案」需要内容",
        ),
        (
            &[("name", "周末"), ("audience", "segment"), ("segment", ""), ("kind", "text"), ("content", "x")],
            "请选择人群",
        ),
    ];
    for (form, message) in cases {
        let page = browser.post("/admin/campaigns", form).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{message}: {}", page.body);
        assert!(page.body.contains(message), "{message}: {}", page.body);
    }
    let page = browser
        .post("/admin/campaigns", &[("name", "周末特卖"), ("audience", "all"), ("kind", "text"), ("content", "留着我")])
        .await;
    assert!(page.body.contains("value=\"周末特卖\"") && page.body.contains(">留着我</textarea>"), "{}", page.body);
    assert_eq!(app.count("SELECT count(*) FROM campaigns").await, 0);

    let page = browser
        .post(
            "/admin/campaigns",
            &[
                ("name", "周末特卖"),
                ("audience", "all"),
                ("confirm_all", "on"),
                ("kind", "text"),
                ("content", "A 文案"),
                ("variant_name_1", "B 文案"),
                ("variant_body_1", "B 的内容"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = browser.get(page.location.as_deref().expect("to the campaign")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("已创建群发「周末特卖」") && page.body.contains("B 的内容"), "{}", page.body);
    assert!(page.body.contains("全部粉丝") && page.body.contains("草稿"));
    let list = browser.get("/admin/campaigns").await;
    assert!(list.body.contains("周末特卖") && list.body.contains("草稿"), "{}", list.body);
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn a_sensitive_campaign_waits_in_the_queue_until_another_approver_approves_then_shows_its_counts() {
    let (app, _) = app_for_campaigns().await;
    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    let id = compose(&mut operator, "价格敏感关怀", "敏感/价格敏感", "专属优惠").await;
    let page = operator.get(&format!("/admin/campaigns/{id}")).await;
    assert!(page.body.contains("提交审批"), "the send button says what it will do: {}", page.body);
    let page = operator.post(&format!("/admin/campaigns/{id}/send"), &[("shown_status", "draft")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = operator.get(&format!("/admin/campaigns/{id}")).await;
    assert!(page.body.contains("需由创建人以外的审批人或管理员审批"), "{}", page.body);
    assert_eq!(status_of(&app, id).await, "pending_approval");
    assert!(app.wechat.mass_jobs().is_empty());

    // The operator sees the queue but cannot approve, not even by posting the form.
    let queue = operator.get("/admin/campaigns/approvals").await;
    assert!(queue.body.contains("价格敏感关怀") && !queue.body.contains("审批通过</button>"), "{}", queue.body);
    let page = operator.post(&format!("/admin/campaigns/{id}/approve"), &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(status_of(&app, id).await, "pending_approval");

    // An approver cannot approve their own campaign.
    let mut approver = Browser::log_in(&app, "amy", PASSWORD).await;
    let own = compose(&mut approver, "自己的", "敏感/价格敏感", "x").await;
    approver.post(&format!("/admin/campaigns/{own}/send"), &[("shown_status", "draft")]).await;
    let queue = approver.get("/admin/campaigns/approvals").await;
    assert!(queue.body.contains("自己创建的，需他人审批"), "{}", queue.body);
    approver.post(&format!("/admin/campaigns/{own}/approve"), &[("back", "queue")]).await;
    let queue = approver.get("/admin/campaigns/approvals").await;
    assert!(queue.body.contains("不能审批自己创建的群发"), "{}", queue.body);
    assert_eq!(status_of(&app, own).await, "pending_approval");

    let page = approver.post(&format!("/admin/campaigns/{id}/approve"), &[("back", "queue")]).await;
    assert_eq!(page.location.as_deref(), Some("/admin/campaigns/approvals"));
    assert_eq!(status_of(&app, id).await, "approved");
    operator.get(&format!("/admin/campaigns/{id}")).await;
    let page = operator.post(&format!("/admin/campaigns/{id}/send"), &[("shown_status", "approved")]).await;
    assert!(page.body.contains("将发送给 3 位粉丝"), "发送 asks first: {}", page.body);
    let page = operator
        .post(&format!("/admin/campaigns/{id}/send"), &[("shown_status", "approved"), ("confirmed", "1")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    // A second press of the same button sends nothing more.
    operator.get(&format!("/admin/campaigns/{id}")).await;
    operator.post(&format!("/admin/campaigns/{id}/send"), &[("shown_status", "approved")]).await;
    let page = operator.get(&format!("/admin/campaigns/{id}")).await;
    assert!(page.body.contains("没有重复发送"), "{}", page.body);

    app.run_pending_jobs().await;
    app.wechat.wait_for_callbacks().await;
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.mass_jobs().len(), 1);
    let page = operator.get(&format!("/admin/campaigns/{id}")).await;
    assert!(page.body.contains("id=\"campaign-status\">已发送<"), "{}", page.body);
    assert!(page.body.contains("id=\"count-sent\">3<"), "{}", page.body);
    assert!(page.body.contains("<svg"), "the counts are charted: {}", page.body);
    let list = operator.get("/admin/campaigns").await;
    assert!(list.body.contains("已发送"), "{}", list.body);
    let approvals: i64 = app.count("SELECT count(*) FROM audit_log WHERE action = 'approve' AND actor = 'amy'").await;
    assert_eq!(approvals, 1);
}

#[tokio::test]
async fn campaign_forms_without_the_csrf_token_change_nothing() {
    let (app, _) = app_for_campaigns().await;
    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = operator
        .post_raw("/admin/campaigns", &[("name", "x"), ("audience", "tag"), ("tag", "敏感/价格敏感"), ("content", "x")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM campaigns").await, 0);
    let id = compose(&mut operator, "正常", "敏感/价格敏感", "x").await;
    let mut approver = Browser::log_in(&app, "amy", PASSWORD).await;
    for action in ["send", "approve", "cancel", "preview"] {
        let page = approver
            .post_raw(
                &format!("/admin/campaigns/{id}/{action}"),
                &[("csrf", "forged"), ("confirm", "on"), ("openids", "o")],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{action}");
    }
    assert_eq!(status_of(&app, id).await, "draft");
    assert!(app.wechat.previews().is_empty());
    assert_eq!(app.count("SELECT count(*) FROM campaign_approvals").await, 0);
}

#[tokio::test]
async fn a_preview_reaches_the_test_followers_and_too_many_are_refused_with_a_reason() {
    let (app, fans) = app_for_campaigns().await;
    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    let id = compose(&mut operator, "预览", "敏感/价格敏感", "看看效果").await;
    // Before approval a preview may not reach the sensitive tag's members…
    let page = operator.post(&format!("/admin/campaigns/{id}/preview"), &[("openids", &fans[0])]).await;
    assert!(page.body.contains("审批通过之前，只能预览给不带这些标签的粉丝"), "{}", page.body);
    assert!(app.wechat.previews().is_empty());
    // …but reaches a test follower's phone.
    app.wechat.add_follower("test_phone");
    let page = operator.post(&format!("/admin/campaigns/{id}/preview"), &[("openids", "test_phone")]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("已发送预览"), "{}", page.body);
    assert_eq!(app.wechat.previews().len(), 1);
    let many = (0..11).map(|i| format!("o{i}")).collect::<Vec<_>>().join(" ");
    let page = operator.post(&format!("/admin/campaigns/{id}/preview"), &[("openids", &many)]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("请勾选或填写 1–10 位测试粉丝"), "{}", page.body);
    let page = operator.post(&format!("/admin/campaigns/{id}/preview"), &[("openids", "o_not_a_follower")]).await;
    assert!(page.body.contains("失败："), "WeChat's refusal is shown per follower: {}", page.body);
    assert_eq!(app.wechat.previews().len(), 1);
    assert_eq!(status_of(&app, id).await, "draft");
}

#[tokio::test]
async fn hostile_campaign_names_and_contents_are_shown_escaped() {
    let (app, _) = app_for_campaigns().await;
    let mut operator = Browser::log_in(&app, "olivia", PASSWORD).await;
    let id = compose(&mut operator, "<script>alert(1)</script>", "敏感/价格敏感", "<img src=x onerror=alert(2)>").await;
    operator.post(&format!("/admin/campaigns/{id}/send"), &[("shown_status", "draft")]).await;
    let mut approver = Browser::log_in(&app, "amy", PASSWORD).await;
    for path in
        [format!("/admin/campaigns/{id}"), "/admin/campaigns".to_owned(), "/admin/campaigns/approvals".to_owned()]
    {
        let page = approver.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains("<script>alert"), "{path} shows <script> raw");
        assert!(!page.body.contains("<img src=x"), "{path} shows <img> raw");
        assert!(page.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{path}: {}", page.body);
    }
    let page = approver.get(&format!("/admin/campaigns/{id}")).await;
    assert!(page.body.contains("&#60;img src=x onerror=alert(2)&#62;"), "{}", page.body);
}

#[tokio::test]
async fn a_tag_is_renamed_on_the_tag_page_and_near_duplicates_are_suggested_for_merging() {
    let app = app_with_users().await;
    let mut browser = Browser::log_in(&app, "olivia", PASSWORD).await;
    browser.get("/admin/rules").await;
    let page =
        browser.post("/admin/rules", &[("on", "keyword"), ("key", "广州"), ("add", "地区/广州，城市/广州")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    browser.get("/admin/tags").await;
    assert_eq!(browser.post("/admin/tags", &[("path", "兴趣/美妆")]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(app.push(&text_message("o_gz", "广州", 1)).await.status(), 200);
    app.settle().await;

    let page = browser.get("/admin/tags").await;
    assert!(page.body.contains("同名标签在不同大类下"), "{}", page.body);
    assert!(!page.body.contains("成员高度重叠"), "overlap is computed only when asked for");
    let page = browser.get("/admin/tags?overlap=1").await;
    assert!(page.body.contains("成员高度重叠：共同成员 1 人"), "{}", page.body);

    let id: i64 = app.query("SELECT id FROM tags WHERE path = '兴趣/美妆'", &[]).await[0].get(0);
    let page = browser.post_raw(&format!("/admin/tags/{id}/rename"), &[("path", "兴趣/彩妆")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "no CSRF token, no rename");
    browser.get("/admin/tags").await;
    let page = browser.post(&format!("/admin/tags/{id}/rename"), &[("path", "兴趣/彩妆")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = browser.get("/admin/tags").await;
    assert!(page.body.contains("已将「兴趣/美妆」改名为「兴趣/彩妆」"), "{}", page.body);
    let page = browser.post(&format!("/admin/tags/{id}/rename"), &[("path", "城市/广州")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = browser.get("/admin/tags").await;
    assert!(page.body.contains("未改名：标签「城市/广州」已存在"), "{}", page.body);
    browser.post(&format!("/admin/tags/{id}/rename"), &[("path", "a/b/c/d")]).await;
    let page = browser.get("/admin/tags").await;
    assert!(page.body.contains("未改名：「a/b/c/d」有 4 级"), "{}", page.body);
    assert_eq!(app.count("SELECT count(*) FROM tags WHERE path = '兴趣/彩妆'").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM tags WHERE path = '兴趣/美妆'").await, 0);
    app.run_pending_jobs().await;
}

/// A follower who left keeps their tags; the board's 标签覆盖率 counts only those who still
/// follow, so it never passes 100 %.
#[tokio::test]
async fn tag_coverage_counts_only_followers_who_still_follow() {
    let app = app_with_users().await;
    let (status, body) = app.api_post("/rules", json!({ "on": "keyword", "key": "油皮", "add": ["肤质/油性"] })).await;
    assert_eq!(status, 201, "{body}");
    let t = crate::support::app::now();
    for (i, fan) in ["o_cov_1", "o_cov_2", "o_cov_3"].iter().enumerate() {
        assert_eq!(app.push(&crate::support::app::event(fan, "subscribe", None, t - 100)).await.status(), 200);
        assert_eq!(app.push(&text_message(fan, "油皮", 70 + i as u64)).await.status(), 200);
    }
    assert_eq!(app.push(&crate::support::app::event("o_cov_3", "unsubscribe", None, t - 10)).await.status(), 200);
    app.settle().await;
    assert_eq!(app.count("SELECT count(*) FROM follower_tags WHERE openid = 'o_cov_3'").await, 1, "tags stay");
    let mut browser = Browser::log_in(&app, "root", PASSWORD).await;
    let board = browser.get("/admin?refresh=1").await;
    assert!(board.body.contains("2 位已关注粉丝有标签"), "{}", board.body);
    assert!(board.body.contains("<div class=\"num\">100.0%</div><div>标签覆盖率</div>"), "{}", board.body);
}
