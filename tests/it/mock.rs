//! Black-box tests of the mock WeChat API: every call goes over HTTP to `MockWeChat::start` on
//! port 0; MASSSENDJOBFINISH pushes land on a small actix receiver that checks them with
//! tagcast's own signature, crypto and message code.

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::Datelike as _;
use serde_json::{Value, json};
use tagcast::mock_wechat::{
    CallbackTarget, MassAudience, MassStatus, MockAccountType, MockConfig, MockWeChat, RunningMock,
};
use tagcast::wechat::{crypto::MsgCrypt, message, signature};
use tokio::sync::mpsc;

const APPID: &str = "wxmock0000000001";
const SECRET: &str = "mocksecret";
const TOKEN: &str = "callbacktoken";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const ACCOUNT: &str = "gh_mockaccount";

struct Harness {
    mock: MockWeChat,
    running: RunningMock,
    http: reqwest::Client,
}

impl Harness {
    async fn start(account_type: MockAccountType, callback: Option<CallbackTarget>) -> Self {
        let mock = MockWeChat::new(MockConfig { appid: APPID.into(), secret: SECRET.into(), account_type, callback });
        let running = mock.start(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
        Self { mock, running, http: reqwest::Client::new() }
    }

    async fn service() -> Self {
        Self::start(MockAccountType::Service, None).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    async fn get(&self, path_and_query: impl AsRef<str>) -> Value {
        self.http.get(self.url(path_and_query.as_ref())).send().await.unwrap().json().await.unwrap()
    }

    async fn post(&self, path_and_query: &str, body: &Value) -> Value {
        self.http.post(self.url(path_and_query)).json(body).send().await.unwrap().json().await.unwrap()
    }

    async fn token(&self) -> String {
        let answer =
            self.get(&format!("/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}")).await;
        answer["access_token"].as_str().expect("a token").to_owned()
    }

    /// POSTs an API call with `token`.
    async fn call(&self, token: &str, path: impl AsRef<str>, body: Value) -> Value {
        self.post(&format!("{}?access_token={token}", path.as_ref()), &body).await
    }

    async fn create_tag(&self, token: &str, name: &str) -> i64 {
        let answer = self.call(token, "/cgi-bin/tags/create", json!({"tag": {"name": name}})).await;
        answer["tag"]["id"].as_i64().unwrap_or_else(|| panic!("tag created: {answer}"))
    }

    async fn shutdown(self) {
        self.running.handle.stop(false).await;
    }
}

fn errcode(answer: &Value) -> i64 {
    answer.get("errcode").and_then(Value::as_i64).unwrap_or(0)
}

/// One push the receiver got: its query and body.
struct Push {
    query: HashMap<String, String>,
    body: String,
}

/// A stand-in for tagcast's callback URL: records pushes and answers the queued statuses (then 200).
struct Receiver {
    url: String,
    pushes: mpsc::UnboundedReceiver<Push>,
    handle: actix_web::dev::ServerHandle,
}

struct ReceiverState {
    sender: mpsc::UnboundedSender<Push>,
    statuses: Mutex<VecDeque<u16>>,
}

async fn receive(request: HttpRequest, body: String, state: web::Data<ReceiverState>) -> HttpResponse {
    let query = web::Query::<HashMap<String, String>>::from_query(request.query_string()).unwrap().into_inner();
    state.sender.send(Push { query, body }).unwrap();
    let status = state.statuses.lock().unwrap().pop_front().unwrap_or(200);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).body("success")
}

impl Receiver {
    async fn start(statuses: Vec<u16>) -> Self {
        let (sender, pushes) = mpsc::unbounded_channel();
        let state = web::Data::new(ReceiverState { sender, statuses: Mutex::new(statuses.into()) });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/wechat", listener.local_addr().unwrap());
        let server =
            HttpServer::new(move || App::new().app_data(state.clone()).route("/wechat", web::post().to(receive)))
                .workers(1)
                .disable_signals()
                .listen(listener)
                .unwrap()
                .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, pushes, handle }
    }

    fn target(&self, encoding_aes_key: Option<&str>) -> CallbackTarget {
        CallbackTarget {
            url: self.url.clone(),
            token: TOKEN.into(),
            encoding_aes_key: encoding_aes_key.map(str::to_owned),
            account_id: ACCOUNT.into(),
        }
    }

    async fn next(&mut self) -> Push {
        tokio::time::timeout(Duration::from_secs(10), self.pushes.recv()).await.expect("a push within 10 s").unwrap()
    }
}

/// Checks a push the way tagcast's callback must, and returns the parsed message.
fn verify_push(push: &Push, safe_mode: bool) -> message::Message {
    let q = |k: &str| push.query.get(k).map(String::as_str).unwrap_or_else(|| panic!("query has {k}"));
    assert!(signature::verify(TOKEN, q("timestamp"), q("nonce"), q("signature")), "plain signature verifies");
    assert_eq!(q("openid"), "oMockAdmin000000000000000000");
    let now = chrono::Utc::now().timestamp();
    assert!((q("timestamp").parse::<i64>().unwrap() - now).abs() < 60, "timestamp is now");
    let xml = if safe_mode {
        assert_eq!(q("encrypt_type"), "aes");
        let envelope = message::parse_envelope(&push.body).unwrap();
        assert_eq!(envelope.to_user.as_deref(), Some(ACCOUNT));
        let encrypt = envelope.encrypt.expect("safe mode body has Encrypt");
        assert!(signature::verify_msg(TOKEN, q("timestamp"), q("nonce"), &encrypt, q("msg_signature")));
        assert!(!push.body.contains("MASSSENDJOBFINISH"), "nothing in clear in safe mode");
        String::from_utf8(MsgCrypt::new(AES_KEY, APPID).unwrap().decrypt(&encrypt).unwrap()).unwrap()
    } else {
        assert!(!push.query.contains_key("encrypt_type"));
        push.body.clone()
    };
    message::parse(&xml).unwrap()
}

fn finish_counts(message: &message::Message) -> (u64, u64, u64, u64, String) {
    match &message.body {
        message::Inbound::MassSendJobFinish {
            msg_id,
            status,
            total_count,
            filter_count,
            sent_count,
            error_count,
            ..
        } => {
            assert_eq!(*error_count, 0);
            (*msg_id, *total_count, *filter_count, *sent_count, status.clone())
        }
        other => panic!("not MASSSENDJOBFINISH: {other:?}"),
    }
}

fn text(content: &str) -> Value {
    json!({"msgtype": "text", "text": {"content": content}})
}

fn sendall_to_tag(tag_id: i64, content: &str) -> Value {
    let mut body = text(content);
    body["filter"] = json!({"is_to_all": false, "tag_id": tag_id});
    body
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[tokio::test]
async fn a_new_token_leaves_the_previous_one_working_for_five_minutes() {
    let h = Harness::service().await;
    let first = h.token().await;
    let second = h.token().await;
    assert_ne!(first, second);
    assert!(first.len() >= 100, "tokens are long");

    assert_eq!(errcode(&h.get(&format!("/cgi-bin/tags/get?access_token={first}")).await), 0);
    h.mock.advance_time(Duration::from_secs(301));
    assert_eq!(errcode(&h.get(&format!("/cgi-bin/tags/get?access_token={first}")).await), 40001);
    assert_eq!(errcode(&h.get(&format!("/cgi-bin/tags/get?access_token={second}")).await), 0);
    h.mock.advance_time(Duration::from_secs(7200));
    assert_eq!(errcode(&h.get(&format!("/cgi-bin/tags/get?access_token={second}")).await), 42001);
    assert_eq!(h.mock.token_fetches(), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_and_bad_tokens_get_their_errcodes() {
    let h = Harness::service().await;
    let token = |q: &str| h.get(format!("/cgi-bin/token?{q}"));
    assert_eq!(errcode(&token(&format!("grant_type=client_credential&appid=wxother&secret={SECRET}")).await), 40013);
    assert_eq!(errcode(&token(&format!("grant_type=client_credential&appid={APPID}&secret=wrong")).await), 40125);
    assert_eq!(errcode(&token(&format!("grant_type=password&appid={APPID}&secret={SECRET}")).await), 40002);
    assert_eq!(errcode(&token(&format!("grant_type=client_credential&secret={SECRET}")).await), 41002);
    assert_eq!(errcode(&token(&format!("grant_type=client_credential&appid={APPID}")).await), 41004);
    assert_eq!(errcode(&h.get("/cgi-bin/tags/get").await), 41001);
    assert_eq!(errcode(&h.get("/cgi-bin/tags/get?access_token=forged").await), 40014);
    assert_eq!(h.mock.token_fetches(), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn stable_token_is_reused_until_force_refresh_rotates_it() {
    let h = Harness::service().await;
    let body = json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET});
    let a = h.post("/cgi-bin/stable_token", &body).await;
    h.mock.advance_time(Duration::from_secs(100));
    let b = h.post("/cgi-bin/stable_token", &body).await;
    assert_eq!(a["access_token"], b["access_token"]);
    assert_eq!(a["expires_in"], 7200);
    assert!(b["expires_in"].as_i64().unwrap() <= 7100);
    let plain = h.token().await; // the other chain does not disturb the stable one
    let old = a["access_token"].as_str().unwrap();
    assert_eq!(errcode(&h.get(&format!("/cgi-bin/tags/get?access_token={old}")).await), 0);

    let mut forced = body.clone();
    forced["force_refresh"] = json!(true);
    let c = h.post("/cgi-bin/stable_token", &forced).await;
    assert_ne!(c["access_token"], a["access_token"]);
    assert_eq!(errcode(&h.get(&format!("/cgi-bin/tags/get?access_token={old}")).await), 40001);
    assert_eq!(errcode(&h.get(&format!("/cgi-bin/tags/get?access_token={plain}")).await), 0);
    let wrong = json!({"grant_type": "client_credential", "appid": APPID, "secret": "nope"});
    assert_eq!(errcode(&h.post("/cgi-bin/stable_token", &wrong).await), 40125);
    assert_eq!(h.mock.token_fetches(), 3, "two stable tokens and one plain");
    h.shutdown().await;
}

#[tokio::test]
async fn expired_tokens_answer_42001_and_stable_token_then_issues_a_new_one() {
    let h = Harness::service().await;
    let body = json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET});
    let stable = h.post("/cgi-bin/stable_token", &body).await["access_token"].as_str().unwrap().to_owned();
    let plain = h.token().await;
    h.mock.expire_tokens();
    for token in [&stable, &plain] {
        assert_eq!(errcode(&h.get(&format!("/cgi-bin/tags/get?access_token={token}")).await), 42001);
    }
    let fresh = h.post("/cgi-bin/stable_token", &body).await["access_token"].as_str().unwrap().to_owned();
    assert_ne!(fresh, stable);
    assert_eq!(errcode(&h.get(&format!("/cgi-bin/tags/get?access_token={fresh}")).await), 0);

    let over_http = h.http.post(h.url("/mock/expire_tokens")).send().await.unwrap();
    assert_eq!(over_http.status(), 200);
    assert_eq!(errcode(&h.get(&format!("/cgi-bin/tags/get?access_token={fresh}")).await), 42001);
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Tags

#[tokio::test]
async fn tag_creation_enforces_names_and_the_hundred_tag_limit() {
    let h = Harness::service().await;
    let token = h.token().await;
    assert_eq!(h.create_tag(&token, "广东").await, 100);
    let create = |name: String| h.call(&token, "/cgi-bin/tags/create", json!({"tag": {"name": name}}));
    assert_eq!(errcode(&create("广东".into()).await), 45157, "duplicate");
    assert_eq!(errcode(&create("星标组".into()).await), 45157, "the star group's name is taken");
    assert_eq!(errcode(&create("一二三四五六七八九十十".into()).await), 45158, "33 bytes");
    assert_eq!(errcode(&create(String::new()).await), 45157, "empty");
    assert_eq!(errcode(&create("一二三四五六七八九十".into()).await), 0, "30 bytes is fine");
    for i in 2..100 {
        assert_eq!(errcode(&create(format!("t{i}")).await), 0);
    }
    assert_eq!(errcode(&create("one too many".into()).await), 45056);

    let listed = h.get(&format!("/cgi-bin/tags/get?access_token={token}")).await;
    let tags = listed["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 101);
    assert_eq!(tags[0], json!({"id": 2, "name": "星标组", "count": 0}));
    assert_eq!(tags[1], json!({"id": 100, "name": "广东", "count": 0}));
    assert_eq!(h.mock.tags().len(), 101);
    h.shutdown().await;
}

#[tokio::test]
async fn reserved_tags_cannot_change_and_deleting_a_tag_untags_its_members() {
    let h = Harness::service().await;
    let token = h.token().await;
    let users = h.mock.seed_followers(3);
    let a = h.create_tag(&token, "a").await;
    let b = h.create_tag(&token, "b").await;
    let update = |id: i64, name: &str| h.call(&token, "/cgi-bin/tags/update", json!({"tag": {"id": id, "name": name}}));
    let delete = |id: i64| h.call(&token, "/cgi-bin/tags/delete", json!({"tag": {"id": id}}));
    for reserved in [0, 1, 2] {
        assert_eq!(errcode(&update(reserved, "x").await), 45058);
        assert_eq!(errcode(&delete(reserved).await), 45058);
    }
    assert_eq!(errcode(&update(a, "b").await), 45157);
    assert_eq!(errcode(&update(a, "a").await), 0, "renaming to its own name is fine");
    assert_eq!(errcode(&update(a, "aa").await), 0);
    assert_eq!(errcode(&update(999, "z").await), 45159);

    let tagging = json!({"openid_list": users, "tagid": a});
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/tags/members/batchtagging", tagging).await), 0);
    let star = json!({"openid_list": [users[0]], "tagid": 2});
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/tags/members/batchtagging", star).await), 0);
    assert_eq!(h.mock.user_tags(&users[0]), vec![a, 2]);
    assert_eq!(errcode(&delete(a).await), 0);
    assert_eq!(errcode(&delete(a).await), 45159);
    let ids = h.call(&token, "/cgi-bin/tags/getidlist", json!({"openid": users[0]})).await;
    assert_eq!(ids["tagid_list"], json!([2]));
    assert_eq!(h.mock.tags(), vec![(2, "星标组".to_owned(), 1), (b, "b".to_owned(), 0)]);
    h.shutdown().await;
}

#[tokio::test]
async fn a_tag_with_more_than_100k_members_cannot_be_deleted() {
    let h = Harness::service().await;
    let token = h.token().await;
    let users = h.mock.seed_followers(100_001);
    let tag = h.create_tag(&token, "big").await;
    assert_eq!(h.mock.tag_followers(tag, &users), 100_001);
    let delete = || h.call(&token, "/cgi-bin/tags/delete", json!({"tag": {"id": tag}}));
    assert_eq!(errcode(&delete().await), 45057);
    let untag = json!({"openid_list": [users[0]], "tagid": tag});
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/tags/members/batchuntagging", untag).await), 0);
    assert_eq!(errcode(&delete().await), 0);
    assert!(h.mock.user_tags(&users[5]).is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn batchtagging_checks_everything_before_changing_anything() {
    let h = Harness::service().await;
    let token = h.token().await;
    let users = h.mock.seed_followers(60);
    let tag = h.create_tag(&token, "t").await;
    let tagging = |openids: &[String], tagid: i64| {
        h.call(&token, "/cgi-bin/tags/members/batchtagging", json!({"openid_list": openids, "tagid": tagid}))
    };
    assert_eq!(errcode(&tagging(&[], tag).await), 40032);
    assert_eq!(errcode(&tagging(&users[..51], tag).await), 40032);
    assert_eq!(errcode(&tagging(&users[..2], 12345).await), 45159);
    assert_eq!(errcode(&tagging(&users[..2], 1).await), 45159, "the blacklist group is not a tag");
    let with_stranger = [users[0].clone(), "oStrangerXXXXXXXXXXXXXXXXXXX".to_owned()];
    assert_eq!(errcode(&tagging(&with_stranger, tag).await), 40003);
    h.mock.unsubscribe(&users[59]);
    assert_eq!(errcode(&tagging(&[users[1].clone(), users[59].clone()], tag).await), 40003);
    assert!(h.mock.user_tags(&users[0]).is_empty() && h.mock.user_tags(&users[1]).is_empty(), "nothing changed");

    // users[2] carries 20 tags: adding a 21st to them refuses the whole batch.
    let mut full = Vec::new();
    for i in 0..20 {
        let id = h.create_tag(&token, &format!("f{i}")).await;
        assert_eq!(errcode(&tagging(&users[2..3], id).await), 0);
        full.push(id);
    }
    assert_eq!(errcode(&tagging(&users[..3], tag).await), 45059);
    assert!(h.mock.user_tags(&users[0]).is_empty());
    assert_eq!(errcode(&tagging(&users[2..3], full[0]).await), 0, "re-tagging an existing tag is fine at 20");

    assert_eq!(errcode(&tagging(&users[3..53], tag).await), 0);
    assert_eq!(h.mock.tags().iter().find(|t| t.0 == tag).unwrap().2, 50);
    let untag = json!({"openid_list": users[3..13], "tagid": tag});
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/tags/members/batchuntagging", untag).await), 0);
    assert_eq!(h.mock.tags().iter().find(|t| t.0 == tag).unwrap().2, 40);
    let ids = h.call(&token, "/cgi-bin/tags/getidlist", json!({"openid": users[20]})).await;
    assert_eq!(ids["tagid_list"], json!([tag]));
    let stranger = h.call(&token, "/cgi-bin/tags/getidlist", json!({"openid": "oNobody"})).await;
    assert_eq!(errcode(&stranger), 40003);
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Followers

#[tokio::test]
async fn user_get_pages_through_every_follower_then_answers_count_zero() {
    let h = Harness::service().await;
    let token = h.token().await;
    let mut users = h.mock.seed_followers(25);
    h.mock.unsubscribe(&users[3]);
    users.remove(3);
    h.mock.set_page_size(10);

    let mut seen = Vec::new();
    let mut next = String::new();
    let mut counts = Vec::new();
    loop {
        let page = h.get(&format!("/cgi-bin/user/get?access_token={token}&next_openid={next}")).await;
        assert_eq!(page["total"], 24);
        let count = page["count"].as_u64().unwrap();
        counts.push(count);
        if count == 0 {
            assert_eq!(page["next_openid"], "");
            assert!(page.get("data").is_none());
            break;
        }
        let openids: Vec<String> = serde_json::from_value(page["data"]["openid"].clone()).unwrap();
        assert_eq!(page["next_openid"], json!(openids.last().unwrap()));
        next = page["next_openid"].as_str().unwrap().to_owned();
        seen.extend(openids);
    }
    assert_eq!(counts, [10, 10, 4, 0]);
    assert_eq!(seen, users);
    let unknown = h.get(&format!("/cgi-bin/user/get?access_token={token}&next_openid=oUnknown")).await;
    assert_eq!(errcode(&unknown), 40003);
    h.shutdown().await;
}

#[tokio::test]
async fn user_tag_get_pages_through_a_tags_members() {
    let h = Harness::service().await;
    let token = h.token().await;
    let users = h.mock.seed_followers(40);
    let tag = h.create_tag(&token, "t").await;
    let members: Vec<String> = users.iter().step_by(2).take(17).cloned().collect();
    h.mock.tag_followers(tag, &members);
    let page_size = h.http.post(h.url("/mock/page_size")).json(&json!({"size": 5})).send().await.unwrap();
    assert_eq!(page_size.status(), 200);

    let mut seen = Vec::new();
    let mut next = String::new();
    let mut counts = Vec::new();
    loop {
        let page = h.call(&token, "/cgi-bin/user/tag/get", json!({"tagid": tag, "next_openid": next})).await;
        let count = page["count"].as_u64().unwrap();
        counts.push(count);
        if count == 0 {
            break;
        }
        seen.extend(serde_json::from_value::<Vec<String>>(page["data"]["openid"].clone()).unwrap());
        next = page["next_openid"].as_str().unwrap().to_owned();
    }
    assert_eq!(counts, [5, 5, 5, 2, 0]);
    assert_eq!(seen, members);
    let bad_tag = h.call(&token, "/cgi-bin/user/tag/get", json!({"tagid": 999, "next_openid": ""})).await;
    assert_eq!(errcode(&bad_tag), 45159);
    h.shutdown().await;
}

#[tokio::test]
async fn user_info_has_no_nickname_and_unsubscribed_users_show_only_their_openid() {
    let h = Harness::service().await;
    let token = h.token().await;
    let users = h.mock.seed_followers(2);
    let tag = h.create_tag(&token, "t").await;
    h.mock.tag_followers(tag, &users[..1]);
    h.mock.unsubscribe(&users[1]);

    let info = h.get(&format!("/cgi-bin/user/info?access_token={token}&openid={}&lang=zh_CN", users[0])).await;
    assert_eq!(info["subscribe"], 1);
    assert_eq!(info["openid"], json!(users[0]));
    assert_eq!(info["tagid_list"], json!([tag]));
    assert!(info["subscribe_time"].as_i64().unwrap() > 0);
    assert!(info["subscribe_scene"].as_str().unwrap().starts_with("ADD_SCENE_"));
    for gone in ["nickname", "headimgurl", "sex", "city", "province", "country"] {
        assert!(info.get(gone).is_none(), "{gone}");
    }
    let left = h.get(&format!("/cgi-bin/user/info?access_token={token}&openid={}", users[1])).await;
    assert_eq!(left, json!({"subscribe": 0, "openid": users[1]}));
    assert_eq!(errcode(&h.get(&format!("/cgi-bin/user/info?access_token={token}&openid=oNobody")).await), 40003);

    let list: Vec<Value> = users.iter().map(|o| json!({"openid": o, "lang": "zh_CN"})).collect();
    let batch = h.call(&token, "/cgi-bin/user/info/batchget", json!({"user_list": list})).await;
    assert_eq!(batch["user_info_list"].as_array().unwrap().len(), 2);
    let too_many: Vec<Value> = (0..101).map(|_| json!({"openid": users[0]})).collect();
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/user/info/batchget", json!({"user_list": too_many})).await), 40032);
    let stranger = json!({"user_list": [{"openid": users[0]}, {"openid": "oNobody"}]});
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/user/info/batchget", stranger).await), 40003);
    h.shutdown().await;
}

/// A sanity ceiling against an accidentally quadratic seed, not a benchmark: generous enough for
/// a machine busy with other builds.
#[tokio::test]
async fn seeding_100k_followers_is_not_quadratic() {
    let mock = MockWeChat::new(MockConfig {
        appid: APPID.into(),
        secret: SECRET.into(),
        account_type: MockAccountType::Service,
        callback: None,
    });
    let started = Instant::now();
    let users = mock.seed_followers(100_000);
    let took = started.elapsed();
    assert_eq!(users.len(), 100_000);
    assert!(took < Duration::from_secs(15), "seeding took {took:?}");
}

// ---------------------------------------------------------------------------------------------
// Mass send

#[tokio::test]
async fn a_mass_send_to_a_tag_pushes_a_signed_finish_event_with_real_counts() {
    let mut receiver = Receiver::start(vec![]).await;
    let h = Harness::start(MockAccountType::Service, Some(receiver.target(None))).await;
    let token = h.token().await;
    let users = h.mock.seed_followers(10);
    let tag = h.create_tag(&token, "油性").await;
    h.mock.tag_followers(tag, &users[..4]);

    let mut body = sendall_to_tag(tag, "");
    body["msgtype"] = json!("mpnews");
    body["mpnews"] = json!({"media_id": h.mock.add_draft(&["油性肌肤护理"])});
    body["clientmsgid"] = json!("campaign-1-batch-1");
    let answer = h.call(&token, "/cgi-bin/message/mass/sendall", body).await;
    assert_eq!(errcode(&answer), 0, "{answer}");
    let msg_id = answer["msg_id"].as_u64().unwrap();
    assert!(answer["msg_data_id"].as_u64().is_some(), "mpnews answers msg_data_id");

    let push = receiver.next().await;
    let message = verify_push(&push, false);
    assert_eq!(message.to_user, ACCOUNT);
    assert_eq!(finish_counts(&message), (msg_id, 4, 4, 4, "send success".to_owned()));
    h.mock.wait_for_callbacks().await;
    let job = &h.mock.mass_jobs()[0];
    assert_eq!(
        (job.audience, job.status, job.callback_attempts, job.callback_delivered),
        (MassAudience::Tag(tag), MassStatus::SendSuccess, 1, true)
    );
    assert_eq!(job.clientmsgid.as_deref(), Some("campaign-1-batch-1"));
    assert_eq!(h.mock.mass_recipients(msg_id), users[..4]);
    let status = h.call(&token, "/cgi-bin/message/mass/get", json!({"msg_id": msg_id.to_string()})).await;
    assert_eq!(status, json!({"msg_id": msg_id, "msg_status": "SEND_SUCCESS"}));
    receiver.handle.stop(false).await;
    h.shutdown().await;
}

#[tokio::test]
async fn in_safe_mode_the_finish_event_is_encrypted_for_the_appid() {
    let mut receiver = Receiver::start(vec![]).await;
    let h = Harness::start(MockAccountType::Service, Some(receiver.target(Some(AES_KEY)))).await;
    let token = h.token().await;
    h.mock.seed_followers(7);
    let mut body = text("大家好");
    body["filter"] = json!({"is_to_all": true});
    let answer = h.call(&token, "/cgi-bin/message/mass/sendall", body).await;
    let msg_id = answer["msg_id"].as_u64().unwrap();
    assert!(answer.get("msg_data_id").is_none(), "only mpnews has msg_data_id");

    let message = verify_push(&receiver.next().await, true);
    assert_eq!(finish_counts(&message), (msg_id, 7, 7, 7, "send success".to_owned()));
    assert_eq!(h.mock.mass_jobs()[0].audience, MassAudience::All);
    receiver.handle.stop(false).await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_push_that_is_not_answered_200_is_tried_again() {
    let mut receiver = Receiver::start(vec![500, 403]).await;
    let h = Harness::start(MockAccountType::Service, Some(receiver.target(None))).await;
    let token = h.token().await;
    let users = h.mock.seed_followers(2);
    let body = json!({"touser": users, "msgtype": "text", "text": {"content": "hi"}});
    let msg_id = h.call(&token, "/cgi-bin/message/mass/send", body).await["msg_id"].as_u64().unwrap();
    let pushes = [receiver.next().await, receiver.next().await, receiver.next().await];
    for push in &pushes {
        assert_eq!(finish_counts(&verify_push(push, false)).0, msg_id);
    }
    h.mock.wait_for_callbacks().await;
    let job = &h.mock.mass_jobs()[0];
    assert_eq!((job.callback_attempts, job.callback_delivered), (3, true));
    receiver.handle.stop(false).await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_repeated_clientmsgid_is_45066_within_the_minute_then_45065_with_the_existing_msg_id() {
    let h = Harness::service().await;
    let token = h.token().await;
    let users = h.mock.seed_followers(3);
    let tag = h.create_tag(&token, "t").await;
    h.mock.tag_followers(tag, &users);
    let mut body = sendall_to_tag(tag, "hello");
    body["clientmsgid"] = json!("job-42");
    let first = h.call(&token, "/cgi-bin/message/mass/sendall", body.clone()).await;
    let soon = h.call(&token, "/cgi-bin/message/mass/sendall", body.clone()).await;
    assert_eq!(errcode(&soon), 45066, "{soon}");
    assert!(soon.get("msg_id").is_none(), "45066 does not name the job: {soon}");
    h.mock.advance_time(Duration::from_secs(59));
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/message/mass/sendall", body.clone()).await), 45066);
    // The minute counts from the first use, not from the refused repeats.
    h.mock.advance_time(Duration::from_secs(2));
    let again = h.call(&token, "/cgi-bin/message/mass/sendall", body.clone()).await;
    assert_eq!(errcode(&again), 45065);
    assert_eq!(again["msg_id"], first["msg_id"]);

    // Without a clientmsgid WeChat derives one from audience and content.
    let plain = sendall_to_tag(tag, "no id");
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/message/mass/sendall", plain.clone()).await), 0);
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/message/mass/sendall", plain.clone()).await), 45066);
    h.mock.advance_time(Duration::from_secs(61));
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/message/mass/sendall", plain).await), 45065);

    let mut long = sendall_to_tag(tag, "x");
    long["clientmsgid"] = json!("x".repeat(65));
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/message/mass/sendall", long).await), 45067);

    h.mock.advance_time(Duration::from_secs(24 * 3600));
    let token = h.token().await;
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/message/mass/sendall", body).await), 0, "24 h later it is new");
    assert_eq!(h.mock.mass_jobs().len(), 3);
    h.shutdown().await;
}

#[tokio::test]
async fn followers_over_four_mass_messages_a_month_are_filtered_out() {
    let mut receiver = Receiver::start(vec![]).await;
    let h = Harness::start(MockAccountType::Service, Some(receiver.target(None))).await;
    let token = h.token().await;
    let users = h.mock.seed_followers(5);
    let busy = h.create_tag(&token, "busy").await;
    let all = h.create_tag(&token, "all").await;
    h.mock.tag_followers(busy, &users[..2]);
    h.mock.tag_followers(all, &users);
    // Keep every send within one Beijing month: move to 08:00 Beijing (00:00 UTC) on the 1st of
    // next month.
    let bj = chrono::DateTime::from_timestamp(h.mock.now() + 8 * 3600, 0).unwrap().date_naive();
    let (year, month) = if bj.month() == 12 { (bj.year() + 1, 1) } else { (bj.year(), bj.month() + 1) };
    let first = chrono::NaiveDate::from_ymd_opt(year, month, 1).unwrap();
    let target = first.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    h.mock.advance_time(Duration::from_secs(u64::try_from(target - h.mock.now()).unwrap()));
    let token = h.token().await;

    for i in 0..4 {
        let answer = h.call(&token, "/cgi-bin/message/mass/sendall", sendall_to_tag(busy, &format!("m{i}"))).await;
        assert_eq!(errcode(&answer), 0);
        receiver.next().await;
    }
    let answer = h.call(&token, "/cgi-bin/message/mass/sendall", sendall_to_tag(all, "fifth")).await;
    let message = verify_push(&receiver.next().await, false);
    assert_eq!(finish_counts(&message), (answer["msg_id"].as_u64().unwrap(), 5, 3, 3, "send success".to_owned()));
    let fifth = h.mock.mass_jobs().pop().unwrap();
    assert_eq!((fifth.total, fifth.filter, fifth.sent, fifth.error), (5, 3, 3, 0));
    assert_eq!(h.mock.mass_recipients(fifth.msg_id), users[2..]);

    h.mock.advance_time(Duration::from_secs(32 * 86_400));
    let token = h.token().await;
    let answer = h.call(&token, "/cgi-bin/message/mass/sendall", sendall_to_tag(all, "next month")).await;
    let message = verify_push(&receiver.next().await, false);
    assert_eq!(finish_counts(&message), (answer["msg_id"].as_u64().unwrap(), 5, 5, 5, "send success".to_owned()));
    receiver.handle.stop(false).await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_subscription_account_gets_one_mass_send_a_day_and_no_openid_list_sends() {
    let h = Harness::start(MockAccountType::Subscription, None).await;
    let token = h.token().await;
    let users = h.mock.seed_followers(3);
    let mut all = text("今天");
    all["filter"] = json!({"is_to_all": true});
    let send = json!({"touser": users, "msgtype": "text", "text": {"content": "x"}});
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/message/mass/send", send).await), 48001);

    h.mock.fail_next_mass_job("err(30003)");
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/message/mass/sendall", all.clone()).await), 0);
    all["text"]["content"] = json!("again");
    assert_eq!(
        errcode(&h.call(&token, "/cgi-bin/message/mass/sendall", all.clone()).await),
        0,
        "a failed job used no quota"
    );
    all["text"]["content"] = json!("third");
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/message/mass/sendall", all.clone()).await), 45028);
    h.mock.wait_for_callbacks().await;
    let jobs = h.mock.mass_jobs();
    assert_eq!((jobs[0].status, jobs[0].sent), (MassStatus::SendFail, 0));
    assert_eq!((jobs[1].status, jobs[1].sent), (MassStatus::SendSuccess, 3));

    h.mock.advance_time(Duration::from_secs(86_400));
    let token = h.token().await;
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/message/mass/sendall", all).await), 0, "a new day, a new quota");
    h.shutdown().await;
}

#[tokio::test]
async fn openid_list_sends_need_two_to_ten_thousand_openids_and_skip_non_followers() {
    let h = Harness::service().await;
    let token = h.token().await;
    let users = h.mock.seed_followers(4);
    h.mock.unsubscribe(&users[3]);
    let send = |touser: Value| {
        h.call(
            &token,
            "/cgi-bin/message/mass/send",
            json!({"touser": touser, "msgtype": "voice", "voice": {"media_id": "v"}}),
        )
    };
    assert_eq!(errcode(&send(json!([users[0]])).await), 40130);
    let many: Vec<String> = (0..10_001).map(|i| format!("o{i}")).collect();
    assert_eq!(errcode(&send(json!(many)).await), 40130);
    let answer = send(json!([users[0], users[1], users[1], users[3], "oStranger"])).await;
    assert_eq!(errcode(&answer), 0, "{answer}");
    h.mock.wait_for_callbacks().await;
    let job = h.mock.mass_jobs().pop().unwrap();
    assert_eq!((job.audience, job.total, job.filter, job.sent), (MassAudience::OpenIds(4), 4, 2, 2));
    let missing_media = json!({"touser": [users[0], users[1]], "msgtype": "voice", "voice": {}});
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/message/mass/send", missing_media).await), 40007);
    h.shutdown().await;
}

#[tokio::test]
async fn sendall_validates_its_filter_tag_and_content() {
    let h = Harness::service().await;
    let token = h.token().await;
    let sendall = |body: Value| h.call(&token, "/cgi-bin/message/mass/sendall", body);
    assert_eq!(errcode(&sendall(text("no filter")).await), 40035);
    assert_eq!(errcode(&sendall(sendall_to_tag(999, "x")).await), 45159);
    let mut unknown_type = sendall_to_tag(2, "x");
    unknown_type["msgtype"] = json!("music");
    assert_eq!(errcode(&sendall(unknown_type).await), 40008);
    assert_eq!(errcode(&sendall(sendall_to_tag(2, "")).await), 44004);
    let images = json!({"filter": {"is_to_all": true}, "msgtype": "image", "images": {"media_ids": ["a", "b"]}});
    assert_eq!(errcode(&sendall(images).await), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn preview_get_delete_and_speed_behave_like_wechat() {
    let h = Harness::service().await;
    let token = h.token().await;
    let users = h.mock.seed_followers(2);
    h.mock.unsubscribe(&users[1]);
    let preview = |body: Value| h.call(&token, "/cgi-bin/message/mass/preview", body);
    let mut to_user = text("预览");
    to_user["touser"] = json!(users[0]);
    let answer = preview(to_user).await;
    assert_eq!((errcode(&answer), answer["errmsg"].as_str()), (0, Some("preview success")));
    let mut to_gone = text("x");
    to_gone["touser"] = json!(users[1]);
    assert_eq!(errcode(&preview(to_gone).await), 43004);
    let mut by_name = text("y");
    by_name["towxname"] = json!("some_wechat_id");
    by_name["touser"] = json!("oNobody");
    assert_eq!(errcode(&preview(by_name).await), 0, "towxname wins");
    assert_eq!(h.mock.previews().len(), 2);
    assert!(h.mock.mass_jobs().is_empty(), "previews create no job");

    let news =
        json!({"filter": {"is_to_all": true}, "msgtype": "mpnews", "mpnews": {"media_id": h.mock.add_draft(&["m"])}});
    let msg_id = h.call(&token, "/cgi-bin/message/mass/sendall", news.clone()).await["msg_id"].as_u64().unwrap();
    let get = || h.call(&token, "/cgi-bin/message/mass/get", json!({"msg_id": msg_id}));
    assert_eq!(get().await["msg_status"], "SENDING");
    let delete = || h.call(&token, "/cgi-bin/message/mass/delete", json!({"msg_id": msg_id, "article_idx": 0}));
    assert_eq!(errcode(&delete().await), 40035, "not finished yet");
    h.mock.wait_for_callbacks().await;
    assert_eq!(get().await["msg_status"], "SEND_SUCCESS");
    assert_eq!(errcode(&delete().await), 0);
    assert_eq!(get().await["msg_status"], "DELETE");
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/message/mass/get", json!({"msg_id": 1})).await), 40035);

    let speed = |body: Value, path: &'static str| h.call(&token, path, body);
    assert_eq!(speed(json!({}), "/cgi-bin/message/mass/speed/get").await, json!({"speed": 0, "realspeed": 80}));
    assert_eq!(errcode(&speed(json!({"speed": 5}), "/cgi-bin/message/mass/speed/set").await), 45083);
    assert_eq!(errcode(&speed(json!({}), "/cgi-bin/message/mass/speed/set").await), 45084);
    assert_eq!(errcode(&speed(json!({"speed": 3}), "/cgi-bin/message/mass/speed/set").await), 0);
    assert_eq!(speed(json!({}), "/cgi-bin/message/mass/speed/get").await, json!({"speed": 3, "realspeed": 30}));
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Fault injection, latency, the call log

#[tokio::test]
async fn injected_failures_latency_and_the_call_log() {
    let h = Harness::service().await;
    let token = h.token().await;
    h.mock.clear_calls();
    h.mock.fail_next("/cgi-bin/tags/create", 2, 45009);
    h.mock.fail_next_http("cgi-bin/tags/create", 1, 502);
    let create = || {
        h.http
            .post(h.url(&format!("/cgi-bin/tags/create?access_token={token}")))
            .json(&json!({"tag": {"name": "n"}}))
            .send()
    };
    assert_eq!(errcode(&create().await.unwrap().json().await.unwrap()), 45009);
    assert_eq!(errcode(&create().await.unwrap().json().await.unwrap()), 45009);
    assert_eq!(create().await.unwrap().status(), 502);
    let ok: Value = create().await.unwrap().json().await.unwrap();
    assert_eq!(ok["tag"]["name"], "n");
    assert_eq!(h.mock.tags().len(), 2, "injected failures created nothing");

    let calls = h.mock.calls();
    assert_eq!(h.mock.call_count("/cgi-bin/tags/create"), 4);
    assert_eq!(
        calls.iter().map(|c| (c.errcode, c.status)).collect::<Vec<_>>(),
        [(45009, 200), (45009, 200), (-1, 502), (0, 200)]
    );
    assert_eq!(calls[0].query, format!("access_token={token}"));
    assert_eq!(calls[0].body, json!({"tag": {"name": "n"}}));
    assert_eq!(calls[0].method, "POST");

    let fail = json!({"path": "/cgi-bin/user/get", "times": 1, "errcode": -1});
    assert_eq!(h.http.post(h.url("/mock/fail")).json(&fail).send().await.unwrap().status(), 200);
    assert_eq!(errcode(&h.get(&format!("/cgi-bin/user/get?access_token={token}")).await), -1);
    let http_fail = json!({"path": "/cgi-bin/user/get", "times": 1, "http_status": 503});
    h.http.post(h.url("/mock/fail")).json(&http_fail).send().await.unwrap();
    assert_eq!(
        h.http.get(h.url(&format!("/cgi-bin/user/get?access_token={token}"))).send().await.unwrap().status(),
        503
    );

    h.http.post(h.url("/mock/latency")).json(&json!({"ms": 300})).send().await.unwrap();
    let started = Instant::now();
    h.get(&format!("/cgi-bin/tags/get?access_token={token}")).await;
    assert!(started.elapsed() >= Duration::from_millis(300), "latency applies");
    h.mock.set_latency(Duration::ZERO);

    let logged: Vec<Value> = h.http.get(h.url("/mock/calls")).send().await.unwrap().json().await.unwrap();
    assert_eq!(logged.len(), 7);
    assert_eq!(logged[4]["path"], "/cgi-bin/user/get");
    h.http.post(h.url("/mock/reset_calls")).send().await.unwrap();
    assert!(h.mock.calls().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_are_40066_with_http_200_and_bad_bodies_are_refused() {
    let h = Harness::service().await;
    let token = h.token().await;
    let unknown = h.http.get(h.url("/cgi-bin/nope")).send().await.unwrap();
    assert_eq!(unknown.status(), 200, "WeChat answers errors with HTTP 200");
    assert_eq!(errcode(&unknown.json().await.unwrap()), 40066);
    let post = |body: &'static str| {
        h.http.post(h.url(&format!("/cgi-bin/tags/create?access_token={token}"))).body(body).send()
    };
    assert_eq!(errcode(&post("{not json").await.unwrap().json().await.unwrap()), 47001);
    assert_eq!(errcode(&post("").await.unwrap().json().await.unwrap()), 44002);
    let calls = h.mock.calls();
    assert_eq!(calls.last().unwrap().errcode, 44002);
    assert_eq!(calls[calls.len() - 2].body, json!("{not json"));
    assert_eq!((calls[calls.len() - 3].status, calls[calls.len() - 3].errcode), (200, 40066));
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Customer service, menu, OAuth, statistics, control surface

#[tokio::test]
async fn custom_messages_are_logged_and_refused_for_unsubscribed_users() {
    let h = Harness::service().await;
    let token = h.token().await;
    let users = h.mock.seed_followers(2);
    h.mock.open_interaction(&users[0], tagcast::mock_wechat::Interaction::Message);
    h.mock.unsubscribe(&users[1]);
    let send = |touser: &str, body: Value| {
        let mut body = body;
        body["touser"] = json!(touser);
        h.call(&token, "/cgi-bin/message/custom/send", body)
    };
    assert_eq!(errcode(&send(&users[0], text("你的标签：肤质/油性")).await), 0);
    assert_eq!(errcode(&send(&users[1], text("bye")).await), 45015);
    assert_eq!(errcode(&send("oNobody", text("who")).await), 40003);
    assert_eq!(errcode(&send(&users[0], text("")).await), 44004);
    assert_eq!(errcode(&send(&users[0], json!({"msgtype": "image", "image": {}})).await), 40007);
    let messages = h.mock.custom_messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].0, users[0]);
    assert_eq!(messages[0].1["text"]["content"], "你的标签：肤质/油性");
    h.shutdown().await;
}

#[tokio::test]
async fn the_menu_is_validated_stored_and_returned() {
    let h = Harness::service().await;
    let token = h.token().await;
    assert_eq!(errcode(&h.get(&format!("/cgi-bin/menu/get?access_token={token}")).await), 46002);
    let menu = json!({"button": [
        {"type": "click", "name": "测肤质", "key": "SKIN_TEST"},
        {"name": "更多", "sub_button": [{"type": "view", "name": "官网", "url": "https://example.com/"}]},
    ]});
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/menu/create", menu).await), 0);
    let got = h.get(&format!("/cgi-bin/menu/get?access_token={token}")).await;
    assert_eq!(got["menu"]["button"][0]["key"], "SKIN_TEST");
    assert_eq!(got["menu"]["button"][0]["sub_button"], json!([]));
    assert_eq!(got["menu"]["button"][1]["sub_button"][0]["url"], "https://example.com/");
    let four = json!({"button": [{"type": "click", "name": "a", "key": "a"}, {"type": "click", "name": "b", "key": "b"}, {"type": "click", "name": "c", "key": "c"}, {"type": "click", "name": "d", "key": "d"}]});
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/menu/create", four).await), 40016);
    let long_key = json!({"button": [{"type": "click", "name": "a", "key": "k".repeat(129)}]});
    assert_eq!(errcode(&h.call(&token, "/cgi-bin/menu/create", long_key).await), 40019);
    assert_eq!(h.mock.menu().unwrap()["button"][0]["name"], "测肤质", "a refused menu leaves the old one");
    h.shutdown().await;
}

#[tokio::test]
async fn an_oauth_code_works_once() {
    let h = Harness::service().await;
    let code: Value = h
        .http
        .post(h.url("/mock/oauth_code"))
        .json(&json!({"openid": "oWebUser"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = code["code"].as_str().unwrap();
    let exchange = |code: &str| {
        h.get(format!(
            "/sns/oauth2/access_token?appid={APPID}&secret={SECRET}&code={code}&grant_type=authorization_code"
        ))
    };
    let answer = exchange(code).await;
    assert_eq!(answer["openid"], "oWebUser");
    assert!(answer["access_token"].as_str().is_some());
    assert_eq!(errcode(&exchange(code).await), 40163);
    assert_eq!(errcode(&exchange("never-issued").await), 40029);
    let late = h.mock.oauth_code("oLate");
    h.mock.advance_time(Duration::from_secs(301));
    assert_eq!(errcode(&exchange(&late).await), 40029);
    let wrong_grant = h
        .get(&format!("/sns/oauth2/access_token?appid={APPID}&secret={SECRET}&code=x&grant_type=client_credential"))
        .await;
    assert_eq!(errcode(&wrong_grant), 40002);
    h.shutdown().await;
}

#[tokio::test]
async fn datacube_figures_follow_the_mocks_followers_and_sends() {
    let h = Harness::service().await;
    let users = h.mock.seed_followers(2000);
    let news =
        json!({"filter": {"is_to_all": true}, "msgtype": "mpnews", "mpnews": {"media_id": h.mock.add_draft(&["m"])}});
    let token = h.token().await;
    let answer = h.call(&token, "/cgi-bin/message/mass/sendall", news.clone()).await;
    let data_id = answer["msg_data_id"].as_u64().unwrap();
    h.mock.wait_for_callbacks().await;
    h.mock.unsubscribe(&users[0]);

    let bj = |unix: i64| chrono::DateTime::from_timestamp(unix + 8 * 3600, 0).unwrap().date_naive();
    let send_day = bj(h.mock.now());
    h.mock.advance_time(Duration::from_secs(5 * 86_400));
    let token = h.token().await;
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let range = |from: chrono::NaiveDate, to: chrono::NaiveDate| json!({"begin_date": day(from), "end_date": day(to)});
    let cube = |name: &str, body: Value| h.call(&token, format!("/datacube/{name}"), body);

    let cumulate = cube("getusercumulate", range(send_day, send_day)).await;
    assert_eq!(cumulate["list"][0]["cumulate_user"], 1999, "the unsubscribe happened that day");
    let summary = cube("getusersummary", range(send_day, send_day)).await;
    let cancelled: u64 = summary["list"].as_array().unwrap().iter().map(|r| r["cancel_user"].as_u64().unwrap()).sum();
    assert_eq!(cancelled, 1);
    assert_eq!(
        errcode(&cube("getusercumulate", range(send_day - chrono::Days::new(7), send_day)).await),
        61501,
        "8 days"
    );
    let today = bj(h.mock.now());
    assert_eq!(errcode(&cube("getusercumulate", range(today, today)).await), 61501, "today has no data yet");
    assert_eq!(
        errcode(&cube("getusercumulate", json!({"begin_date": "2024/01/01", "end_date": "2024-01-01"})).await),
        61500
    );
    let upstream = cube("getupstreammsg", range(send_day, send_day)).await;
    assert!(upstream["list"][0]["msg_user"].as_u64().is_some());

    let detail = cube("getarticletotaldetail", range(send_day, send_day)).await;
    let article = &detail["list"][0];
    assert_eq!(article["msgid"], format!("{data_id}_1"));
    let stats = article["detail_list"].as_array().unwrap();
    assert_eq!(stats.len(), 5, "one stat day per day since publishing, up to yesterday");
    let read = stats.last().unwrap()["read_user"].as_u64().unwrap();
    assert!((400..=800).contains(&read), "20-40 % of 2000 sent: {read}");
    let daily = cube("getarticleread", range(send_day, send_day)).await;
    assert_eq!(daily["list"][0]["msgid"], format!("{data_id}_1"));
    assert!(daily["list"][0]["detail"]["read_user"].as_u64().unwrap() < read);
    let shares = cube("getarticleshare", range(send_day, send_day)).await;
    assert!(shares["list"][0]["detail"]["share_user"].as_u64().unwrap() < read / 10);
    let total = cube("getarticletotal", range(send_day, send_day)).await;
    assert_eq!(total["list"][0]["details"][0]["target_user"], 2000);
    let old_summary = cube("getarticlesummary", range(send_day, send_day)).await;
    assert!(old_summary["list"][0]["int_page_read_user"].as_u64().unwrap() > 0);
    assert_eq!(errcode(&cube("getarticleread", range(send_day, send_day + chrono::Days::new(1))).await), 61501);
    h.shutdown().await;
}

#[tokio::test]
async fn the_control_surface_seeds_and_reports_state() {
    let h = Harness::service().await;
    let seeded: Value =
        h.http.post(h.url("/mock/seed")).json(&json!({"followers": 12})).send().await.unwrap().json().await.unwrap();
    assert_eq!((seeded["seeded"].as_u64(), seeded["subscribed"].as_u64()), (Some(12), Some(12)));
    h.http.post(h.url("/mock/unfollow")).json(&json!({"openid": seeded["first"]})).send().await.unwrap();
    h.http.post(h.url("/mock/follow")).json(&json!({"openid": "oNewcomer"})).send().await.unwrap();
    let bad = h.http.post(h.url("/mock/fail")).json(&json!({"path": "/x", "times": 1})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let token = h.token().await;
    h.create_tag(&token, "t").await;
    let state: Value = h.http.get(h.url("/mock/state")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["followers"], json!({"subscribed": 12, "ever": 13}));
    assert_eq!(state["tags"][1], json!({"id": 100, "name": "t", "count": 0}));
    assert_eq!(state["account_type"], "service");
    assert_eq!(state["token_fetches"], 1);
    assert_eq!(h.mock.base_url(), Some(h.running.url()));
    h.shutdown().await;
}
