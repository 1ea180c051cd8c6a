//! The mock's quotas, frequency limits, customer-service window and content limits, over HTTP
//! (wechat-api.md §6.2, §9.2, §10, §14).

use std::time::Duration;

use serde_json::{Value, json};
use tagcast::mock_wechat::{Interaction, MockWeChat, RunningMock};

const APPID: &str = "wxquota0000000001";
const SECRET: &str = "quota-secret";

struct Harness {
    mock: MockWeChat,
    running: RunningMock,
    http: reqwest::Client,
    token: String,
}

impl Harness {
    async fn start() -> Self {
        let (mock, running) = crate::support::mock_api::start_service_mock(APPID, SECRET);
        let mut h = Self { mock, running, http: reqwest::Client::new(), token: String::new() };
        h.renew_token().await;
        h
    }

    /// A token valid now (advancing the clock by hours expires the last one).
    async fn renew_token(&mut self) {
        let body = json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET});
        let answer = self.post("/cgi-bin/stable_token", &body).await;
        self.token = answer["access_token"].as_str().expect("a token").to_owned();
    }

    async fn post(&self, path_and_query: &str, body: &Value) -> Value {
        let url = format!("{}{path_and_query}", self.running.url());
        self.http.post(url).json(body).send().await.unwrap().json().await.unwrap()
    }

    async fn get(&self, path_and_query: &str) -> Value {
        let url = format!("{}{path_and_query}", self.running.url());
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// The errcode of an API call with the harness's token.
    async fn call(&self, path: &str, body: Value) -> i64 {
        errcode(&self.post(&format!("{path}?access_token={}", self.token), &body).await)
    }

    /// Moves the mock's clock to `second` past the start of its next minute.
    fn to_next_minute(&self, second: i64) {
        let now = self.mock.now();
        let wait = 60 - now.rem_euclid(60) + second;
        self.mock.advance_time(Duration::from_secs(wait as u64));
    }

    /// Seconds from the mock's now to the next Beijing midnight.
    fn until_beijing_midnight(&self) -> u64 {
        let now = self.mock.now();
        (86_400 - (now + 8 * 3600).rem_euclid(86_400)) as u64
    }
}

fn errcode(answer: &Value) -> i64 {
    answer.get("errcode").and_then(Value::as_i64).unwrap_or(0)
}

fn text_to(touser: &str, content: &str) -> Value {
    json!({"touser": touser, "msgtype": "text", "text": {"content": content}})
}

#[tokio::test]
async fn a_daily_quota_set_through_the_control_surface_runs_out_and_resets_at_beijing_midnight() {
    let mut h = Harness::start().await;
    // Far enough from midnight that the two calls and the refusal share a Beijing day.
    if h.until_beijing_midnight() < 120 {
        h.mock.advance_time(Duration::from_secs(300));
    }
    let set = h.post("/mock/quota", &json!({"path": "/cgi-bin/message/mass/speed/get", "daily_limit": 2})).await;
    assert_eq!(set["daily_limit"], 2);
    assert_eq!(h.call("/cgi-bin/message/mass/speed/get", json!({})).await, 0);
    assert_eq!(h.call("/cgi-bin/message/mass/speed/get", json!({})).await, 0);
    assert_eq!(h.call("/cgi-bin/message/mass/speed/get", json!({})).await, 45009);

    let quota = h
        .post(
            &format!("/cgi-bin/openapi/quota/get?access_token={}", h.token),
            &json!({"cgi_path": "/cgi-bin/message/mass/speed/get"}),
        )
        .await;
    assert_eq!(quota["quota"], json!({"daily_limit": 2, "used": 2, "remain": 0}), "{quota}");
    let usage = h.get("/mock/quota").await;
    let tags_get =
        usage["paths"].as_array().unwrap().iter().find(|p| p["path"] == "/cgi-bin/message/mass/speed/get").cloned();
    assert_eq!(tags_get.unwrap()["used"], 2, "{usage}");

    // A minute before Beijing midnight it is still the same day; at midnight the count starts over.
    h.mock.advance_time(Duration::from_secs(h.until_beijing_midnight() - 60));
    h.renew_token().await;
    assert_eq!(h.call("/cgi-bin/message/mass/speed/get", json!({})).await, 45009);
    h.mock.advance_time(Duration::from_secs(60));
    assert_eq!(h.call("/cgi-bin/message/mass/speed/get", json!({})).await, 0);
    assert_eq!(h.mock.quota_usage("/cgi-bin/message/mass/speed/get").used, 1);
}

#[tokio::test]
async fn the_documented_defaults_hold_and_quota_get_refuses_unknown_paths() {
    let h = Harness::start().await;
    let path = format!("/cgi-bin/openapi/quota/get?access_token={}", h.token);
    let sendall = h.post(&path, &json!({"cgi_path": "/cgi-bin/message/mass/sendall"})).await;
    assert_eq!(sendall["quota"]["daily_limit"], 100);
    let preview = h.post(&path, &json!({"cgi_path": "/cgi-bin/message/mass/preview"})).await;
    assert_eq!(preview["quota"]["daily_limit"], 100);
    let token = h.post(&path, &json!({"cgi_path": "/cgi-bin/token"})).await;
    assert_eq!(token["quota"]["daily_limit"], 2000);
    assert_eq!(errcode(&h.post(&path, &json!({"cgi_path": "/cgi-bin/nope"})).await), 76021);
    assert_eq!(errcode(&h.post(&path, &json!({})).await), 76021);
    assert_eq!(errcode(&h.post("/cgi-bin/openapi/quota/get", &json!({"cgi_path": "/cgi-bin/token"})).await), 41001);
}

#[tokio::test]
async fn the_sixty_first_call_of_a_mass_api_in_a_minute_is_45011() {
    let h = Harness::start().await;
    h.to_next_minute(1);
    // Refused calls count too: an unknown msg_id is refused (40035) but charged.
    for n in 0..60 {
        assert_eq!(h.call("/cgi-bin/message/mass/get", json!({"msg_id": 1})).await, 40035, "call {n}");
    }
    assert_eq!(h.call("/cgi-bin/message/mass/get", json!({"msg_id": 1})).await, 45011);
    // Another mass API has its own 60; the next minute starts over.
    assert_eq!(h.call("/cgi-bin/message/mass/speed/get", json!({})).await, 0);
    h.to_next_minute(0);
    assert_eq!(h.call("/cgi-bin/message/mass/get", json!({"msg_id": 1})).await, 40035);
}

#[tokio::test]
async fn forced_token_rotations_must_be_thirty_seconds_apart() {
    let h = Harness::start().await;
    let force = json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET, "force_refresh": true});
    let first = h.post("/cgi-bin/stable_token", &force).await;
    assert!(first["access_token"].is_string(), "{first}");
    assert_eq!(errcode(&h.post("/cgi-bin/stable_token", &force).await), 45011);
    h.mock.advance_time(Duration::from_secs(30));
    let second = h.post("/cgi-bin/stable_token", &force).await;
    assert_ne!(second["access_token"], first["access_token"], "{second}");
}

#[tokio::test]
async fn clear_quota_resets_the_day_ten_times_a_month_then_answers_48006() {
    let h = Harness::start().await;
    h.mock.set_daily_quota("/cgi-bin/message/mass/speed/get", 1);
    assert_eq!(h.call("/cgi-bin/message/mass/speed/get", json!({})).await, 0);
    assert_eq!(h.call("/cgi-bin/message/mass/speed/get", json!({})).await, 45009);
    assert_eq!(h.call("/cgi-bin/clear_quota", json!({"appid": "wxsomeoneelse"})).await, 40013);
    assert_eq!(h.call("/cgi-bin/clear_quota", json!({"appid": APPID})).await, 0);
    assert_eq!(h.call("/cgi-bin/message/mass/speed/get", json!({})).await, 0, "the day's count was reset");

    let v2 = |secret: &str| json!({"appid": APPID, "appsecret": secret});
    assert_eq!(errcode(&h.post("/cgi-bin/clear_quota/v2", &v2("wrong")).await), 40125);
    for _ in 1..10 {
        assert_eq!(errcode(&h.post("/cgi-bin/clear_quota/v2", &v2(SECRET)).await), 0);
    }
    assert_eq!(h.mock.quota_clears_this_month(), 10);
    assert_eq!(h.call("/cgi-bin/clear_quota", json!({"appid": APPID})).await, 48006);
    assert_eq!(errcode(&h.post("/cgi-bin/clear_quota/v2", &v2(SECRET)).await), 48006);
    assert_eq!(h.get("/mock/quota").await["clears_this_month"], 10);
}

#[tokio::test]
async fn custom_messages_need_an_open_window_and_stop_at_its_quota() {
    let mut h = Harness::start().await;
    let fans = h.mock.seed_followers(2);
    // Seeded followers followed long ago: no window.
    assert_eq!(h.call("/cgi-bin/message/custom/send", text_to(&fans[0], "hi")).await, 45015);

    let opened = h.post("/mock/interaction", &json!({"openid": fans[0], "kind": "message"})).await;
    assert_eq!(opened["sends_left"], 5);
    for n in 0..5 {
        assert_eq!(h.call("/cgi-bin/message/custom/send", text_to(&fans[0], "hi")).await, 0, "send {n}");
    }
    assert_eq!(h.call("/cgi-bin/message/custom/send", text_to(&fans[0], "hi")).await, 45047);
    assert_eq!(h.mock.custom_messages().len(), 5);

    // A click gives 3 sends for one minute.
    h.mock.open_interaction(&fans[1], Interaction::Click);
    for _ in 0..3 {
        assert_eq!(h.call("/cgi-bin/message/custom/send", text_to(&fans[1], "hi")).await, 0);
    }
    assert_eq!(h.call("/cgi-bin/message/custom/send", text_to(&fans[1], "hi")).await, 45047);
    h.mock.open_interaction(&fans[1], Interaction::Click);
    h.mock.advance_time(Duration::from_secs(61));
    assert_eq!(h.call("/cgi-bin/message/custom/send", text_to(&fans[1], "hi")).await, 45015);

    // A message's window lasts 48 h; following opens a one-minute window.
    h.mock.open_interaction(&fans[1], Interaction::Message);
    h.mock.advance_time(Duration::from_secs(47 * 3600));
    h.renew_token().await;
    assert_eq!(h.call("/cgi-bin/message/custom/send", text_to(&fans[1], "hi")).await, 0);
    h.mock.advance_time(Duration::from_secs(3600));
    h.renew_token().await;
    assert_eq!(h.call("/cgi-bin/message/custom/send", text_to(&fans[1], "hi")).await, 45015);
    h.mock.add_follower("oNewFollower");
    assert_eq!(h.mock.custom_sends_left("oNewFollower"), 3);
    assert_eq!(h.call("/cgi-bin/message/custom/send", text_to("oNewFollower", "欢迎")).await, 0);
}

#[tokio::test]
async fn over_long_texts_titles_and_descriptions_are_refused_without_spending_a_send() {
    let h = Harness::start().await;
    h.mock.add_follower("oLong");
    let limit = "字".repeat(682) + "ab"; // 2048 bytes
    let over = "字".repeat(683); // 2049 bytes
    assert_eq!(h.call("/cgi-bin/message/custom/send", text_to("oLong", &over)).await, 45002);
    let news = |title: &str, description: &str| {
        json!({"touser": "oLong", "msgtype": "news", "news": {"articles": [
            {"title": title, "description": description, "url": "https://example.com", "picurl": ""}
        ]}})
    };
    assert_eq!(h.call("/cgi-bin/message/custom/send", news(&"t".repeat(65), "d")).await, 45003);
    assert_eq!(h.call("/cgi-bin/message/custom/send", news("t", &"d".repeat(121))).await, 45004);
    assert_eq!(h.mock.custom_sends_left("oLong"), 3, "refused messages spend nothing");
    assert_eq!(h.call("/cgi-bin/message/custom/send", text_to("oLong", &limit)).await, 0);

    let mass = |content: &str| json!({"filter": {"is_to_all": true}, "msgtype": "text", "text": {"content": content}});
    assert_eq!(h.call("/cgi-bin/message/mass/sendall", mass(&over)).await, 45002);
    assert!(h.mock.mass_jobs().is_empty());
}
