//! `spawn_app()`: the real `Application` on port 0 over a fresh database, and helpers that sign
//! requests the way WeChat does.

use std::collections::HashMap;

use actix_web::dev::ServerHandle;
use secrecy::ExposeSecret;
use tagcast::app::inbox::Dispatcher;
use tagcast::config::Settings;
use tagcast::jobs::JobCtx;
use tagcast::mock_wechat::{CallbackTarget, MockAccountType, MockConfig, MockWeChat};
use tagcast::startup::Application;
use tagcast::wechat::api::ApiClient;
use tagcast::wechat::crypto::MsgCrypt;
use tagcast::wechat::message::{Envelope, Inbound, Message};
use tagcast::wechat::signature;

use super::db::TestDb;

pub const TOKEN: &str = "testtoken";
pub const APPID: &str = "wxtestapp00000001";
pub const AES_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
pub const ACCOUNT: &str = "gh_testaccount";
pub const SECRET: &str = "testsecret";

pub struct TestApp {
    pub address: String,
    pub db_url: String,
    /// What the app was started with.
    pub settings: Settings,
    pub http: reqwest::Client,
    /// The stateful mock WeChat the app talks to; it pushes its events back to the app.
    pub wechat: MockWeChat,
    /// The app's own WeChat API client.
    pub api: ApiClient,
    /// What the app's background workers use.
    pub jobs: JobCtx,
    /// The application's clock (shared with it): `app.clock.advance(..)` moves its now.
    pub clock: tagcast::domain::clock::Clock,
    mock_server: ServerHandle,
    pub crypt: MsgCrypt,
    pub token: String,
    db_client: tokio_postgres::Client,
    server: ServerHandle,
    // Dropped last: the database goes once the server has been told to stop.
    _db: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command at once; nothing needs to wait for it.
        drop(self.server.stop(false));
        drop(self.mock_server.stop(false));
    }
}

pub fn base_vars(db_url: &str) -> HashMap<String, String> {
    [
        ("DATABASE_URL", db_url),
        ("TAGCAST_BIND", "127.0.0.1:0"),
        ("WECHAT_APPID", APPID),
        ("WECHAT_APPSECRET", SECRET),
        ("WECHAT_TOKEN", TOKEN),
        ("WECHAT_ENCODING_AES_KEY", AES_KEY),
        // Most tests push plaintext, which safe mode (the default with a key) refuses; plain mode
        // still takes encrypted pushes. Tests of the modes set their own.
        ("WECHAT_MESSAGE_MODE", "plain"),
        ("WECHAT_API_BASE", "http://127.0.0.1:9"),
        ("TAGCAST_API_TOKEN", API_TOKEN),
        ("TAGCAST_ROLE", "web"),
        ("TAGCAST_SECRET_KEY", super::accounts::SECRET_KEY),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub const API_TOKEN: &str = "test-api-token-0123456789";

/// The real application (tagging engine and all), with background workers off: tests run
/// pending work with [`TestApp::run_pending_jobs`].
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// [`spawn_app`] with variables changed by `customize`.
pub async fn spawn_app_with(customize: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    spawn(customize, None).await
}

/// [`spawn_app`] with pushes dispatched to `dispatcher` instead of the tagging engine.
pub async fn spawn_app_dispatching(
    customize: impl FnOnce(&mut HashMap<String, String>),
    dispatcher: Dispatcher,
) -> TestApp {
    spawn(customize, Some(dispatcher)).await
}

async fn spawn(customize: impl FnOnce(&mut HashMap<String, String>), dispatcher: Option<Dispatcher>) -> TestApp {
    tagcast::telemetry::init_for_tests();
    let db = TestDb::create().await;
    let mut vars = base_vars(&db.url());
    customize(&mut vars);
    let wechat = MockWeChat::new(MockConfig {
        appid: vars.get("WECHAT_APPID").cloned().unwrap_or_else(|| APPID.to_owned()),
        secret: SECRET.to_owned(),
        account_type: if vars.get("WECHAT_ACCOUNT_TYPE").is_some_and(|t| t == "subscription") {
            MockAccountType::Subscription
        } else {
            MockAccountType::Service
        },
        callback: None,
    });
    let mock = wechat.start(std::net::TcpListener::bind("127.0.0.1:0").expect("mock port")).expect("mock starts");
    vars.entry("WECHAT_API_BASE".to_owned()).and_modify(|v| *v = mock.url());
    let mut settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("test settings are valid");
    // WeChat's real pauses are seconds; the mock's faults need only milliseconds.
    settings.wechat.retry = tagcast::wechat::api::RetryPolicy {
        max_attempts: 4,
        base_delay: std::time::Duration::from_millis(10),
        max_delay: std::time::Duration::from_millis(100),
        max_elapsed: std::time::Duration::from_secs(3),
    };
    // A test that provokes client timeouts shortens them (not an environment variable of tagcast).
    if let Some(ms) = vars.get("TEST_WECHAT_TIMEOUT_MS").and_then(|ms| ms.parse().ok()) {
        settings.wechat.api_timeout = std::time::Duration::from_millis(ms);
    }
    let crypt = MsgCrypt::new(
        vars.get("WECHAT_ENCODING_AES_KEY").map_or(AES_KEY, String::as_str),
        vars.get("WECHAT_APPID").map_or(APPID, String::as_str),
    )
    .expect("test key");
    let token = vars.get("WECHAT_TOKEN").cloned().unwrap_or_else(|| TOKEN.to_owned());
    let app = match dispatcher {
        Some(dispatcher) => Application::build_with(settings.clone(), dispatcher).await,
        None => Application::build(settings.clone()).await,
    }
    .expect("application starts");
    let jobs = app.jobs().cloned().expect("credentials are configured");
    let address = format!("http://127.0.0.1:{}", app.port());
    wechat.set_callback(Some(CallbackTarget {
        url: format!("{address}/wechat"),
        token: token.clone(),
        encoding_aes_key: vars.get("WECHAT_ENCODING_AES_KEY").cloned(),
        account_id: ACCOUNT.to_owned(),
    }));
    let api = app.api().cloned().expect("credentials are configured");
    let server = app.handle();
    tokio::spawn(app.run_until_stopped());
    let (db_client, connection) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls).await.expect("test db");
    tokio::spawn(connection);
    let db_url = db.url();
    TestApp {
        address,
        db_url,
        clock: settings.clock.clone(),
        settings,
        http: reqwest::Client::new(),
        wechat,
        api,
        jobs,
        mock_server: mock.handle,
        crypt,
        token,
        db_client,
        server,
        _db: db,
    }
}

/// A second application on a test's database.
pub struct Instance {
    pub address: String,
    pub handle: ServerHandle,
}

impl Instance {
    /// Stops it at once, as a crash would for whatever was not committed.
    pub async fn kill(&self) {
        self.handle.stop(false).await;
    }
}

/// A nonce no other request of this test run uses.
pub fn fresh_nonce() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    format!("n{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl TestApp {
    /// The API client another tagcast process on the same database would have: its own pool,
    /// its own in-memory token cache.
    pub async fn api_of_another_instance(&self) -> ApiClient {
        let mut settings = self.settings.clone();
        settings.wechat.api_base = url::Url::parse(&self.wechat.base_url().expect("mock started")).expect("url");
        let pool = tagcast::store::connect_pool(&settings.database_url, 8).await.expect("pool");
        tagcast::startup::api_client(&settings, &pool).expect("credentials")
    }

    /// Stops this instance and starts a new `Application` (tagging engine, default dispatcher) on
    /// the same database and mock, as a deploy does: what was in memory is gone, what was stored
    /// stays. Pushes, API calls and jobs go to the new instance from then on.
    /// Stops the server (gracefully: the inbox drains) and closes its connections;
    /// [`Self::restart`] starts it again.
    pub async fn stop_server(&self) {
        self.server.stop(true).await;
        // The workers' pool is the server's own, and this handle keeps it open.
        self.jobs.pool.close();
    }

    pub async fn restart(&mut self) {
        self.server.stop(true).await;
        let app = Application::build(self.settings.clone()).await.expect("application restarts");
        self.address = format!("http://127.0.0.1:{}", app.port());
        self.wechat.set_callback(Some(CallbackTarget {
            url: format!("{}/wechat", self.address),
            token: self.token.clone(),
            encoding_aes_key: self.settings.wechat.encoding_aes_key.as_ref().map(|k| k.expose_secret().to_owned()),
            account_id: ACCOUNT.to_owned(),
        }));
        self.jobs = app.jobs().cloned().expect("credentials are configured");
        self.api = app.api().cloned().expect("credentials are configured");
        self.server = app.handle();
        tokio::spawn(app.run_until_stopped());
    }

    /// `signature`, `timestamp` and `nonce` as WeChat puts them on every request.
    pub fn signed_query(&self, timestamp: i64, nonce: &str) -> String {
        let ts = timestamp.to_string();
        let sig = signature::sign(&[&self.token, &ts, nonce]);
        format!("signature={sig}&timestamp={ts}&nonce={nonce}&openid=o_any")
    }

    pub async fn post(&self, query: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.post_to(&self.address, query, body).await
    }

    /// A push to another instance's callback.
    pub async fn post_to(&self, address: &str, query: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(format!("{address}/wechat?{query}"))
            .header("content-type", "text/xml")
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    /// A plaintext-mode push, signed now under a nonce of its own (a plaintext signature carries
    /// one push only).
    pub async fn push(&self, xml: &str) -> reqwest::Response {
        self.post(&self.signed_query(now(), &fresh_nonce()), xml.to_owned()).await
    }

    /// A push, and the text of the passive reply (empty for `success`).
    pub async fn push_for_reply(&self, xml: &str) -> String {
        let response = self.push(xml).await;
        assert_eq!(response.status(), 200);
        reply_content(&response.text().await.expect("body"))
    }

    /// The query of a safe-mode push of `encrypt`, both signatures valid.
    pub fn safe_query(&self, encrypt: &str, timestamp: i64, nonce: &str) -> String {
        let ts = timestamp.to_string();
        let msg_sig = signature::sign(&[&self.token, &ts, nonce, encrypt]);
        format!("{}&encrypt_type=aes&msg_signature={msg_sig}", self.signed_query(timestamp, nonce))
    }

    pub fn envelope(encrypt: &str) -> String {
        Envelope { to_user: Some(ACCOUNT.to_owned()), encrypt: Some(encrypt.to_owned()) }.to_xml()
    }

    /// A safe-mode push: encrypted with the app's key, both signatures valid.
    pub async fn push_safe(&self, xml: &str) -> reqwest::Response {
        let encrypt = self.crypt.encrypt(xml.as_bytes());
        self.post(&self.safe_query(&encrypt, now(), "5678"), Self::envelope(&encrypt)).await
    }

    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.http.get(format!("{}{path_and_query}", self.address)).send().await.expect("request sent")
    }

    /// Another `tagcast serve` on the same database and mock (a second process, or the same one
    /// restarted), with `TAGCAST_ROLE=role`. Stopped when the returned handle is.
    pub async fn another_instance(&self, role: &str) -> Instance {
        let mut settings = self.settings.clone();
        settings.role = role.parse().expect("role");
        settings.bind = "127.0.0.1:0".parse().expect("addr");
        settings.wechat.api_base = url::Url::parse(&self.wechat.base_url().expect("mock")).expect("url");
        let app = Application::build(settings).await.expect("second instance starts");
        let instance = Instance { address: format!("http://127.0.0.1:{}", app.port()), handle: app.handle() };
        tokio::spawn(app.run_until_stopped());
        instance
    }

    /// Runs every due outbox delivery and job until none is left.
    pub async fn run_pending_jobs(&self) {
        self.settle().await;
        tagcast::jobs::run_pending(&self.jobs).await.expect("background work runs");
    }

    /// A JSON API call with the bearer token; returns the status and the JSON body (or null).
    pub async fn api_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.settle().await;
        let request = self.http.request(method, format!("{}/api/v1{path}", self.address)).bearer_auth(API_TOKEN);
        send_json(request, body).await
    }

    /// A JSON API call as an admin user (HTTP Basic).
    pub async fn api_call_as(
        &self,
        (username, password): (&str, &str),
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.settle().await;
        let request =
            self.http.request(method, format!("{}/api/v1{path}", self.address)).basic_auth(username, Some(password));
        send_json(request, body).await
    }

    /// Creates an admin user through the API (as the bearer token's `api` admin).
    pub async fn create_admin(&self, username: &str, password: &str, role: &str) {
        let (status, body) = self
            .api_post("/admins", serde_json::json!({ "username": username, "password": password, "role": role }))
            .await;
        assert_eq!(status, 201, "{body}");
    }

    pub async fn api_post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.api_call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn api_get(&self, path: &str) -> (u16, serde_json::Value) {
        self.api_call(reqwest::Method::GET, path, None).await
    }

    pub async fn api_delete(&self, path: &str) -> (u16, serde_json::Value) {
        self.api_call(reqwest::Method::DELETE, path, None).await
    }

    /// Reads what HTTP cannot show.
    /// [`pass_the_clientmsgid_minute`] on this app's database and mock.
    pub async fn pass_the_clientmsgid_minute(&self) -> bool {
        pass_the_clientmsgid_minute(&self.db_client, &self.wechat).await
    }

    /// Waits until the event consumer has applied every stored event (tags, followers, outbox
    /// rows): what a push derives trails its answer by a moment, so every read waits for it.
    pub async fn settle(&self) {
        settle(&self.db_client).await;
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.settle().await;
        self.db_client.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
    }

    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Vec<tokio_postgres::Row> {
        self.settle().await;
        self.db_client.query(sql, params).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn stored_events(&self) -> i64 {
        self.count("SELECT count(*) FROM events").await
    }

    pub async fn stored_followers(&self) -> i64 {
        self.count("SELECT count(*) FROM followers").await
    }
}

/// Waits (at most 10 s, then fails the test) until no stored event waits for the consumer.
pub(crate) async fn settle(db: &tokio_postgres::Client) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: i64 = db
            .query_one(
                "SELECT coalesce((SELECT (SELECT count(*) FROM (SELECT 1 FROM events WHERE id > c.mark
                                                                 ORDER BY id LIMIT 1) newer)
                                       + (SELECT count(*) FROM unnest(c.holes) h (id) CROSS JOIN LATERAL
                                            (SELECT 1 FROM events e WHERE e.id = h.id OFFSET 0) found)
                                  FROM event_cursors c WHERE c.name = 'tagging'), 0)",
                &[],
            )
            .await
            .expect("consumer backlog")
            .get(0);
        if waiting == 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{waiting} events still wait for the consumer after 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Sends `request` with `body` as JSON; the status and the JSON answer (or null).
pub(crate) async fn send_json(
    mut request: reqwest::RequestBuilder,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

/// A push from `from` to the test account, as WeChat writes it.
pub fn push_from(from: &str, create_time: i64, body: Inbound) -> String {
    Message { to_user: ACCOUNT.to_owned(), from_user: from.to_owned(), create_time, body }.to_xml()
}

/// A text message as WeChat pushes it.
pub fn text_message(from: &str, content: &str, msg_id: u64) -> String {
    let body = Inbound::Text { content: content.to_owned(), msg_id: Some(msg_id), msg_data_id: None, idx: None };
    push_from(from, now(), body)
}

/// An event push (`subscribe`, `CLICK`, ...) at `create_time`. An event the tests do not name
/// here, or one without the key its kind needs, goes out as written (`MsgType`, `Event`, the key
/// if any), which the server reads as an unknown push.
pub fn event(from: &str, event: &str, key: Option<&str>, create_time: i64) -> String {
    let owned = key.map(str::to_owned);
    let body = match (event, owned) {
        ("subscribe", event_key) => {
            let scene = event_key.as_deref().and_then(|k| k.strip_prefix("qrscene_")).map(str::to_owned);
            Inbound::Subscribe { event_key, scene, ticket: None }
        }
        ("unsubscribe", None) => Inbound::Unsubscribe,
        ("CLICK", Some(key)) => Inbound::Click { key },
        ("VIEW", Some(url)) => Inbound::View { url, menu_id: None },
        ("SCAN", Some(scene)) => Inbound::Scan { scene, ticket: None },
        (event, key) => Inbound::Unknown {
            msg_type: "event".to_owned(),
            event: Some(event.to_owned()),
            fields: key.map(|key| ("EventKey".to_owned(), key)).into_iter().collect(),
        },
    };
    push_from(from, create_time, body)
}

/// The `Content` of a passive text reply, or "" for `success`.
pub fn reply_content(body: &str) -> String {
    if body == "success" {
        return String::new();
    }
    tagcast::wechat::message::flatten(body)
        .expect("reply is XML")
        .into_iter()
        .find(|(k, _)| k == "Content")
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// A location message at a place.
pub fn location_message(from: &str, lat: f64, lng: f64, msg_id: u64) -> String {
    let body = Inbound::Location {
        latitude: lat,
        longitude: lng,
        scale: Some(15),
        label: "somewhere".to_owned(),
        msg_id: Some(msg_id),
    };
    push_from(from, now(), body)
}

/// Lets a send that met 45066 go on: WeChat's minute passes on the mock's clock, and the jobs
/// waiting it out (after a resumed call met its own earlier attempt) become due. True when any
/// job was waiting. Tests call this instead of sleeping a minute.
pub async fn pass_the_clientmsgid_minute(db: &tokio_postgres::Client, wechat: &MockWeChat) -> bool {
    let waiting = db
        .execute(
            "UPDATE jobs SET run_at = now() WHERE state = 'pending' AND last_error LIKE '%45066%' AND run_at > now()",
            &[],
        )
        .await
        .expect("jobs waiting on 45066");
    if waiting > 0 {
        wechat.advance_time(std::time::Duration::from_secs(61));
    }
    waiting > 0
}
