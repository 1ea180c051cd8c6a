//! Issue 15, written as the attacks: slow clients, too many connections, `/metrics` reached from
//! outside, simulated test followers slipping into audiences, and the board.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::app::{API_TOKEN, TestApp, spawn_app_with, text_message};

fn host_port(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Reads whatever the server sends until it closes the connection or `limit` passes; `None` when
/// the connection is still open at `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(String::from_utf8_lossy(&received).into_owned()),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Sends `X-Slow: aaa…` one byte every 200 ms for about 10 s, until the server closes.
fn drip_a_header(mut writer: tokio::net::tcp::OwnedWriteHalf) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for byte in b"X-Slow: ".iter().chain([b'a'; 40].iter()) {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

#[tokio::test]
async fn a_client_dripping_its_headers_is_cut_off_at_the_header_deadline() {
    let app = spawn_app_with(|vars| {
        vars.insert("TAGCAST_HEADER_TIMEOUT_SECS".into(), "1".into());
    })
    .await;
    let slow = TcpStream::connect(host_port(&app)).await.expect("connect");
    let (mut reader, mut writer) = slow.into_split();
    writer.write_all(b"POST /wechat HTTP/1.1\r\nHost: tagcast\r\n").await.expect("first line");
    let started = Instant::now();
    // One header byte every 200 ms for 8 s: each arrives well within any per-read timeout, so
    // only a deadline on the whole head stops it.
    let drip = drip_a_header(writer);
    let mut received = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(8), reader.read_to_end(&mut received)).await;
    drip.abort();
    assert!(closed.is_ok(), "the dripping connection was still open after 8 s");
    assert!(started.elapsed() < Duration::from_secs(3), "closed only after {:?}", started.elapsed());
    let answer = String::from_utf8_lossy(&received);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    // Everyone else is still served.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

/// actix times only the first request's headers on a connection: a client may send one quick
/// request, then drip the next one's headers. With keep-alive off (`TAGCAST_KEEP_ALIVE_SECS=0`,
/// for an instance without a proxy in front) the connection closes after the first answer, so
/// there is no next request to drip.
#[tokio::test]
async fn with_keep_alive_off_no_second_request_can_be_dripped_on_a_connection() {
    let app = spawn_app_with(|vars| {
        vars.insert("TAGCAST_HEADER_TIMEOUT_SECS".into(), "1".into());
        vars.insert("TAGCAST_KEEP_ALIVE_SECS".into(), "0".into());
    })
    .await;
    let slow = TcpStream::connect(host_port(&app)).await.expect("connect");
    let (mut reader, mut writer) = slow.into_split();
    writer.write_all(b"GET /healthz HTTP/1.1\r\nHost: tagcast\r\n\r\n").await.expect("first request");
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A closed connection may refuse this write already; the read below tells.
    let _ = writer.write_all(b"GET /healthz HTTP/1.1\r\n").await;
    let drip = drip_a_header(writer);
    let mut received = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(8), reader.read_to_end(&mut received)).await;
    drip.abort();
    assert!(closed.is_ok(), "the connection stayed open for a second request's dripping headers");
    assert!(started.elapsed() < Duration::from_secs(2), "closed only after {:?}", started.elapsed());
    let answer = String::from_utf8_lossy(&received);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
}

#[tokio::test]
async fn a_client_dripping_its_body_gets_408_and_the_connection_is_closed() {
    let app = spawn_app_with(|vars| {
        vars.insert("TAGCAST_BODY_TIMEOUT_SECS".into(), "1".into());
    })
    .await;
    for (path, auth) in
        [("/api/v1/events", format!("Authorization: Bearer {API_TOKEN}\r\n")), ("/wechat", String::new())]
    {
        let mut slow = TcpStream::connect(host_port(&app)).await.expect("connect");
        let head = format!(
            "POST {path}?{} HTTP/1.1\r\nHost: tagcast\r\n{auth}Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n",
            app.signed_query(crate::support::app::now(), "77")
        );
        slow.write_all(head.as_bytes()).await.expect("head");
        slow.write_all(b"[{\"id\": \"slow").await.expect("a little of the body");
        let started = Instant::now();
        let answer = read_until_closed(&mut slow, Duration::from_secs(5)).await;
        let answer = answer.unwrap_or_else(|| panic!("{path}: the connection stayed open"));
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(started.elapsed() < Duration::from_secs(4), "{path}: {:?}", started.elapsed());
    }
    assert_eq!(app.count("SELECT count(*) FROM events").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
}

#[tokio::test]
async fn connections_past_the_cap_wait_and_the_cap_is_counted() {
    let app = spawn_app_with(|vars| {
        vars.insert("TAGCAST_MAX_CONNECTIONS".into(), "3".into());
        vars.insert("TAGCAST_HTTP_WORKERS".into(), "1".into());
        vars.insert("TAGCAST_HEADER_TIMEOUT_SECS".into(), "30".into());
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(host_port(&app)).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The fourth client is not served while three idle connections hold the instance…
    let client = reqwest::Client::builder().timeout(Duration::from_millis(800)).build().expect("client");
    let refused = client.get(format!("{}/healthz", app.address)).send().await;
    assert!(refused.is_err(), "served past the cap: {refused:?}");
    // …and is once they go.
    drop(idle);
    let mut served = false;
    for _ in 0..20 {
        if app.get("/healthz").await.status() == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served);
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    let reached = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tagcast_http_connection_cap_reached_total "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(reached.is_some_and(|n| n >= 1), "{metrics}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port()
}

#[tokio::test]
async fn metrics_on_a_real_account_answer_only_on_loopback_or_their_own_listener() {
    // No token, no listener of its own: a direct loopback client only.
    let app = spawn_app_with(|_| {}).await;
    assert_eq!(app.get("/metrics").await.status(), 200);
    for header in ["x-forwarded-for", "x-real-ip", "forwarded"] {
        let through_proxy = app
            .http
            .get(format!("{}/metrics", app.address))
            .header(header, "203.0.113.7")
            .send()
            .await
            .expect("request");
        assert_eq!(through_proxy.status(), 403, "{header}");
        let text = through_proxy.text().await.expect("body");
        assert!(text.contains("TAGCAST_METRICS_TOKEN"), "{text}");
    }

    // A listener of its own: `/metrics` moves there, and it serves nothing else.
    let port = free_port();
    let app = spawn_app_with(|vars| {
        vars.insert("TAGCAST_METRICS_BIND".into(), format!("127.0.0.1:{port}"));
    })
    .await;
    assert_eq!(app.get("/metrics").await.status(), 404);
    for disguised in ["/%6Detrics", "/metric%73", "/%6d%65%74%72%69%63%73"] {
        assert_eq!(app.get(disguised).await.status(), 404, "{disguised} on the main listener");
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
    let metrics_base = format!("http://127.0.0.1:{port}");
    let scraped = app.http.get(format!("{metrics_base}/metrics")).send().await.expect("scrape");
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.expect("body").contains("tagcast_http_connections"));
    for path in ["/admin/login", "/api/v1/tags", "/wechat"] {
        let other = app.http.get(format!("{metrics_base}{path}")).send().await.expect("request");
        assert_eq!(other.status(), 404, "{path} on the metrics listener");
    }
    assert_eq!(app.http.get(format!("{metrics_base}/readyz")).send().await.expect("readyz").status(), 200);
}

/// Mass APIs paced far above WeChat's 60/min, so the test does not wait on the limiter.
fn fast(vars: &mut HashMap<String, String>) {
    vars.insert(
        "TAGCAST_WECHAT_RATE_LIMITS".into(),
        "default=2000,/cgi-bin/message/mass/send=200,/cgi-bin/message/mass/preview=200".into(),
    );
}

async fn api_ok(app: &TestApp, path: &str, body: Value, expected: u16) -> Value {
    let (status, answer) = app.api_post(path, body).await;
    assert_eq!(status, expected, "{path}: {answer}");
    answer
}

/// Signs in on the admin page as `username` and returns the board's HTML.
async fn board_as(app: &TestApp, username: &str, password: &str) -> String {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = http.get(format!("{}/admin/login", app.address)).send().await.expect("login page");
    let body = login.text().await.expect("body");
    let start = body.find("name=\"csrf\" value=\"").expect("csrf field") + "name=\"csrf\" value=\"".len();
    let csrf = &body[start..start + body[start..].find('"').expect("end")];
    let signed_in = http
        .post(format!("{}/admin/login", app.address))
        .form(&[("username", username), ("password", password), ("csrf", csrf)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), 303);
    let board = http.get(format!("{}/admin?refresh=1", app.address)).send().await.expect("board");
    assert_eq!(board.status(), 200);
    board.text().await.expect("board")
}

#[tokio::test]
async fn simulated_test_followers_never_count_in_segments_sends_or_the_board() {
    for index in ["on", "off"] {
        let app = spawn_app_with(|vars| {
            fast(vars);
            vars.insert("TAGCAST_AUDIENCE_INDEX".into(), index.into());
        })
        .await;
        let people = ["o_real_anna", "o_real_bo"];
        for openid in people.iter().chain(&["test_sim"]) {
            app.wechat.add_follower(openid);
        }
        tagcast::app::sync::run_sync(&app.jobs.pool, &app.api, |_| {}).await.expect("sync");
        api_ok(&app, "/rules", json!({"on": "keyword", "key": "新品", "add": ["兴趣/新品"]}), 201).await;
        for (i, openid) in people.iter().chain(&["test_sim"]).enumerate() {
            assert_eq!(app.push(&text_message(openid, "新品", 9_100_000 + i as u64)).await.status(), 200);
        }
        app.run_pending_jobs().await;
        assert_eq!(app.count("SELECT count(*) FROM follower_tags WHERE openid = 'test_sim'").await, 1, "tagged");

        let preview = api_ok(&app, "/segments/preview", json!({"expr": "\"兴趣/新品\""}), 200).await;
        assert_eq!(preview["members"], 2, "index {index}: {preview}");
        // A tag nobody carries (an unknown one is refused, issue 20).
        api_ok(&app, "/tags", json!({"path": "兴趣/无人", "wechat": false}), 201).await;
        let everyone = api_ok(&app, "/segments/preview", json!({"expr": "NOT \"兴趣/无人\""}), 200).await;
        assert_eq!(everyone["members"], 2, "index {index}: NOT is relative to real followers: {everyone}");
        let segment = api_ok(&app, "/segments", json!({"name": "新品", "expr": "\"兴趣/新品\""}), 201).await;
        let id = segment["id"].as_i64().expect("id");
        let (_, members) = app.api_get(&format!("/segments/{id}/members")).await;
        assert_eq!(members["members"], json!(people), "index {index}");

        // A send to the segment and one to the tag reach the real followers only; a preview may
        // still go to the test follower.
        let message = json!({"type": "text", "content": "新品到了"});
        let to_segment = api_ok(
            &app,
            "/campaigns",
            json!({"name": "段", "audience": {"segment": id}, "message": message.clone()}),
            201,
        )
        .await["id"]
            .as_i64()
            .expect("id");
        let preview =
            api_ok(&app, &format!("/campaigns/{to_segment}/preview"), json!({"openids": ["test_sim"]}), 200).await;
        assert!(preview.to_string().contains("test_sim"), "{preview}");
        let sent = api_ok(&app, &format!("/campaigns/{to_segment}/send"), json!({}), 202).await;
        assert_eq!(sent["recipients"], 2, "{sent}");
        app.run_pending_jobs().await;
        // A local-only tag goes by openid list too, through the tag's member list.
        api_ok(&app, "/tags", json!({"path": "兴趣/本地", "wechat": false}), 201).await;
        api_ok(&app, "/rules", json!({"on": "keyword", "key": "本地", "add": ["兴趣/本地"]}), 201).await;
        for (i, openid) in people.iter().chain(&["test_sim"]).enumerate() {
            assert_eq!(app.push(&text_message(openid, "本地", 9_200_000 + i as u64)).await.status(), 200);
        }
        let to_tag = api_ok(
            &app,
            "/campaigns",
            json!({"name": "标签", "audience": {"tag": "兴趣/本地"}, "message": message.clone()}),
            201,
        )
        .await["id"]
            .as_i64()
            .expect("id");
        let sent = api_ok(&app, &format!("/campaigns/{to_tag}/send"), json!({}), 202).await;
        assert_eq!(sent["recipients"], 2, "{sent}");
        let everyone =
            api_ok(&app, "/campaigns", json!({"name": "全员", "audience": {"all": true}, "message": message}), 201)
                .await;
        let sent = api_ok(&app, &format!("/campaigns/{}/send", everyone["id"]), json!({}), 202).await;
        assert_eq!(sent["recipients"], 2, "{sent}");
        app.run_pending_jobs().await;
        let touser: BTreeSet<String> = app
            .wechat
            .calls()
            .into_iter()
            .filter(|c| c.path.ends_with("/message/mass/send"))
            .flat_map(|c| c.body["touser"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        assert_eq!(touser, people.iter().map(|p| (*p).to_owned()).collect(), "index {index}");
        let recipients = app.count("SELECT count(*) FROM campaign_recipients WHERE openid LIKE 'test\\_%'").await;
        assert_eq!(recipients, 0, "index {index}");

        if index == "on" {
            app.create_admin("boss", "a long passphrase", "admin").await;
            let board = board_as(&app, "boss", "a long passphrase").await;
            assert!(board.contains("<div class=\"num\">2</div><div>粉丝</div>"), "{board}");
            assert!(board.contains("2 位已关注粉丝有标签"), "{board}");
            assert!(!board.contains(">3<"), "no figure counts the test follower: {board}");
        }
    }
}
